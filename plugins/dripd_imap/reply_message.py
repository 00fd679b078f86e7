"""What the reply inbox keeps of a reply or an auto-reply: its headers as written and its own
text (text/plain preferred, its HTML as text otherwise). Parsed from the bytes already fetched
with BODY.PEEK[], so reading it never touches the user's mailbox."""

from __future__ import annotations

import email.message
import re
from collections.abc import Iterator

from dripd.events import ReceivedMessage
from dripd_imap.classify.decode import (
    _MAX_PART_BYTES,
    _decode_bytes,
    _first_msgid,
    _header,
    _html_to_text,
    _parse,
    _part_bytes,
    _part_text,
    _payload,
    _safe_charset,
)

MAX_TEXT_CHARS = 100_000  # a reply is a few lines; a pasted novel is cut, never kept whole


def received_message(raw: bytes) -> ReceivedMessage:
    """The headers and the text of one message, tolerant of any malformed input."""
    msg = _parse(raw)
    message_id = _first_msgid(_header(msg, "Message-ID")) or ""
    return ReceivedMessage(from_header=_header(msg, "From"), subject=_header(msg, "Subject"),
                           date=_header(msg, "Date"), message_id=message_id, text=_own_text(msg)[:MAX_TEXT_CHARS])


def _own_text(msg: email.message.Message) -> str:
    plain: list[str] = []
    html: list[str] = []
    for part in _text_parts(msg, depth=0):
        if part.get_content_subtype() == "html":
            html.append(_html_text(part))
        else:
            plain.append(_part_text(part))
    # multipart/alternative carries the same words twice: the plain part is what the writer's
    # client meant as text, the HTML one is the fallback for HTML-only clients.
    return "\n".join(plain or html).strip("\n")


# HTML clients quote in <blockquote> (Gmail, Apple Mail, Thunderbird): innermost first, so
# nested quotes go too. The attribution above it stays, for the text rules to cut at.
_BLOCKQUOTE = re.compile(r"<blockquote\b[^>]*>(?:(?!<blockquote\b).)*?</blockquote\s*>", re.I | re.S)


def _html_text(part: email.message.Message) -> str:
    markup = _decode_bytes(_part_bytes(part)[:_MAX_PART_BYTES], _safe_charset(part))
    for _ in range(20):  # a hostile nesting depth is not worth following
        markup, found = _BLOCKQUOTE.subn("\n", markup)
        if not found:
            break
    text = _html_to_text(markup).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    # Markup leaves indentation and runs of blank lines that the writer never typed.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.split("\n")))


def _text_parts(part: email.message.Message, depth: int) -> Iterator[email.message.Message]:
    if depth > 20:  # a hostile nesting depth is not worth following
        return
    if part.get_content_maintype() == "multipart":
        payload = _payload(part)
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, email.message.Message):
                    yield from _text_parts(sub, depth + 1)
        return
    disposition = str(part.get("Content-Disposition", "")).strip().lower()
    if part.get_content_maintype() == "text" and not disposition.startswith("attachment") \
            and part.get_content_subtype() in ("plain", "html"):
        yield part
