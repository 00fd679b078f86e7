"""Parsing and decoding, tolerant of anything: headers (RFC 2047), addresses, Message-IDs, the
text of a part whatever its transfer encoding or charset, HTML reduced to text."""

from __future__ import annotations

import base64
import binascii
import email
import email.header
import email.message
import email.policy
import email.utils
import html
import re
from collections.abc import Iterable


def _parse(raw: bytes) -> email.message.Message:
    # compat32 parses lazily and tolerantly; policy.default raises from header accessors on
    # malformed input, which is exactly what bounces and spam are full of.
    if not isinstance(raw, (bytes, bytearray)):
        raw = b""
    return email.message_from_bytes(bytes(raw), policy=email.policy.compat32)


def _header(msg: email.message.Message, name: str) -> str:
    """One header, RFC 2047-decoded, unfolded, '' when absent or undecodable."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # noqa: BLE001 - bad encoded-words or charsets: keep the raw text
        text = str(value)
    return " ".join(text.split())


def _headers(msg: email.message.Message, name: str) -> list[str]:
    return [" ".join(str(v).split()) for v in (msg.get_all(name) or [])]


def _subject(msg: email.message.Message) -> str:
    return _header(msg, "Subject")


def _sender(msg: email.message.Message) -> str | None:
    return _first_address(_header(msg, "From"))


_ADDR_PATTERN = (
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-][A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)
_ADDR_RE = re.compile(r"(?<![\w.+=/!#$%&'*^`{|}~-])" + _ADDR_PATTERN)
_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def _first_address(value: str) -> str | None:
    try:
        _, addr = email.utils.parseaddr(value)
    except Exception:  # noqa: BLE001
        addr = ""
    if "@" not in addr:
        # parseaddr gives up on some shapes ("name@x <a@b>", comments): fall back to a regex.
        found = _ADDR_RE.findall(value)
        addr = found[-1] if found else ""
    addr = addr.strip().strip("<>").lower()
    return addr if _ADDR_RE.fullmatch(addr) else None


def _addresses(value: str) -> list[str]:
    """Every well-formed address in a header-ish or free text, lowercased, in order."""
    return _unique(_clean_address(a) for a in _ADDR_RE.findall(value))


def _clean_address(address: str) -> str:
    # Quotes and trailing dots are punctuation around the address far more often than part of it.
    return address.lower().strip("'`").rstrip(".")


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def _message_ids(value: str) -> list[str]:
    return _unique(f"<{m}>" for m in _MSGID_RE.findall(value) if "@" in m or "." in m)


# Labels legacy mailers write that Python's codecs do not know, and the superset codecs real
# Japanese and Chinese mail needs (vendor characters such as circled digits live only there).
_CHARSET_ALIASES = {
    "x-sjis": "cp932", "sjis": "cp932", "shift-jis": "cp932", "shift_jis": "cp932", "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext", "csiso2022jp": "iso2022_jp_ext", "x-euc-jp": "euc_jp",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030", "big5": "big5hkscs",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "x-windows-949": "cp949",
}
_ISO_2022_JP_ESCAPE = re.compile(rb"\x1b\$[@B]")


def _decode_bytes(data: bytes, charset: str | None) -> str:
    name = (charset or "").strip().lower()
    if not name and _ISO_2022_JP_ESCAPE.search(data):
        name = "iso-2022-jp"  # undeclared, but the escape sequences say what it is
    name = _CHARSET_ALIASES.get(name, name)
    for candidate in (name, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    if name:
        try:
            # A known charset with a few stray bytes: keep its text rather than fall to Latin-1.
            return data.decode(name, "replace")
        except (LookupError, ValueError):
            pass
    # Latin-1 maps every byte, so this is the last word: text we can still search.
    return data.decode("latin-1")


def _payload(part: email.message.Message) -> object:
    """get_payload() that survives compat32's own decoding bugs (tuple or NUL-laden charsets)."""
    try:
        return part.get_payload()
    except Exception:  # noqa: BLE001
        # The stored payload is the undecoded text; it is still worth searching.
        raw = getattr(part, "_payload", "")
        return raw if isinstance(raw, (str, list)) else ""


def _part_bytes(part: email.message.Message) -> bytes:
    """The decoded body of a leaf part; tolerant of broken base64 / QP."""
    payload = _payload(part)
    if not isinstance(payload, str):
        return b""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        # compat32 returns the *encoded* text on bad padding; decode what is decodable instead.
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return payload.encode("latin-1", "replace")
    try:
        decoded = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - compat32 trips over RFC 2231 charsets while decoding
        decoded = None
    return decoded if isinstance(decoded, bytes) else payload.encode("latin-1", "replace")


# What a notice says sits at its start; capping keeps every regex linear-time in practice, so
# one hostile or huge message cannot stall the IMAP loop.
_MAX_PART_BYTES = 256 * 1024


def _part_text(part: email.message.Message) -> str:
    text = _decode_bytes(_part_bytes(part)[:_MAX_PART_BYTES], _safe_charset(part))
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _safe_charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # noqa: BLE001 - RFC 2231 junk in the charset parameter
        return None


_HTML_DROP_RE = re.compile(r"<(script|style|head)\b[^<]*(?:<(?!/\1)[^<]*)*</\1\s*>", re.I)
_HTML_BREAK_RE = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d|/blockquote)\b[^>]*>", re.I)
_HTML_TAG_RE = re.compile(r"<[^<>]*>")


def _html_to_text(markup: str) -> str:
    # Good enough to search for phrases and addresses; layout does not matter here.
    markup = _HTML_DROP_RE.sub(" ", markup)
    markup = _HTML_BREAK_RE.sub("\n", markup)
    return html.unescape(_HTML_TAG_RE.sub(" ", markup))


def _first_msgid(value: str) -> str | None:
    ids = _message_ids(value)
    return ids[0] if ids else None
