"""The message itself: the envelope's headers, the text parts' transfer encoding and the
multipart/alternative assembly, as CRLF bytes ready for SMTP DATA. Pure."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from dripd.errors import ValidationError
from dripd.quick_init import quick_init
from dripd.render._headers import CRLF, address_line, check_text, from_line, pack, subject_line, unstructured
from dripd.render._identity import check_msg_id, date_line, unique_hex
from dripd.render._template import Rendered

# What 7bit text may hold (RFC 2045 2.7): printable ASCII, tab and the line break.
_SEVEN_BIT_TEXT = b"\t\n" + bytes(range(0x20, 0x7F))
_LONGEST_7BIT_LINE = 76


def _as_7bit(text: str) -> bytes | None:
    """LF-normalised text as 7bit CRLF lines, or None when it must go quoted-printable: only
    printable ASCII in short lines without trailing whitespace (which relays may strip) is safe.

    Checked piece by piece at C speed: one regex with a ``[^\n]{77}`` branch rescanned each line
    from every position in it, quadratic in the line's length. It took 100 us for a 1.2 kB part
    of 60-character lines (a hand-wrapped plain-text body), a fifth of a whole send's time on the
    event loop; this takes 9 us (and 1.3 us, as before, for a part with a long line)."""
    if not text.isascii():
        return None
    data = text.encode("ascii")
    if (max(map(len, data.split(b"\n"))) > _LONGEST_7BIT_LINE or data.translate(None, _SEVEN_BIT_TEXT)
            or b" \n" in data or b"\t\n" in data or data.endswith((b" ", b"\t"))):
        return None
    return data.replace(b"\n", b"\r\n")


def _encode_body(field: str, text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, CRLF-terminated-lines bytes) for a text part.

    Every line ending (CRLF, LF and a lone CR) becomes CRLF: RFC 5321 2.3.8 forbids a bare CR or
    LF in SMTP data, so a lone CR can only be a line break.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    seven_bit = _as_7bit(text)
    if seven_bit is not None:
        return "7bit", seven_bit
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "not valid Unicode (lone surrogate)") from None
    # b2a_qp on LF text emits LF line ends and soft breaks at <= 76 characters; no raw CR can be
    # left in its output, so a blanket LF -> CRLF is exact.
    return "quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """Everything about one message that is not its content. ``date`` is epoch seconds (UTC).

    Keyword-only, so the fields can keep their natural order (to_name next to to_address).
    """

    from_address: str
    from_name: str
    to_address: str
    to_name: str = ""
    message_id: str
    date: float
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    list_unsubscribe: tuple[str, ...] = ()  # URLs, e.g. ("https://...", "mailto:...")
    one_click: bool = False  # RFC 8058 List-Unsubscribe-Post; needs an https URL above
    list_id: str | None = None  # RFC 2919 list-label.namespace, e.g. "s12.example.com"
    extra_headers: tuple[tuple[str, str], ...] = ()


_URL = re.compile(r"[\x21-\x7e]+")
# RFC 2919: the list-id is a dot-atom (list-label "." namespace).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")


def list_id_line(list_id: str) -> str:
    """``List-Id: <label.namespace>``. Filters (and spam scoring: a List-Unsubscribe without a
    List-Id on a short message costs points) tell a list's mail by it; no description phrase,
    so a sequence's name never leaves the house."""
    if len(list_id) > 255 or not _DOT_ATOM.fullmatch(list_id):
        raise ValidationError("list_id", "must be a dot-atom such as 's12.example.com'")
    return f"List-Id: <{list_id}>"
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 ftext: printable, no colon
# Headers this module writes itself; letting extra_headers set them would produce duplicates
# (two Subjects, two Content-Types) that receivers resolve unpredictably. Bcc must never be
# in a sent message at all.
_RESERVED = frozenset(
    "from to subject date message-id mime-version content-type content-transfer-encoding "
    "in-reply-to references list-unsubscribe list-unsubscribe-post list-id bcc".split()
)


def _envelope_headers(e: Envelope) -> list[str]:
    lines = [
        date_line(e.date),
        from_line(e.from_name, e.from_address),
        address_line("To", "to_name", e.to_name, "to_address", e.to_address),
    ]
    lines.append("Message-ID: " + check_msg_id("message_id", e.message_id))
    if e.in_reply_to is not None:
        lines.append("In-Reply-To: " + check_msg_id("in_reply_to", e.in_reply_to))
    if e.references:
        lines.append(pack("References: ", [check_msg_id("references", r) for r in e.references]))
    if e.list_unsubscribe:
        for url in e.list_unsubscribe:
            if "\r" in url or "\n" in url:
                raise ValidationError("list_unsubscribe", "must not contain CR or LF")
            if len(url) > 900 or not _URL.fullmatch(url) or "<" in url or ">" in url:
                raise ValidationError("list_unsubscribe", "each entry must be a URL without spaces or <>")
        tokens = [f"<{u}>," for u in e.list_unsubscribe]
        tokens[-1] = tokens[-1][:-1]
        lines.append(pack("List-Unsubscribe: ", tokens))
    if e.list_id is not None:
        lines.append(list_id_line(e.list_id))
    if e.one_click:
        # RFC 8058 3.1: one-click needs an HTTPS URI to POST to; without one the header lies.
        if not any(u[:8].lower() == "https://" for u in e.list_unsubscribe):
            raise ValidationError("one_click", "needs an https:// URL in list_unsubscribe")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    for name, value in e.extra_headers:
        if not _FIELD_NAME.fullmatch(name) or len(name) > 76:
            raise ValidationError("extra_headers", f"{name!r} is not a valid header name")
        if name.lower() in _RESERVED:
            raise ValidationError("extra_headers", f"{name} is set by dripd itself")
        lines.append(unstructured(name, check_text("extra_headers", value)))
    return lines


_TEXT_HEAD = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
_HTML_HEAD = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "


def build_message(envelope: Envelope, rendered: Rendered) -> bytes:
    """The complete RFC 5322 message (multipart/alternative: text/plain, then text/html) as
    CRLF-terminated bytes, ready for SMTP DATA (dot-stuffing is the transport's job)."""
    lines = _envelope_headers(envelope)
    lines.insert(3, subject_line(rendered.subject))
    # "=_" cannot occur in quoted-printable output and 96 random bits cannot occur by accident
    # in a 7bit part, so the boundary never collides with content.
    boundary = "=_dripd_" + unique_hex(12)
    lines.append("MIME-Version: 1.0")
    lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
    text_cte, text_body = _encode_body("text", rendered.text)
    html_cte, html_body = _encode_body("html", rendered.html)
    delim = f"\r\n--{boundary}\r\n"
    # The blank line ends the header block; the first delimiter needs no preceding CRLF.
    head = CRLF.join(lines) + CRLF + delim + _TEXT_HEAD + text_cte + "\r\n\r\n"
    middle = delim + _HTML_HEAD + html_cte + "\r\n\r\n"
    try:
        return b"".join(
            (
                head.encode("ascii"),
                text_body,
                middle.encode("ascii"),
                html_body,
                f"\r\n--{boundary}--\r\n".encode("ascii"),
            )
        )
    except UnicodeEncodeError:  # pragma: no cover - every header path above emits ASCII
        raise ValidationError("headers", "a header value could not be encoded as ASCII") from None
