"""CSV records split out of arbitrary chunks, with the line each starts on."""

from __future__ import annotations

import pytest

from dripd.api.csv_import import CsvPass, CsvRows, RecordSplitter, parse_all, sniff_delimiter
from dripd.errors import ValidationError

TEXT = 'email,First Name,company,market\r\na@x.org,Ann,"Acme, Inc.","two\nlines"\r\n\r\nb@x.org,Bo,"say ""hi""",EU'


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_chunk_borders_do_not_matter(size: int) -> None:
    data = ("\ufeff" + TEXT).encode()
    rows = parse_all([data[i:i + size] for i in range(0, len(data), size)])
    assert rows.total == 2 and rows.invalid == []
    assert [rows.lines[p] for p, _, _ in rows.valid] == [2, 5]
    (_, ann, ann_merge), (_, bo, bo_merge) = rows.valid
    assert (ann.email, ann.first_name, ann.company) == ("a@x.org", "Ann", "Acme, Inc.")
    assert ann_merge == {"firstName": "Ann", "company": "Acme, Inc.", "market": "two\nlines"}
    assert bo.company == 'say "hi"' and bo_merge["market"] == "EU"


@pytest.mark.parametrize("value, rule", [
    ('"Ann\r\nBcc: all@x.org"', "must not contain CR or LF"),
    ("Ann\x07", "must not contain control characters"),
])
@pytest.mark.parametrize("column", ["firstName", "last_name", "First Name"])
def test_a_name_that_cannot_stand_in_the_to_header_is_refused_by_line_and_column(column: str, value: str,
                                                                                 rule: str) -> None:
    rows = parse_all([f"email,{column},note\nok@x.org,Tab\there,\"two\nlines\"\nbad@x.org,{value},\n".encode()])
    assert rows.invalid == [{"line": 4, "field": column, "rule": rule}]
    # A tab can stand in a header; other columns may hold line breaks (the subject neutralises them).
    assert [(c.email, merge["note"]) for _, c, merge in rows.valid] == [("ok@x.org", "two\nlines")]


def test_bad_rows_are_reported_by_line() -> None:
    rows = parse_all([b"email,x\nok@x.org,1\nnope,2\nok@x.org,3\nshort\n"])
    assert [(bad["line"], bad["field"]) for bad in rows.invalid] == [(3, "email"), (4, "email"), (5, "row")]
    assert "also on line 2" in str(rows.invalid[1]["rule"])
    assert len(rows.valid) == 1


def test_header_and_encoding_errors() -> None:
    with pytest.raises(ValidationError, match="email column"):
        parse_all([b"name\nx\n"])
    with pytest.raises(ValidationError, match="empty"):
        parse_all([b""])
    with pytest.raises(ValidationError, match="UTF-8"):
        parse_all([b"email\n\xff@x.org\n"])
    with pytest.raises(ValidationError, match="never closed"):
        parse_all([b'email,x\na@x.org,"open\n'])


def test_splitter_keeps_an_unterminated_last_record() -> None:
    splitter = RecordSplitter()
    assert list(splitter.feed(b"a,b\nc,d")) == [(1, "a,b\n")]
    assert list(splitter.feed(b"", final=True)) == [(2, "c,d")]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_sniffed(delimiter: str) -> None:
    text = (f"Email{delimiter}First Name{delimiter}note\n"
            f"a@x.org{delimiter}Ann{delimiter}\"one, two; three\"\n"
            f"b@x.org{delimiter}Bo{delimiter}plain\n")
    rows = parse_all([text.encode()])
    assert rows.delimiter == delimiter and rows.invalid == []
    assert [(c.email, c.first_name, merge["note"]) for _, c, merge in rows.valid] == [
        ("a@x.org", "Ann", "one, two; three"), ("b@x.org", "Bo", "plain")]


def test_a_single_column_file_and_an_undecidable_sample_fall_back_to_the_header() -> None:
    assert parse_all([b"email\na@x.org\n"]).delimiter == ","
    assert sniff_delimiter("name;email\n") == ";"


def test_fields_and_records_are_bounded() -> None:
    rows = CsvRows(max_chars=8)
    rows.header(1, "email,note\n")
    rows.row(2, "a@x.org,123456789\n")
    assert rows.invalid == [{"line": 2, "field": "note", "rule": "is longer than 8 characters"}]
    splitter = RecordSplitter(max_record_chars=10)
    with pytest.raises(ValidationError, match="longer than 10 characters"):
        list(splitter.feed(b'email\n"never closed, and long'))


def test_a_checking_pass_keeps_counts_not_rows() -> None:
    rows = CsvRows(keep=False)
    reader = CsvPass(rows)
    reader.feed(b"email\n" + b"".join(f"u{n}@x.org\n".encode() for n in range(50)) + b"u1@x.org\n", final=True)
    assert (rows.total, rows.valid_count, rows.invalid_count, rows.valid) == (51, 50, 1, [])
