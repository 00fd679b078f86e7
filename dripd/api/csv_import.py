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
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from dripd.api.csv_fields import split_record
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


class RecordSplitter:
    """Feeds bytes in, yields complete CSV records (with the line each starts on) as text.

    A record ends at a newline outside quotes: an even count of ``"`` so far (an escaped ``""``
    counts two), so quoted fields may hold newlines and chunk borders may fall anywhere.
    """

    def __init__(self) -> None:
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
            if self._quotes % 2 == 0:
                yield self._line, self._pending
                self._line += self._lines_in_pending
                self._pending, self._quotes, self._lines_in_pending = "", 0, 0
        rest = text[start:]
        self._pending += rest
        self._quotes += rest.count('"')
        if final and self._pending.strip():
            if self._quotes % 2:
                raise ValidationError("csv", f"line {self._line}: a quoted field is never closed")
            yield self._line, self._pending
            self._pending = ""


@dataclass
class CsvRows:
    """What the file holds: valid rows by position, and the invalid ones with their line."""

    columns: list[str] = field(default_factory=list)
    valid: list[tuple[int, ContactInput, Mapping[str, str]]] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)  # position -> line
    invalid: list[dict[str, object]] = field(default_factory=list)
    invalid_count: int = 0
    total: int = 0
    _seen: dict[str, int] = field(default_factory=dict)

    def header(self, line: int, record: str) -> None:
        try:
            names = split_record(record)
        except ValidationError as exc:
            raise ValidationError("csv", f"line {line}: the header row: {exc.rule}") from None
        self.columns = [name.strip() for name in names]
        keys = [self._key(n) for n in self.columns]
        if "email" not in keys:
            raise ValidationError("csv", f"line {line}: the header row needs an email column")
        if len(set(self.columns)) != len(self.columns):
            raise ValidationError("csv", f"line {line}: the header row names a column twice")

    @staticmethod
    def _key(name: str) -> str:
        return _CONTACT_COLUMNS.get(name.lower().replace("_", "").replace("-", "").replace(" ", ""), name)

    def row(self, line: int, record: str) -> None:
        try:
            values = split_record(record)
        except ValidationError as exc:
            self.total += 1
            self._bad(line, "row", exc.rule)
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
            key = self._key(name)
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
        if email in self._seen:
            self._bad(line, "email", f"{email} is also on line {self._seen[email]}")
            return
        self._seen[email] = line
        position = len(self.valid)
        self.lines[position] = line
        self.valid.append((position, ContactInput(email, contact.get("first_name", ""), contact.get("last_name", ""),
                                                  contact.get("company", "")), merge))

    def _bad(self, line: int, field_name: str, rule: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_INVALID_REPORTED:
            self.invalid.append({"line": line, "field": field_name, "rule": rule})


def parse_all(chunks: list[bytes]) -> CsvRows:
    """Parse a whole file given as chunks (tests and small uploads)."""
    rows = CsvRows()
    splitter = RecordSplitter()
    first = True
    for index, chunk in enumerate(chunks + [b""]):
        for line, record in splitter.feed(chunk, final=index == len(chunks)):
            if first:
                rows.header(line, record)
                first = False
            else:
                rows.row(line, record)
    if first:
        raise ValidationError("csv", "the file is empty (a header row is required)")
    return rows
