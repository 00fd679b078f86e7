"""Tests of the pure message classifier against the shared real-world corpus and our own samples."""

from __future__ import annotations

import collections
import datetime
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dripd_imap.classify import Classification, Kind, classify

REPO_ROOT = Path(__file__).resolve().parents[2]
# CI clones the repo beside shared/, so the corpus is found relative to the repo, not /work.
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
BOUNCES = CORPUS / "bounces"
NOT_BOUNCES = CORPUS / "not-bounces"
OWN_MAIL = Path(__file__).resolve().parent / "mail"

# Corpus files whose honest classification differs from their family's rule. Each is asserted
# below to behave exactly as stated here, so a change in behaviour shows up as a failure.
EXCEPTIONS: dict[str, str] = {
    "rfc3464-28.eml": "a positive DSN (Action: deliverable, Status 2.1.5, 'the mail delivery report that you "
    "requested'): Kind.DELIVERED, not a bounce",
    "arf-11.eml": "complaint that names no recipient at all (To: <Undisclosed Recipients>, no Original-Rcpt-To)",
    "arf-15.eml": "complaint that names no recipient at all (To: \"undisclosed\", no Original-Rcpt-To)",
    "rb-issue-368-bug.eml": "filed under not-bounces/, but it is a postmaster@ notice with Return-Path <> saying "
    "the message was 'rejected and discarded' because of 'Mailbox full' for xxxx@yyyyyy.net: a soft bounce",
}

# The corpus lives in the project's shared folder beside the checkout (CI lays it out the
# same way); a missing corpus is a failure, not a skip: a skipped test proves nothing.
assert CORPUS.is_dir(), f"shared corpus not found at {CORPUS}"


def family(path: Path) -> str:
    """rfc3464, lhost-<mta>, rfc3834, arf, or not-bounce."""
    if path.parent.name == "not-bounces":
        return "not-bounce"
    parts = path.stem.split("-")
    return "-".join(parts[:2]) if parts[0] == "lhost" else parts[0]


def corpus_files() -> list[Path]:
    return sorted(BOUNCES.glob("*.eml")) + sorted(NOT_BOUNCES.glob("*.eml"))


def meets_family_rule(path: Path, result: Classification) -> bool:
    fam = family(path)
    if fam == "rfc3834":
        return result.kind is Kind.AUTO_REPLY
    if fam == "arf":
        return result.kind is Kind.COMPLAINT and bool(result.failed_recipients)
    if fam == "not-bounce":
        return result.kind is not Kind.BOUNCE
    return (
        result.kind is Kind.BOUNCE and bool(result.failed_recipients) and result.bounce_class in {"hard", "soft"}
    )


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def test_corpus_hit_rate_per_family() -> None:
    hits: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    unexpected = []
    for path in corpus_files():
        result = classify(path.read_bytes())
        ok = meets_family_rule(path, result)
        totals[family(path)] += 1
        hits[family(path)] += ok
        if not ok and path.name not in EXCEPTIONS:
            unexpected.append(f"{path.name}: {result.kind.value} {result.failed_recipients} {result.bounce_class}")
    report = "\n".join(
        f"  {fam:<18} {hits[fam]:>3}/{totals[fam]:<3} {100 * hits[fam] / totals[fam]:5.1f}%" for fam in sorted(totals)
    )
    report += "\n  documented exceptions:\n" + "\n".join(f"    {n}: {why}" for n, why in EXCEPTIONS.items())
    print("\nclassifier hit rate per family:\n" + report)
    assert not unexpected, "misclassified:\n" + "\n".join(unexpected) + "\n" + report
    assert sum(totals.values()) >= 250, f"corpus looks incomplete:\n{report}"


def test_documented_exceptions_behave_as_documented() -> None:
    delivered = classify((BOUNCES / "rfc3464-28.eml").read_bytes())
    assert delivered.kind is Kind.DELIVERED and delivered.status == "2.1.5"
    for name in ("arf-11.eml", "arf-15.eml"):
        result = classify((BOUNCES / name).read_bytes())
        assert result.kind is Kind.COMPLAINT and result.failed_recipients == ()
    mislabelled = classify((NOT_BOUNCES / "rb-issue-368-bug.eml").read_bytes())
    assert mislabelled.kind is Kind.BOUNCE and mislabelled.bounce_class == "soft"
    assert mislabelled.failed_recipients == ("xxxx@yyyyyy.net",)


_FAILED_RCPT_HEADER = re.compile(r"^X-Failed-Recipients:(.*(?:\n[ \t].*)*)", re.M | re.I)
_FINAL_RCPT = re.compile(r"^Final-Recipient:[^;\n]*;\s*<?\"?([^\s<>\"]+)\"?(@[^\s<>;]+?)>?\s*$", re.M | re.I)
_LOOSE_ADDR = re.compile(r"[^\s,<>\"]+@[^\s,<>\"]+")


def knowable_recipients(raw: bytes) -> tuple[list[str], list[str]]:
    """(X-Failed-Recipients of the bounce itself, Final-Recipient addresses anywhere), lowercased."""
    text = raw.decode("latin-1")
    top = text.split("\n\n", 1)[0]
    failed = [a.lower() for v in _FAILED_RCPT_HEADER.findall(top) for a in _LOOSE_ADDR.findall(v)]
    final = [(local + domain).lower() for local, domain in _FINAL_RCPT.findall(text)]
    return failed, final


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(BOUNCES.glob("*.eml")) if family(p) not in {"rfc3834", "arf"}] if BOUNCES.is_dir() else [],
    ids=lambda p: p.name,
)
def test_bounce_names_its_knowable_recipient(path: Path) -> None:
    result = classify(path.read_bytes())
    failed, final = knowable_recipients(path.read_bytes())
    for address in failed:
        assert address in result.failed_recipients, (address, result)
    if final and path.name not in EXCEPTIONS:
        assert set(final) & set(result.failed_recipients), (final, result)


def test_arf_names_original_rcpt_to() -> None:
    raw = (BOUNCES / "arf-16.eml").read_bytes()
    listed = re.findall(r"^Original-Rcpt-To:\s*(\S+)", raw.decode("latin-1"), re.M | re.I)
    assert len(listed) >= 4
    assert classify(raw).failed_recipients == tuple(a.lower() for a in listed)


def test_microsoft_jmrp_complaint_uses_original_recipient() -> None:
    result = classify((BOUNCES / "arf-22.eml").read_bytes())
    assert result.kind is Kind.COMPLAINT
    assert result.failed_recipients == ("kijitora@example.com",)
    assert result.original_message_id == "<0000000000fffffffff0000000000000@example.com>"


def test_delayed_dsn_is_a_soft_bounce() -> None:
    # Decision: "still being retried" is reported as a soft bounce (never a stop by itself).
    for name in ("rfc3464-09.eml", "lhost-exim-38.eml", "lhost-gmail-06.eml"):
        result = classify((BOUNCES / name).read_bytes())
        assert result.kind is Kind.BOUNCE and result.bounce_class == "soft", name


def test_standard_dsn_fields_are_read() -> None:
    result = classify((BOUNCES / "lhost-sendmail-54.eml").read_bytes())  # MIME without a Content-Type
    assert result.kind is Kind.BOUNCE
    assert result.failed_recipients == ("kijitora@neko.example.jp",)
    assert result.status == "4.4.7" and result.bounce_class == "soft"
    assert result.original_message_id == "<201806030522.w535M2jB065855@neko.example.jp>"


def test_full_mailbox_is_soft_even_with_class_5() -> None:
    # RFC 3463: X.2.2 "mailbox full" is a persistent transient failure.
    result = classify((BOUNCES / "lhost-office365-12.eml").read_bytes())
    assert result.status == "5.2.2" and result.bounce_class == "soft"


def test_user_unknown_is_hard_with_diagnostic() -> None:
    result = classify((BOUNCES / "lhost-gmail-01.eml").read_bytes())
    assert result.kind is Kind.BOUNCE and result.bounce_class == "hard" and result.status == "5.1.1"
    assert result.diagnostic and len(result.diagnostic) <= 200


def test_forwarded_bounce_with_dsn_fields_is_a_bounce() -> None:
    result = classify((BOUNCES / "lhost-sendmail-14.eml").read_bytes())
    assert result.kind is Kind.BOUNCE and result.failed_recipients == ("kijitora@example.com",)


def test_auto_reply_return_date_from_corpus() -> None:
    result = classify((BOUNCES / "rfc3834-01.eml").read_bytes())  # "returning to the office on May 5th"
    assert result.kind is Kind.AUTO_REPLY and result.return_date == datetime.date(2005, 5, 5)
    apple = classify((BOUNCES / "rfc3834-03.eml").read_bytes())  # X-Apple-Criteria endDate
    assert apple.return_date == datetime.date(2020, 1, 10)
    assert apple.original_message_id == "<25203A4E-F90F-4A14-BF51-3E7B9D39BE8E@libsisimai.org>"


# --------------------------------------------------------------------------------------------
# Our own samples: human replies, auto-replies, malformed MIME
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sender", "reference"),
    [
        ("reply-gmail.eml", "bruno.costa@client.example", "<step1.42@sender.example>"),
        ("reply-outlook-cp1252.eml", "renee@corp.example", "<step2.42@sender.example>"),
        ("reply-applemail-latin1-base64.eml", "zoe@maison.example", "<step1.77@sender.example>"),
        ("reply-thunderbird-flowed.eml", "piotr@lab.example", "<step1.90@sender.example>"),
        ("reply-html-only.eml", "kim@shop.example", "<step3.12@sender.example>"),
        ("reply-quoting-bounce.eml", "tom@hart.example", "<step1.55@sender.example>"),
    ],
)
def test_human_replies_are_messages(name: str, sender: str, reference: str) -> None:
    result = classify((OWN_MAIL / name).read_bytes())
    assert result.kind is Kind.MESSAGE, result
    assert result.sender == sender
    assert reference in result.references
    assert result.failed_recipients == () and result.bounce_class is None


def test_reply_subject_and_references_are_decoded() -> None:
    result = classify((OWN_MAIL / "reply-outlook-cp1252.eml").read_bytes())
    assert result.subject == "RE: Proposal for Q1"
    assert result.references == ("<step2.42@sender.example>", "<step1.42@sender.example>")


@pytest.mark.parametrize(
    ("name", "return_date"),
    [
        ("ooo-exchange.eml", datetime.date(2026, 12, 3)),
        ("vacation-gmail.eml", datetime.date(2026, 12, 7)),
        ("ooo-german.eml", datetime.date(2026, 12, 3)),
        ("ooo-iso-date.eml", datetime.date(2027, 1, 4)),
    ],
)
def test_out_of_office_with_return_date(name: str, return_date: datetime.date) -> None:
    result = classify((OWN_MAIL / name).read_bytes())
    assert result.kind is Kind.AUTO_REPLY, result
    assert result.return_date == return_date


def test_exchange_ooo_points_at_the_step_it_answers() -> None:
    result = classify((OWN_MAIL / "ooo-exchange.eml").read_bytes())
    assert result.original_message_id == "<step1.42@sender.example>"


def _mail(headers: str, body: str) -> bytes:
    return (headers.strip() + "\n\n" + body).encode("utf-8")


@pytest.mark.parametrize(
    ("text", "sent", "expected"),
    [
        ("I'll be back on 3 December.", "Mon, 30 Nov 2026 10:00:00 +0000", datetime.date(2026, 12, 3)),
        ("I will return on 2026-12-03.", "Mon, 30 Nov 2026 10:00:00 +0000", datetime.date(2026, 12, 3)),
        ("Back on January 5th.", "Mon, 21 Dec 2026 10:00:00 +0000", datetime.date(2027, 1, 5)),
        ("Out until Monday 7th.", "Mon, 30 Nov 2026 10:00:00 +0000", datetime.date(2026, 12, 7)),
        ("Ich bin ab dem 03.12. wieder da.", "Mon, 30 Nov 2026 10:00:00 +0000", datetime.date(2026, 12, 3)),
        ("I am away with no fixed return.", "Mon, 30 Nov 2026 10:00:00 +0000", None),
    ],
)
def test_return_date_phrases(text: str, sent: str, expected: datetime.date | None) -> None:
    raw = _mail(f"From: a@b.example\nSubject: Out of Office\nDate: {sent}\nAuto-Submitted: auto-replied", text)
    result = classify(raw)
    assert result.kind is Kind.AUTO_REPLY and result.return_date == expected


def test_auto_response_suppress_alone_is_not_an_auto_reply() -> None:
    raw = _mail("From: p@x.example\nSubject: Re: hello\nX-Auto-Response-Suppress: All", "Sure, call me.")
    assert classify(raw).kind is Kind.MESSAGE


def test_precedence_bulk_alone_is_not_an_auto_reply() -> None:
    raw = _mail("From: news@x.example\nSubject: Our December newsletter\nPrecedence: bulk", "News.")
    assert classify(raw).kind is Kind.MESSAGE


def test_auto_submitted_no_is_a_message() -> None:
    raw = _mail("From: p@x.example\nSubject: Re: hi\nAuto-Submitted: no", "Thanks!")
    assert classify(raw).kind is Kind.MESSAGE


def test_positive_dsn_is_delivered() -> None:
    raw = _mail(
        'From: MAILER-DAEMON@mx.example\nSubject: Successful Mail Delivery Report\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        "--b\nContent-Type: text/plain\n\nDelivered.\n\n--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; c@d.example\nAction: relayed\n"
        "Status: 2.0.0\n\n--b--\n",
    )
    result = classify(raw)
    assert result.kind is Kind.DELIVERED and result.bounce_class is None and result.failed_recipients == ()


def test_bounce_without_code_or_wording_defaults_to_hard() -> None:
    raw = _mail(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\nTo: ana@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender",
        "Your message could not be delivered to the following recipient:\n\n  bob@far.example\n",
    )
    result = classify(raw)
    assert result.kind is Kind.BOUNCE and result.bounce_class == "hard"
    assert result.failed_recipients == ("bob@far.example",)


MALFORMED: dict[str, bytes] = {
    "missing boundary": b"From: x@y.example\nSubject: hi\nContent-Type: multipart/mixed\n\n--zz\n\nbody\n--zz--\n",
    "bad charset name": b"From: x@y.example\nSubject: =?no-such-cs?Q?caf=E9?=\nContent-Type: text/plain; "
    b"charset=no-such-charset\n\ncaf\xe9\n",
    "truncated base64": b"From: x@y.example\nSubject: b64\nContent-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: base64\n\nSGVsbG8gd29y=\nbG\n",
    "nul bytes": b"From: x@\x00y.example\nSubject: \x00\x00\nContent-Type: text/plain\n\n\x00\x00\x00 hello\x00",
    "empty": b"",
    "headers only": b"From: x@y.example",
    "binary junk": bytes(range(256)) * 4,
    "nested report without parts": b"Content-Type: multipart/report; report-type=delivery-status\n\n",
    "truncated mid-header": b"From: Mail Delivery System <MAILER-DAEMON@x.example>\nSubject: Undeliv",
    "rfc2231 junk": b"Content-Type: text/plain; charset*=''%%%\nFrom: a@b.example\n\nx\n",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_mime_never_raises(raw: bytes) -> None:
    result = classify(raw)
    assert isinstance(result, Classification)
    assert isinstance(result.kind, Kind)


def test_missing_boundary_mail_still_a_message() -> None:
    assert classify(MALFORMED["missing boundary"]).kind is Kind.MESSAGE


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(classify(raw), Classification)


_SEEDS = [p.read_bytes() for p in corpus_files()[::8]] if CORPUS.is_dir() else [b""]


@st.composite
def mutated_corpus_file(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"\x00", b"\n--", b"=?utf-8?B?", b"Content-Type: multipart/", b"\n\n"]))
        elif op == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=200))]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus_file())
def test_mutated_corpus_files_never_raise(raw: bytes) -> None:
    assert isinstance(classify(raw), Classification)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus_file())
def test_mutations_do_not_need_the_safety_net(raw: bytes) -> None:
    # classify() catches everything; this checks the rules themselves cope, so the catch-all
    # stays a last resort rather than a place where real bounces silently become MESSAGEs.
    from dripd_imap.classify import _classify

    assert isinstance(_classify(raw), Classification)
