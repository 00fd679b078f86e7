"""Merge fields into a step's template and serialise the MIME message, fast. Pure.

A template is compiled once per step (merge tags found, the plain-text part generated from the
HTML); each contact then costs a few string joins plus one quoted-printable pass per part.
``email.message.EmailMessage`` is deliberately not used on this path: it builds ~380 msg/s on one
core (DESIGN, "Python's email package is slow"), while the transport pushes ~1,100 msg/s. The
header encoding it would have done for us (RFC 2047 encoded-words, folding, quoting of display
names, CRLF) is done here by hand, and the unit tests parse every shape back with the stdlib
parser to keep us honest.

No I/O and no clock: the Date comes in on the ``Envelope``, randomness only for MIME boundaries.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import html
import math
import os
import re
from dataclasses import dataclass
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Mapping

from dripd.errors import ValidationError

__all__ = [
    "CompiledTemplate",
    "Envelope",
    "Rendered",
    "build_message",
    "compile_template",
    "html_to_text",
    "make_message_id",
]

CRLF = "\r\n"
# RFC 5322 2.1.1: lines SHOULD be <= 78 characters (excluding CRLF) and MUST be <= 998.
_SOFT_LIMIT = 78
# RFC 2047 2: an encoded-word is at most 75 characters; "=?utf-8?X?" + "?=" costs 12 of them.
_WORD_MAX = 75
_WORD_OVERHEAD = len("=?utf-8?q?") + len("?=")

# ---------------------------------------------------------------------------------------------
# Merge tags
# ---------------------------------------------------------------------------------------------

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


@dataclass(frozen=True, slots=True)
class _Tag:
    key: str
    fallback: str | None  # None: no "|"; "" is a real (empty) fallback that drops the tag
    raw: str  # the tag as written, put back verbatim when the key is missing (seed rule)


@dataclass(frozen=True, slots=True)
class _Part:
    """A template part split once: literals[0] tag[0] literals[1] ... tag[n-1] literals[n]."""

    literals: tuple[str, ...]
    tags: tuple[_Tag, ...]

    @classmethod
    def parse(cls, source: str) -> _Part:
        literals: list[str] = []
        tags: list[_Tag] = []
        pos = 0
        for m in _TAG.finditer(source):
            literals.append(source[pos : m.start()])
            fb = m.group(2)
            tags.append(_Tag(m.group(1), None if fb is None else fb.strip(), m.group(0)))
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
            out.append(v)
            out.append(lit)
        return "".join(out)


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
    return CompiledTemplate(_Part.parse(subject), _Part.parse(html), _Part.parse(text))


# ---------------------------------------------------------------------------------------------
# HTML -> plain text (once per template, so clarity beats speed here)
# ---------------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 ul ol dl table blockquote pre hr section article header footer "
    "nav aside main form fieldset address figure figcaption center".split()
)
_LINE_TAGS = frozenset("tr dt dd caption".split())
_SKIP_TAGS = frozenset("script style head title template".split())
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML whitespace; NBSP is content and survives


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped in data and attrs
        self.out: list[str] = []
        self._skip = 0
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []  # (href, len(out) at <a>)

    # Line-break bookkeeping works on the tail of the output, so nested blocks never stack
    # more than one blank line.
    def _tail(self) -> str:
        return "".join(self.out[-3:])

    def _break(self, n: int) -> None:
        tail = self._tail().rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n")) if self.out else n
        if have < n:
            self.out.append("\n" * (n - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif self._skip:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break(2)
            if tag == "pre":
                self._pre += 1
        elif tag == "li":
            self._break(1)
            self.out.append("- ")
        elif tag in _LINE_TAGS:
            self._break(1)
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.out)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and <hr/>: same as the start tag; a self-closed <a/> or <p/> has no end to wait for.
        if tag in ("br", "hr"):
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif self._skip:
            return
        elif tag in _BLOCK_TAGS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._break(2)
        elif tag in _LINE_TAGS or tag == "li":
            self._break(1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            if not href:
                return
            href = href.strip()
            label = "".join(self.out[start:]).strip()
            bare = href[7:] if href.lower().startswith("mailto:") else href
            # In-page anchors and javascript: links mean nothing in plain text; a link whose
            # label already is the URL need not repeat it.
            if href.startswith("#") or href.lower().startswith("javascript:") or label in (href, bare):
                return
            self.out.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self.out.append(data)
            return
        data = _HTML_SPACE.sub(" ", data)
        tail = self._tail()
        # Collapse like a browser: no leading space on a line, no double space across nodes.
        if data.startswith(" ") and (not tail or tail.endswith((" ", "\n"))):
            data = data[1:]
        if data:
            self.out.append(data)


def html_to_text(source: str) -> str:
    """A readable plain-text rendering of an HTML body (merge tags pass through untouched).

    Paragraphs and headings become blank-line separated blocks, ``<br>``, ``<li>`` and table rows
    line breaks, links ``label (url)``; scripts, styles and ``<head>`` are dropped.
    """
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""


# ---------------------------------------------------------------------------------------------
# Header encoding
# ---------------------------------------------------------------------------------------------

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


def _pack(prefix: str, tokens: list[str]) -> str:
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


def _unstructured(name: str, value: str) -> str:
    """A complete ``Name: value`` header line for free text (RFC 5322 unstructured)."""
    prefix = name + ": "
    if not value:
        return prefix.rstrip(" ")
    if _RAW_UNSTRUCTURED.fullmatch(value) and "=?" not in value:
        words = value.split(" ")
        if len(prefix) + len(words[0]) <= _SOFT_LIMIT and max(map(len, words)) < _SOFT_LIMIT:
            return _pack(prefix, words)
    return _pack(prefix, _encoded_words(value, _SOFT_LIMIT - len(prefix)))


@functools.lru_cache(maxsize=4096)
def _subject_line(subject: str) -> str:
    # Cached: a subject without merge tags (or with a common value) is encoded once, not per send.
    if "\r" in subject or "\n" in subject:
        raise ValidationError("subject", "must not contain CR or LF")
    return _unstructured("Subject", subject)


# RFC 5322 atext: a display name made only of these (and single spaces) needs no quoting.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than tab
# Loose address check: one "@", something either side, none of the characters that would let
# it escape the angle brackets or split into two addresses. Internationalised addresses would
# need SMTPUTF8, which the transports do not negotiate, so ASCII only.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")


def _check_address(field: str, addr: str) -> str:
    if "\r" in addr or "\n" in addr:
        raise ValidationError(field, "must not contain CR or LF")
    if not addr.isascii() or len(addr) > 254 or not _ADDRESS.fullmatch(addr) or not addr.isprintable():
        raise ValidationError(field, "not a valid email address")
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


def _check_text(field: str, value: str) -> str:
    problem = header_text_problem(value)
    if problem is not None:
        raise ValidationError(field, problem)
    return value


def _address_line(header: str, name_field: str, name: str, addr_field: str, addr: str) -> str:
    """``Header: display name <addr>`` with the name quoted or RFC 2047-encoded as needed."""
    _check_address(addr_field, addr)
    _check_text(name_field, name)
    prefix = header + ": "
    if not name:
        return prefix + addr
    angle = f"<{addr}>"
    if "=?" not in name:
        if _ATOM_PHRASE.fullmatch(name):
            words = name.split(" ")
            if len(prefix) + len(words[0]) <= _SOFT_LIMIT and max(map(len, words)) < _SOFT_LIMIT:
                return _pack(prefix, words + [angle])
        if _PRINTABLE_ASCII.fullmatch(name):
            quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if len(prefix) + len(quoted) <= _SOFT_LIMIT:
                return _pack(prefix, [quoted, angle])
    # Non-ASCII, or a quoted name too long for one line: encoded-words fold anywhere. Per
    # RFC 2047 6.2 the space between adjacent encoded-words is dropped when decoding; CPython
    # before the gh-128110 fix wrongly keeps it in display names (so a name long enough to need
    # two words reads back with a stray space there), mail clients do not.
    return _pack(prefix, _encoded_words(name, _SOFT_LIMIT - len(prefix)) + [angle])


@functools.lru_cache(maxsize=256)
def _from_line(name: str, addr: str) -> str:
    # Cached: a mailbox sends thousands of messages with the same From.
    return _address_line("From", "from_name", name, "from_address", addr)


_MSG_ID = re.compile(r"<[!-;=?A-~]+@[!-;=?A-~]+>")  # printable ASCII; no <, > or @ inside
_ID_PART = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+")  # dot-atom-text characters


def _check_msg_id(field: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValidationError(field, "must not contain CR or LF")
    if len(value) > 250 or not _MSG_ID.fullmatch(value):
        raise ValidationError(field, "must look like <unique@domain>")
    return value


def make_message_id(domain: str, unique: str) -> str:
    """``<unique@domain>``; the caller supplies ``unique`` (e.g. a uuid4 hex), keeping this pure."""
    if not _ID_PART.fullmatch(unique):
        raise ValidationError("unique", "must be non-empty dot-atom text (no spaces, @, <, >)")
    if not _ID_PART.fullmatch(domain):
        raise ValidationError("domain", "must be non-empty dot-atom text (no spaces, @, <, >)")
    return _check_msg_id("message_id", f"<{unique}@{domain}>")


_URL = re.compile(r"[\x21-\x7e]+")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 ftext: printable, no colon
# Headers this module writes itself; letting extra_headers set them would produce duplicates
# (two Subjects, two Content-Types) that receivers resolve unpredictably. Bcc must never be
# in a sent message at all.
_RESERVED = frozenset(
    "from to subject date message-id mime-version content-type content-transfer-encoding "
    "in-reply-to references list-unsubscribe list-unsubscribe-post bcc".split()
)


@functools.lru_cache(maxsize=4)
def _date_line_at(second: int) -> str:
    try:
        stamp = dt.datetime.fromtimestamp(second, dt.timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        raise ValidationError("date", "not a representable epoch timestamp") from None
    return "Date: " + format_datetime(stamp)


def _date_line(when: float) -> str:
    # The header has whole seconds; a busy lane formats the same second hundreds of times, and
    # format_datetime was ~4 % of the event loop's time in the dispatch profile.
    try:
        second = math.floor(when)
    except (OverflowError, ValueError, TypeError):
        raise ValidationError("date", "not a representable epoch timestamp") from None
    return _date_line_at(second)


class _RandomPool:
    """OS randomness drawn 4 KB at a time. Boundaries and Message-ID suffixes must neither repeat
    nor be predictable (a recipient who could predict the next boundary could plant it in a
    merge field). An os.urandom call per message (secrets.token_hex) was ~7 % of the event
    loop's samples in the dispatch profile: a system call that hands the GIL to the store's
    thread and waits to get it back. One call per ~200 messages costs nothing."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._pool = b""
        self._at = 0

    def hex(self, nbytes: int) -> str:
        if self._at + nbytes > len(self._pool):
            self._pool, self._at = os.urandom(max(self._size, nbytes)), 0
        chunk = self._pool[self._at:self._at + nbytes]
        self._at += nbytes
        return chunk.hex()


_random_pool = _RandomPool()


def unique_hex(nbytes: int) -> str:
    """``2 * nbytes`` random hex digits from the OS (cryptographic quality)."""
    return _random_pool.hex(nbytes)


# ---------------------------------------------------------------------------------------------
# Bodies and the message
# ---------------------------------------------------------------------------------------------

# 7bit is only safe for printable ASCII in short lines without trailing whitespace (which
# relays may strip); everything else goes quoted-printable. Checked on LF-normalised text.
_NEEDS_QP = re.compile(r"[^\t\n\x20-\x7e]|[^\n]{77}|[ \t]\n|[ \t]\Z")


def _encode_body(field: str, text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, CRLF-terminated-lines bytes) for a text part.

    Every line ending (CRLF, LF and a lone CR) becomes CRLF: RFC 5321 2.3.8 forbids a bare CR or
    LF in SMTP data, so a lone CR can only be a line break.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and not _NEEDS_QP.search(text):
        return "7bit", text.replace("\n", CRLF).encode("ascii")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "not valid Unicode (lone surrogate)") from None
    # b2a_qp on LF text emits LF line ends and soft breaks at <= 76 characters; no raw CR can be
    # left in its output, so a blanket LF -> CRLF is exact.
    return "quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


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
    extra_headers: tuple[tuple[str, str], ...] = ()


def _envelope_headers(e: Envelope) -> list[str]:
    lines = [
        _date_line(e.date),
        _from_line(e.from_name, e.from_address),
        _address_line("To", "to_name", e.to_name, "to_address", e.to_address),
    ]
    lines.append("Message-ID: " + _check_msg_id("message_id", e.message_id))
    if e.in_reply_to is not None:
        lines.append("In-Reply-To: " + _check_msg_id("in_reply_to", e.in_reply_to))
    if e.references:
        lines.append(_pack("References: ", [_check_msg_id("references", r) for r in e.references]))
    if e.list_unsubscribe:
        for url in e.list_unsubscribe:
            if "\r" in url or "\n" in url:
                raise ValidationError("list_unsubscribe", "must not contain CR or LF")
            if len(url) > 900 or not _URL.fullmatch(url) or "<" in url or ">" in url:
                raise ValidationError("list_unsubscribe", "each entry must be a URL without spaces or <>")
        tokens = [f"<{u}>," for u in e.list_unsubscribe]
        tokens[-1] = tokens[-1][:-1]
        lines.append(_pack("List-Unsubscribe: ", tokens))
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
        lines.append(_unstructured(name, _check_text("extra_headers", value)))
    return lines


_TEXT_HEAD = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
_HTML_HEAD = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "


def build_message(envelope: Envelope, rendered: Rendered) -> bytes:
    """The complete RFC 5322 message (multipart/alternative: text/plain, then text/html) as
    CRLF-terminated bytes, ready for SMTP DATA (dot-stuffing is the transport's job)."""
    lines = _envelope_headers(envelope)
    lines.insert(3, _subject_line(rendered.subject))
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
