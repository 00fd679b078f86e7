"""The reply inbox's pure rules: new text without the quoted history, and the category, on a
corpus of replies written the way real clients write them (four languages), on messages written
by other hands for the classifier's tests, and on the edges of each rule."""

from __future__ import annotations

import typing

import pytest

from dripd.api.routes_inbox import CategoryName
from dripd.ctl.cmd_inbox import CATEGORIES
from dripd.inbox.categories import Category, categorize, fold
from dripd.inbox.quoting import new_text
from dripd.inbox.records import parse_source
from dripd_imap.classify import Kind, classify
from dripd_imap.reply_message import received_message
from tests.unit.replies.corpus import LANGUAGES, held_out, samples

SAMPLES = samples()
HELD_OUT = held_out()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_corpus_new_text_and_category(sample) -> None:  # type: ignore[no-untyped-def]
    text = new_text(sample.text)
    assert text == sample.new
    verdict = categorize(text, auto_reply=sample.auto_reply, subject=sample.subject)
    assert verdict.category.value == sample.category, verdict.rule


def test_corpus_covers_every_category_in_every_language() -> None:
    for language in LANGUAGES:
        found = {s.category for s in SAMPLES if s.language == language}
        assert found == {c.value for c in Category}, language


@pytest.mark.parametrize("held", HELD_OUT, ids=[h.file.name for h in HELD_OUT])
def test_held_out_messages_from_raw_bytes(held) -> None:  # type: ignore[no-untyped-def]
    raw = held.file.read_bytes()
    kind = classify(raw).kind
    message = received_message(raw)
    text = new_text(message.text)
    assert text.startswith(held.new)
    assert categorize(text, auto_reply=kind is Kind.AUTO_REPLY, subject=message.subject).category.value == held.category


def test_received_message_reads_headers_and_prefers_the_plain_part() -> None:
    message = received_message((HELD_OUT[0].file.parent / "reply-gmail.eml").read_bytes())
    assert message.message_id == "<CAK4x=abc123@mail.gmail.com>"
    assert message.from_header == "Bruno Costa <Bruno.Costa@Client.example>"
    assert message.subject == "Re: Quick question about your delivery process"
    assert message.date == "Tue, 1 Dec 2026 09:12:44 +0100"
    assert "<div" not in message.text and message.text.count("Sounds good") == 1


def test_received_message_drops_html_blockquotes_and_survives_junk() -> None:
    raw = (b"From: a@x.example\r\nSubject: Re: hi\r\nContent-Type: text/html\r\n\r\n"
           b"<div>Yes please</div><blockquote>old <blockquote>older</blockquote> text</blockquote><p>Call me</p>")
    assert new_text(received_message(raw).text) == "Yes please\n\nCall me"
    junk = received_message(b"\x00\xff not a message")
    assert junk.message_id == "" and junk.from_header == "" and "not a message" in junk.text


def test_interleaved_quotes_are_dropped_and_signature_cut() -> None:
    text = "> Can you do Tuesday?\nYes, Tuesday works.\n> And the price?\nSend it over.\n\n-- \nMark\nCEO"
    assert new_text(text) == "Yes, Tuesday works.\nSend it over."


def test_prose_that_looks_like_an_attribution_is_kept() -> None:
    text = "On Monday we wrote the plan: it is good.\nThanks"
    assert new_text(text) == text


def test_an_attribution_wrapped_into_prose_is_not_one() -> None:
    text = "Yes.\nOn the other hand, our CFO\nwrote: we need a quote first\nand more prose follows"
    assert new_text(text) == text


def test_crlf_and_an_all_quoted_reply() -> None:
    assert new_text("Thanks!\r\n\r\n> quoted\r\n> more\r\n") == "Thanks!"
    assert new_text("> only a quote\n>\n") == ""


@pytest.mark.parametrize(("text", "category"), [
    ("Not interested. Please remove me from your list.", Category.UNSUBSCRIBE_REQUEST),  # the opt-out wins
    ("I'm not interested.", Category.NOT_INTERESTED),  # "not interested" is read before "interested"
    ("Kein Interesse.", Category.NOT_INTERESTED),
    ("No estamos interesados.", Category.NOT_INTERESTED),
    ("Pas intéressé.", Category.NOT_INTERESTED),
    ("Pas interesse", Category.NOT_INTERESTED),  # accents folded: a hurried writer reads the same
    ("DÉSINSCRIVEZ-MOI", Category.UNSUBSCRIBE_REQUEST),
    ("Bitte austragen", Category.UNSUBSCRIBE_REQUEST),
    ("Thanks!", Category.OTHER),
    ("", Category.OTHER),
])
def test_rule_order_and_folding(text: str, category: Category) -> None:
    assert categorize(text).category is category


def test_an_auto_reply_with_no_sign_is_out_of_office_and_a_departure_outranks_it() -> None:
    assert categorize("Thanks for your email.", auto_reply=True).category is Category.OUT_OF_OFFICE
    assert categorize("I am out of the office. Jane no longer works at Acme, contact bob@acme.example.",
                      auto_reply=True).category is Category.WRONG_PERSON
    assert categorize("", auto_reply=True, subject="Abwesenheitsnotiz: Hallo").rule == "de:out_of_office"


def test_fold() -> None:
    assert fold("Straße  ÉTÉ\u2019s") == "strasse ete's"


def test_every_spelling_of_the_categories_is_the_same() -> None:
    assert set(typing.get_args(CategoryName)) == {c.value for c in Category} == set(CATEGORIES)


def test_parse_source() -> None:
    assert parse_source("INBOX/1700000000/42") == ("INBOX", 1700000000, 42)
    assert parse_source("Archive/2026/5/7") == ("Archive/2026", 5, 7)
    assert parse_source("") == (None, None, None)
    assert parse_source("maildir:abc") == ("maildir:abc", None, None)
