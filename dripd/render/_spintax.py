"""Spintax: ``{Hi|Hello|Hey}`` picks one option per contact and step, deterministically. Pure.

Grammar (documented in docs/sequences.md):

- a group is ``{`` ... ``}`` with at least one top-level ``|``; each option may hold text, merge
  tags and further groups (nesting);
- braces without a top-level ``|`` are plain text, so CSS such as ``p { margin: 0 }`` is safe;
- ``{{key}}`` and ``{{key|fallback}}`` are merge tags, never spintax: their ``|`` is a fallback;
- ``\\{``, ``\\}`` and ``\\|`` stand for the literal characters.

The choice is a function of the seed (the contact's address and the step's id) and the
template, so the preview and the sent message show the same words, and a retry never changes
them. A group left open is refused when the step is saved, with its position.
"""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass
from typing import Union

_ESCAPABLE = "{}|"


@dataclass(frozen=True, slots=True)
class _Choice:
    options: tuple["_Pieces", ...]


_Pieces = tuple[Union[str, _Choice], ...]


class SpintaxError(ValueError):
    """A group opened at ``position`` (0-based character offset) is never closed."""

    def __init__(self, position: int) -> None:
        super().__init__(f"spintax group opened at position {position} is never closed")
        self.position = position


def has_spintax(source: str) -> bool:
    """A fast pre-check: a template without both characters cannot hold a group or an escape."""
    return ("{" in source and "|" in source) or "\\" in source


def _merge_tag_end(source: str, i: int) -> int:
    """End (exclusive) of the merge tag starting at ``i`` ("{{"), or -1 when it is not closed."""
    close = source.find("}}", i + 2)
    return -1 if close < 0 else close + 2


def _parse(source: str, i: int, depth: int) -> tuple[list[list[str | _Choice]], int, bool]:
    """Options of the group whose body starts at ``i`` (the top level when depth is 0), the
    index after its closing brace, and whether it closed."""
    options: list[list[str | _Choice]] = [[]]
    text: list[str] = []

    def flush() -> None:
        if text:
            options[-1].append("".join(text))
            text.clear()

    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "\\" and i + 1 < n and source[i + 1] in _ESCAPABLE:
            text.append(source[i + 1])
            i += 2
        elif source.startswith("{{", i) and (end := _merge_tag_end(source, i)) > 0:
            text.append(source[i:end])
            i = end
        elif ch == "{":
            inner, after, closed = _parse(source, i + 1, depth + 1)
            if len(inner) > 1:
                if not closed:
                    raise SpintaxError(i)
                flush()
                options[-1].append(_Choice(tuple(tuple(o) for o in inner)))
            else:  # no top-level "|": plain braces around whatever the inside turned into
                flush()
                options[-1].append("{")
                options[-1].extend(inner[0])
                if closed:
                    options[-1].append("}")
            i = after
        elif ch == "}" and depth > 0:
            flush()
            return options, i + 1, True
        elif ch == "|" and depth > 0:
            flush()
            options.append([])
            i += 1
        else:
            text.append(ch)
            i += 1
    flush()
    return options, i, False


@functools.lru_cache(maxsize=256)
def parse_spintax(source: str) -> _Pieces:
    """The template as text pieces and choices; SpintaxError for a group left open. Cached: a
    step's template is spun for every contact, and a merge tag's fallback (``{{name|there}}``)
    passes the quick check, so parsing it per send was ~5 % of the send path's event loop."""
    options, _, _ = _parse(source, 0, 0)
    return tuple(options[0])


def spintax_problem(source: str) -> str | None:
    """Why ``source`` is not a valid spintax template (with the position), or None."""
    if not has_spintax(source):
        return None
    try:
        parse_spintax(source)
    except SpintaxError as exc:
        return str(exc)
    return None


def _pick(pieces: _Pieces, rng: random.Random, out: list[str]) -> None:
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        else:
            _pick(piece.options[rng.randrange(len(piece.options))], rng, out)


def spin(source: str, seed: str) -> str:
    """``source`` with each group replaced by one of its options, chosen from ``seed``.

    The same source and seed always give the same text. A group left open raises SpintaxError
    (templates are checked when saved, so this only happens to text that bypassed the check).
    """
    if not has_spintax(source):
        return source
    pieces = parse_spintax(source)
    if all(isinstance(piece, str) for piece in pieces):
        return "".join(piece for piece in pieces if isinstance(piece, str))
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    out: list[str] = []
    _pick(pieces, rng, out)
    return "".join(out)
