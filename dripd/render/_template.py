"""Merge tags: a step's template compiled once, then filled per contact. Pure.

Values are cleaned on the way in (lone surrogates replaced, control characters neutralised in
the subject and text part, HTML-escaped in the HTML part), so a merge field can never break a
header line or the markup around it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Mapping

from dripd.quick_init import quick_init
from dripd.render._html_text import html_to_text
from dripd.render._urls import safe_url_value, starts_url_attribute

# {{key}} or {{key|fallback}}, whitespace allowed around key and fallback. Anything else between
# braces (e.g. "{{ }}" or "{{two words}}") is not a tag and stays literal text. The fallback may
# not contain braces, which keeps "{{a}}{{b}}" two tags and the grammar regular.
_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:\|([^{}]*))?\}\}")

# Characters a value may not carry into a header or the text part: C0/C1 controls, DEL and the
# Unicode line/paragraph separators (str.splitlines and some clients break lines on them). A run
# of them becomes one space, so "Acme\r\nBcc: x" can never start a header line.
_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _no_surrogates(s: str) -> str:
    """``s`` with lone surrogates (possible in JSON input) replaced by U+FFFD.

    Why: a lone surrogate cannot be encoded as UTF-8, and we would rather send a replacement
    character than fail a step at send time.
    """
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        # Round-trip through UTF-16 so valid surrogate pairs join and only lone ones are replaced.
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


def _neutralise(s: str) -> str:
    """``s`` with every run of control characters replaced by a single space."""
    # isprintable() is a C-speed pre-check; it is also False for harmless characters such as
    # NBSP, which the regex then leaves alone.
    return s if s.isprintable() else _CONTROL_RUN.sub(" ", s)


def template_problem(source: str) -> str | None:
    """Why a template part is almost certainly mistyped, or None: a ``{{`` that no ``}}``
    follows. Checked when a step is saved, so "Hi {{firstName" is refused there rather than
    sent literally to every contact."""
    rest = _TAG.sub("", source)
    start = rest.find("{{")
    if start >= 0 and "}}" not in rest[start:]:
        opened = source.find(rest[start:start + 20])
        return (f"has an unclosed merge tag at character {max(opened, 0) + 1}: {rest[start:start + 20]!r} "
                "(write {{key}} or {{key|fallback}})")
    return None


@dataclass(frozen=True, slots=True)
class _Tag:
    key: str
    fallback: str | None  # None: no "|"; "" is a real (empty) fallback that drops the tag
    raw: str  # the tag as written, put back verbatim when the key is missing (seed rule)
    url: bool = False  # it begins an href/src value in HTML: its value must be an http(s)/mailto URL


@dataclass(frozen=True, slots=True)
class _Part:
    """A template part split once: literals[0] tag[0] literals[1] ... tag[n-1] literals[n]."""

    literals: tuple[str, ...]
    tags: tuple[_Tag, ...]

    @classmethod
    def parse(cls, source: str, *, markup: bool = False) -> _Part:
        literals: list[str] = []
        tags: list[_Tag] = []
        pos = 0
        for m in _TAG.finditer(source):
            literals.append(source[pos : m.start()])
            fb = m.group(2)
            url = markup and starts_url_attribute(source[: m.start()])
            tags.append(_Tag(m.group(1), None if fb is None else fb.strip(), m.group(0), url))
            pos = m.end()
        literals.append(source[pos:])
        return cls(tuple(literals), tuple(tags))

    def fill(self, values: Mapping[str, str], missing: list[str]) -> str:
        """The part with each tag replaced by its value, else its fallback, else itself."""
        lits = self.literals
        if not self.tags:
            return lits[0]
        out = [lits[0]]
        for tag, lit in zip(self.tags, lits[1:]):
            v = values.get(tag.key)
            if v is None:
                if tag.fallback is not None:
                    v = tag.fallback
                else:
                    v = tag.raw
                    if tag.key not in missing:
                        missing.append(tag.key)
            out.append(safe_url_value(v) if tag.url else v)
            out.append(lit)
        return "".join(out)


@quick_init
@dataclass(frozen=True, slots=True)
class Rendered:
    """One contact's message content; ``missing`` lists keys left as literal ``{{key}}``."""

    subject: str
    html: str
    text: str
    missing: tuple[str, ...]


class CompiledTemplate:
    """A step's subject, HTML and text, parsed once; ``render`` fills in one contact's fields."""

    __slots__ = ("_subject", "_html", "_text", "_keys")

    def __init__(self, subject: _Part, html_part: _Part, text: _Part) -> None:
        self._subject = subject
        self._html = html_part
        self._text = text
        self._keys = frozenset(t.key for p in (subject, html_part, text) for t in p.tags)

    @property
    def keys(self) -> frozenset[str]:
        """Every merge key the template uses (subject, HTML and text)."""
        return self._keys

    def render(self, fields: Mapping[str, str]) -> Rendered:
        """Fill the template for one contact.

        Values are HTML-escaped in the HTML part and control-neutralised (runs of CR/LF/controls
        become one space) in the subject and text part. An absent, empty or blank value counts as
        missing: the tag's fallback is used, or the tag is left as written and reported.
        """
        html_values: dict[str, str] = {}
        plain_values: dict[str, str] = {}
        for key in self._keys:
            v = _usable(fields.get(key))
            if v is None:
                continue
            html_values[key] = html.escape(v)
            plain_values[key] = _neutralise(v)
        missing: list[str] = []
        return Rendered(
            subject=self._subject.fill(plain_values, missing),
            html=self._html.fill(html_values, missing),
            text=self._text.fill(plain_values, missing),
            missing=tuple(missing),
        )

    def render_subject(self, fields: Mapping[str, str]) -> str:
        """Only the subject, exactly as ``render(fields).subject`` (the ledger needs it before
        the whole message is built)."""
        plain_values: dict[str, str] = {}
        for tag in self._subject.tags:
            v = _usable(fields.get(tag.key))
            if v is not None:
                plain_values[tag.key] = _neutralise(v)
        return self._subject.fill(plain_values, [])

    def __repr__(self) -> str:
        return f"CompiledTemplate(keys={sorted(self._keys)!r})"


def _usable(v: object) -> str | None:
    """A field value as text, or None when it counts as missing."""
    if v is None:
        return None
    if not isinstance(v, str):  # a number from JSON is still a usable value
        v = str(v)
    # Blank counts as empty: "Hi   ," reads worse than the fallback "Hi there,".
    if not v or v.isspace():
        return None
    return _no_surrogates(v)


def compile_template(subject: str, html: str, text: str | None = None) -> CompiledTemplate:
    """Parse a step's template once; without ``text`` the plain part is generated from ``html``.

    Control characters in the subject template become spaces (a subject is one header line).
    """
    subject = _neutralise(_no_surrogates(subject))
    html = _no_surrogates(html)
    text = html_to_text(html) if text is None else _no_surrogates(text)
    return CompiledTemplate(_Part.parse(subject), _Part.parse(html, markup=True), _Part.parse(text))
