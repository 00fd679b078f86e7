"""The new text of a reply: what its writer typed, without the quoted history under it.

Pure. Mail clients mark the start of the history in a few ways, in the writer's language:
an attribution line ("On <date>, <name> wrote:", "Am ... schrieb ...:", "Le ... a écrit :",
"El ... escribió:", wrapped over up to three lines by the client), Outlook's
"-----Original Message-----" separator or its "From:/Sent:/To:/Subject:" header block (after a
line of underscores, or alone), a forwarded-message banner, and ">" quoted lines. Everything
from the first such mark on is history; ">" lines interleaved with new text are dropped too.
"""

from __future__ import annotations

import re

# Attribution lines end with the verb and a colon; the date and name between vary by client.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"on\b.{0,300}\bwrote\s*:"  # Gmail, Apple Mail, Thunderbird (English)
    r"|am\b.{0,300}\bschrieb\b.{0,300}:"  # German: "Am 01.12.2026 um 10:00 schrieb Alice <a@x>:"
    r"|.{0,200}\bschrieb\s+am\s+.{0,200}:"  # German Thunderbird: "Alice schrieb am 01.12.2026:"
    r"|le\b.{0,300}\ba\s+[ée]crit\s*:"  # French
    r"|el\b.{0,300}\bescribi[óo]\s*:"  # Spanish
    r"|op\b.{0,300}\bschreef\b.{0,200}:"  # Dutch
    r"|il\b.{0,300}\bha\s+scritto\s*:"  # Italian
    r")\s*$",
    re.I | re.S,
)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|urspr[üu]ngliche nachricht|message d'origine"
    r"|mensaje original|messaggio originale|oorspronkelijk bericht|forwarded message|weitergeleitete nachricht"
    r"|message transféré|mensaje reenviado)\s*-{2,}\s*$"
    r"|^\s*_{10,}\s*$"  # Outlook's line of underscores above its header block
    r"|^\s*begin forwarded message\s*:\s*$",
    re.I,
)
# Outlook's header block: "From:" in the writer's language, then "Sent:"/"Date:" within a few lines.
_BLOCK_FROM = re.compile(r"^\s*\*?(?:from|von|de|da|van)\s*:\*?\s*\S", re.I)
_BLOCK_NEXT = re.compile(
    r"^\s*\*?(?:sent|date|gesendet|datum|envoy[ée]|enviado(?: el)?|fecha|inviato|verzonden|to|an|[àa]|para|aan)\s*:", re.I)
_QUOTED = re.compile(r"^\s*>")
_SIGNATURE = re.compile(r"^-- ?$")  # RFC 3676's signature delimiter: what follows is not the message


def new_text(text: str) -> str:
    """The text above the quoted history, with interleaved ">" lines dropped, trimmed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end = _history_start(lines)
    kept = [line.rstrip() for line in lines[:end] if not _QUOTED.match(line)]
    return "\n".join(kept).strip("\n").strip()


def _history_start(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line) or _SIGNATURE.match(line):
            return index
        if _BLOCK_FROM.match(line) and any(_BLOCK_NEXT.match(nxt) for nxt in lines[index + 1:index + 4]):
            return index
        if _attribution_at(lines, index):
            return index
        if _QUOTED.match(line) and all(_QUOTED.match(rest) or not rest.strip() for rest in lines[index:]):
            return index  # the quoted tail with no attribution line above it
    return len(lines)


def _attribution_at(lines: list[str], index: int) -> bool:
    """Whether an attribution starts here, on this line or wrapped over the next two."""
    first = lines[index].strip()
    if not first or _QUOTED.match(first) or len(first) > 400:
        return False
    joined = first
    for extra in range(3):
        if extra:
            if index + extra >= len(lines) or not lines[index + extra].strip():
                return False
            joined = f"{joined} {lines[index + extra].strip()}"
        if _ATTRIBUTION.match(joined):
            # A wrapped attribution is followed by the quote or a blank line, never by more prose.
            after = lines[index + extra + 1] if index + extra + 1 < len(lines) else ""
            return extra == 0 or not after.strip() or bool(_QUOTED.match(after))
    return False
