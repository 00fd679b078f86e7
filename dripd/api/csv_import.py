"""Bulk enrollment from CSV (seed 003): records split out of a byte stream, rows checked. Pure.

The header row maps ``email``, ``firstName``, ``lastName`` and ``company`` to the contact and
every other column to a merge field. Rows are reported by the line they start on (the header
is line 1) and the column as the header names it, so a user can fix the file. The first and
last name form the To header's display name, so a name that cannot stand in a header (a line
break or another control character in a quoted field) makes its row invalid, by
``render.header_text_problem``; other columns may hold line breaks (the subject neutralises them).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from dripd.errors import ValidationError
from dripd.model import contact_fields, normalize_email
from dripd.render import header_text_problem
from dripd.store import ContactInput

# Header spellings accepted for the contact columns (compared case-insensitively, no separators).
_CONTACT_COLUMNS = {"email": "email", "emailaddress": "email", "contactemail": "email",
                    "firstname": "first_name", "lastname": "last_name", "company": "company",
                    "timezone": "timezone", "tz": "timezone"}
_MERGE_NAME = {"first_name": "firstName", "last_name": "lastName", "company": "company", "timezone": "timezone"}
MAX_INVALID_REPORTED = 100
DELIMITERS = ",;\t"
SNIFF_RECORDS = 20  # the header and up to 19 rows are the sniffer's sample


class RecordSplitter:
    """Feeds bytes in, yields complete CSV records (with the line each starts on) as text.

    A record ends at a newline outside quotes: an even count of ``"`` so far (an escaped ``""``
    counts two), so quoted fields may hold newlines and chunk borders may fall anywhere.
    """

    def __init__(self, max_record_chars: int = 16 * 100_000) -> None:
        self._max_record = max_record_chars
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self._pending = ""
        self._quotes = 0
        self._line = 1  # the line the pending record starts on
        self._lines_in_pending = 0

    def feed(self, chunk: bytes, final: bool = False) -> Iterator[tuple[int, str]]:
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise ValidationError("csv", f"is not UTF-8 (near line {self._line + self._lines_in_pending})") from exc
        start = 0
        while True:
            newline = text.find("\n", start)
            if newline < 0:
                break
            piece = text[start:newline + 1]
            start = newline + 1
            self._pending += piece
            self._quotes += piece.count('"')
            self._lines_in_pending += 1
            self._bound()
            if self._quotes % 2 == 0:
                yield self._line, self._pending
                self._line += self._lines_in_pending
                self._pending, self._quotes, self._lines_in_pending = "", 0, 0
        rest = text[start:]
        self._pending += rest
        self._quotes += rest.count('"')
        self._bound()
        if final and self._pending.strip():
            if self._quotes % 2:
                raise ValidationError("csv", f"line {self._line}: a quoted field is never closed")
            yield self._line, self._pending
            self._pending = ""


    def _bound(self) -> None:
        # An unclosed quote or a file without newlines would otherwise grow one record without end.
        if len(self._pending) > self._max_record:
            raise ValidationError("csv", f"line {self._line}: a record is longer than {self._max_record} characters")


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: ``,``, ``;`` (spreadsheets in much of Europe) or tab.

    ``csv.Sniffer`` decides; when it cannot, or its choice leaves the header without an email
    column, the first of the three that gives the header an email column wins (else ``,``).
    """
    header = sample.split("\n", 1)[0]
    candidates = list(DELIMITERS)
    try:
        candidates.insert(0, csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter)
    except csv.Error:
        pass
    for delimiter in candidates:
        names = next(csv.reader([header], delimiter=delimiter), [])
        if any(CsvRows.key(name.strip()) == "email" for name in names):
            return delimiter
    return ","


@dataclass
class CsvRows:
    """What the file holds: valid rows by position, and the invalid ones with their line.

    With ``keep`` false the valid rows are only counted (a checking pass over a large file).
    """

    keep: bool = True
    max_chars: int = 100_000
    delimiter: str = ","
    valid_count: int = 0
    columns: list[str] = field(default_factory=list)
    valid: list[tuple[int, ContactInput, Mapping[str, str]]] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)  # position -> line
    invalid: list[dict[str, object]] = field(default_factory=list)
    invalid_count: int = 0
    total: int = 0
    # A 64-bit digest of each address, not the address: a few dozen bytes a row. Two addresses
    # sharing a digest (odds ~1e-8 at a million rows) would be reported as a duplicate.
    _seen: dict[int, int] = field(default_factory=dict)
    position: int = 0

    def header(self, line: int, record: str, sample: str | None = None) -> None:
        self.delimiter = sniff_delimiter(sample if sample is not None else record)
        names = self._split(record)
        self.columns = [name.strip() for name in names]
        keys = [self.key(n) for n in self.columns]
        if "email" not in keys:
            raise ValidationError("csv", f"line {line}: the header row needs an email column")
        if len(set(self.columns)) != len(self.columns):
            raise ValidationError("csv", f"line {line}: the header row names a column twice")

    def _split(self, record: str) -> list[str]:
        try:
            return next(csv.reader([record], delimiter=self.delimiter), [])
        except csv.Error as exc:  # e.g. a field over the csv module's own size limit
            raise _RowError(str(exc)) from None

    @staticmethod
    def key(name: str) -> str:
        return _CONTACT_COLUMNS.get(name.lower().replace("_", "").replace("-", "").replace(" ", ""), name)

    def row(self, line: int, record: str) -> None:
        try:
            values = self._split(record)
        except _RowError as exc:
            self.total += 1
            self._bad(line, "row", str(exc))
            return
        if not any(v.strip() for v in values):
            return  # blank lines are not rows
        self.total += 1
        if len(values) != len(self.columns):
            self._bad(line, "row", f"has {len(values)} fields, the header has {len(self.columns)}")
            return
        contact: dict[str, str] = {}
        merge: dict[str, str] = {}
        for name, value in zip(self.columns, values):
            key = self.key(name)
            if len(value) > self.max_chars:
                self._bad(line, name, f"is longer than {self.max_chars} characters")
                return
            problem = header_text_problem(value) if key in ("first_name", "last_name") else None
            if problem is not None:
                self._bad(line, name, problem)
                return
            if key == "timezone" and value.strip():
                try:
                    value = contact_fields({}, value)["timezone"]
                except ValidationError as exc:
                    self._bad(line, name, exc.rule)
                    return
            if key in ("email", "first_name", "last_name", "company"):
                contact[key] = value.strip()
            if key != "email" and value != "":
                merge[_MERGE_NAME.get(key, name)] = value
        try:
            email = normalize_email(contact["email"], field_name="email")
        except ValidationError as exc:
            self._bad(line, exc.field, f"{exc.rule} (got {contact['email']!r})")
            return
        digest = int.from_bytes(hashlib.blake2b(email.encode(), digest_size=8).digest(), "big")
        if digest in self._seen:
            self._bad(line, "email", f"{email} is also on line {self._seen[digest]}")
            return
        self._seen[digest] = line
        self.valid_count += 1
        position = self.position
        self.position += 1
        if not self.keep:
            return
        self.lines[position] = line
        self.valid.append((position, ContactInput(email, contact.get("first_name", ""), contact.get("last_name", ""),
                                                  contact.get("company", "")), merge))

    def _bad(self, line: int, field_name: str, rule: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_INVALID_REPORTED:
            self.invalid.append({"line": line, "field": field_name, "rule": rule})


class _RowError(Exception):
    pass


class CsvPass:
    """One pass over a CSV byte stream into ``rows``: the first records are held back until the
    delimiter is sniffed from them, then every record goes to ``rows`` as it completes."""

    def __init__(self, rows: CsvRows) -> None:
        self.rows = rows
        self._splitter = RecordSplitter(max_record_chars=16 * rows.max_chars)
        # The csv module refuses fields over its own limit (131,072) with a bare csv.Error; a
        # record is bounded above, so lift it to that bound and let our rule name the field.
        if csv.field_size_limit() < 16 * rows.max_chars:
            csv.field_size_limit(16 * rows.max_chars)
        self._early: list[tuple[int, str]] = []
        self._started = False

    def feed(self, chunk: bytes, final: bool = False) -> None:
        for line, record in self._splitter.feed(chunk, final):
            if self._started:
                self.rows.row(line, record)
                continue
            self._early.append((line, record))
            if len(self._early) >= SNIFF_RECORDS:
                self._start()
        if final and not self._started:
            if not self._early:
                raise ValidationError("csv", "the file is empty (a header row is required)")
            self._start()

    def _start(self) -> None:
        self._started = True
        (line, header), rest = self._early[0], self._early[1:]
        self.rows.header(line, header, sample="".join(record for _, record in self._early))
        for line, record in rest:
            self.rows.row(line, record)
        self._early = []


def parse_all(chunks: list[bytes]) -> CsvRows:
    """Parse a whole file given as chunks (tests and small uploads)."""
    rows = CsvRows()
    reader = CsvPass(rows)
    for chunk in chunks:
        reader.feed(chunk)
    reader.feed(b"", final=True)
    return rows
