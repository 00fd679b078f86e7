"""Header lines by hand: RFC 2047 encoded-words, folding at 78 characters, quoted display
names, and the rule for what text may stand in a header at all. Pure.

This is the encoding ``email.message.EmailMessage`` would have done for us, at a fraction of
its cost (see the package docstring); every shape is parsed back with the stdlib parser in
tests/unit/test_render.py.
"""

from __future__ import annotations

import binascii
import functools
import math
import re

from dripd.errors import ValidationError

CRLF = "\r\n"
# RFC 5322 2.1.1: lines SHOULD be <= 78 characters (excluding CRLF) and MUST be <= 998.
_SOFT_LIMIT = 78
# RFC 2047 2: an encoded-word is at most 75 characters; "=?utf-8?X?" + "?=" costs 12 of them.
_WORD_MAX = 75
_WORD_OVERHEAD = len("=?utf-8?q?") + len("?=")

# Q-encoding characters allowed raw in every encoded-word context, including a display-name
# phrase (RFC 2047 5(3) is the strictest list). Space is written as "_".
_Q_RAW = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/"
_Q_ONE_CHAR = _Q_RAW + b" "
_Q_MAP = tuple(
    chr(b) if b in _Q_RAW else "_" if b == 0x20 else f"={b:02X}" for b in range(256)
)


def _encoded_words(value: str, first_budget: int) -> list[str]:
    """``value`` as RFC 2047 UTF-8 encoded-words; the first fits ``first_budget`` characters.

    Q or B is chosen by whichever is shorter (as the stdlib's utf-8 charset does). Words never
    split a UTF-8 sequence, since each must decode on its own (RFC 2047 5).
    """
    data = value.encode("utf-8")
    n = len(data)
    q_len = n + 2 * len(data.translate(None, _Q_ONE_CHAR))
    b_len = 4 * math.ceil(n / 3)
    room = max(min(first_budget, _WORD_MAX) - _WORD_OVERHEAD, 12)  # 12: one 4-byte char in Q
    later_room = _WORD_MAX - _WORD_OVERHEAD
    words: list[str] = []
    if b_len < q_len:
        pos = 0
        while True:
            take = (room // 4) * 3
            end = min(pos + take, n)
            while end < n and end > pos and data[end] & 0xC0 == 0x80:  # back off to a char start
                end -= 1
            chunk = binascii.b2a_base64(data[pos:end], newline=False).decode("ascii")
            words.append("=?utf-8?b?" + chunk + "?=")
            pos = end
            if pos >= n:
                return words
            room = later_room
    encoded = "".join(map(_Q_MAP.__getitem__, data))
    pos = 0
    total = len(encoded)
    while True:
        end = min(pos + room, total)
        if end < total:
            # Do not cut inside "=XX", nor before a UTF-8 continuation byte ("=80".."=BF").
            if encoded[end - 1] == "=":
                end -= 1
            elif encoded[end - 2] == "=":
                end -= 2
            while end > pos and encoded[end] == "=" and encoded[end + 1] in "89AB":
                end -= 3
        words.append("=?utf-8?q?" + encoded[pos:end] + "?=")
        pos = end
        if pos >= total:
            return words
        room = later_room


def pack(prefix: str, tokens: list[str]) -> str:
    """``prefix`` + tokens separated by spaces, folded (CRLF + space) before a token that would
    push a line past 78 characters."""
    line = prefix + tokens[0]
    lines: list[str] = []
    for tok in tokens[1:]:
        if len(line) + 1 + len(tok) <= _SOFT_LIMIT:
            line += " " + tok
        else:
            lines.append(line)
            line = " " + tok
    lines.append(line)
    return CRLF.join(lines)


# Plain ASCII words separated by single spaces fold and unfold back exactly; anything else
# (leading/trailing/double spaces, tabs, non-ASCII, a literal "=?") goes out as encoded-words,
# which decode back exactly.
_RAW_UNSTRUCTURED = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def unstructured(name: str, value: str) -> str:
    """A complete ``Name: value`` header line for free text (RFC 5322 unstructured)."""
    prefix = name + ": "
    if not value:
        return prefix.rstrip(" ")
    if _RAW_UNSTRUCTURED.fullmatch(value) and "=?" not in value:
        words = value.split(" ")
        if len(prefix) + len(words[0]) <= _SOFT_LIMIT and max(map(len, words)) < _SOFT_LIMIT:
            return pack(prefix, words)
    return pack(prefix, _encoded_words(value, _SOFT_LIMIT - len(prefix)))


@functools.lru_cache(maxsize=4096)
def subject_line(subject: str) -> str:
    """The complete ``Subject:`` line; CR or LF in ``subject`` is a ValidationError."""
    # Cached: a subject without merge tags (or with a common value) is encoded once, not per send.
    if "\r" in subject or "\n" in subject:
        raise ValidationError("subject", "must not contain CR or LF")
    try:
        return unstructured("Subject", subject)
    except UnicodeEncodeError:
        # A lone surrogate: compile_template replaces them, but a subject made elsewhere (the
        # thread's first subject) reaches here unchecked. Refused like any unbuildable field.
        raise ValidationError("subject", "not valid Unicode (lone surrogate)") from None


# RFC 5322 atext: a display name made only of these (and single spaces) needs no quoting.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than tab
# Loose address check: one "@", something either side, none of the characters that would let
# it escape the angle brackets or split into two addresses. Internationalised addresses would
# need SMTPUTF8, which the transports do not negotiate, so ASCII only.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")


def address_problem(addr: str) -> str | None:
    """Why a message cannot be addressed to ``addr``, or None if it can. The one rule: the API
    and the CSV import refuse such addresses at their edge with these words, so a contact that
    cannot be sent to is never enrolled (and never claims a send it cannot make)."""
    if "\r" in addr or "\n" in addr:
        return "must not contain CR or LF"
    if not addr.isprintable():
        return "must not contain control characters"
    if not addr.isascii():
        return ("must be ASCII: an internationalised address needs SMTPUTF8, "
                "which the transports do not use")
    if len(addr) > 254 or not _ADDRESS.fullmatch(addr):
        return "not a valid email address (no backslash, quote, space or bracket; one @)"
    return None


def _check_address(field: str, addr: str) -> str:
    problem = address_problem(addr)
    if problem is not None:
        raise ValidationError(field, problem)
    return addr


def header_text_problem(value: str) -> str | None:
    """Why ``value`` cannot stand in a header (a display name, a subject), or None if it can.
    The one rule: the API refuses such names at its edge with the same words."""
    if "\r" in value or "\n" in value:
        return "must not contain CR or LF"
    if _HEADER_UNSAFE.search(value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode (lone surrogate)"
    return None


def check_text(field: str, value: str) -> str:
    """``value`` if it can stand in a header, else ValidationError naming ``field``."""
    problem = header_text_problem(value)
    if problem is not None:
        raise ValidationError(field, problem)
    return value


def address_line(header: str, name_field: str, name: str, addr_field: str, addr: str) -> str:
    """``Header: display name <addr>`` with the name quoted or RFC 2047-encoded as needed."""
    _check_address(addr_field, addr)
    check_text(name_field, name)
    prefix = header + ": "
    if not name:
        return prefix + addr
    angle = f"<{addr}>"
    if "=?" not in name:
        if _ATOM_PHRASE.fullmatch(name):
            words = name.split(" ")
            if len(prefix) + len(words[0]) <= _SOFT_LIMIT and max(map(len, words)) < _SOFT_LIMIT:
                return pack(prefix, words + [angle])
        if _PRINTABLE_ASCII.fullmatch(name):
            quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if len(prefix) + len(quoted) <= _SOFT_LIMIT:
                return pack(prefix, [quoted, angle])
    # Non-ASCII, or a quoted name too long for one line: encoded-words fold anywhere. Per
    # RFC 2047 6.2 the space between adjacent encoded-words is dropped when decoding; CPython
    # before the gh-128110 fix wrongly keeps it in display names (so a name long enough to need
    # two words reads back with a stray space there), mail clients do not.
    return pack(prefix, _encoded_words(name, _SOFT_LIMIT - len(prefix)) + [angle])


@functools.lru_cache(maxsize=256)
def from_line(name: str, addr: str) -> str:
    """The complete ``From:`` line (fields ``from_name`` and ``from_address``)."""
    # Cached: a mailbox sends thousands of messages with the same From.
    return address_line("From", "from_name", name, "from_address", addr)
