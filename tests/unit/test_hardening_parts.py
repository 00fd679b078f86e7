"""Pure parts of the issue 20 hardening: the tracking hit limiter, URLs from merge fields, RFC 2047
line lengths and List-Id."""

from __future__ import annotations

import email
import email.policy

import pytest

from dripd.errors import ValidationError
from dripd.render import Envelope, build_message, compile_template
from dripd.render._headers import address_line, unstructured
from dripd.tracking.dedupe import HitLimiter


def test_repeats_within_the_window_are_not_stored() -> None:
    limiter = HitLimiter(window_seconds=60, per_message=100)
    assert limiter.admit(1, "open", 0.0)
    assert not limiter.admit(1, "open", 59.0)
    assert limiter.admit(1, "open-flagged", 59.0)  # another flag is another key
    assert limiter.admit(2, "open", 59.0)  # another message
    assert limiter.admit(1, "open", 60.0)  # the window is over


def test_one_message_writes_at_most_its_cap_and_memory_is_bounded() -> None:
    limiter = HitLimiter(window_seconds=3600, per_message=3, max_entries=50)
    assert [limiter.admit(7, n, 0.0) for n in range(5)] == [True, True, True, False, False]
    for message in range(1000):
        limiter.admit(message + 100, "open", 1.0)
    assert len(limiter._last) <= 50 and len(limiter._rows) <= 50


@pytest.mark.parametrize("value", ["javascript:alert(1)", "JavaScript:alert(1)", " java\tscript:x", "data:text/html,x",
                                   "vbscript:x", "//evil.example/x", "evil.example",
                                   "https://x.example/a onerror=alert(1)"])
def test_a_merge_field_cannot_start_a_non_http_link(value: str) -> None:
    template = compile_template("s", '<a href="{{u}}">a</a><a href=\'{{u}}\'>b</a><img src={{u}}>')
    assert template.render({"u": value}).html == '<a href="#">a</a><a href=\'#\'>b</a><img src=#>'


@pytest.mark.parametrize("value", ["https://example.org/a?b=1", "http://x.example", "mailto:a@example.org"])
def test_http_and_mailto_links_from_merge_fields_stay(value: str) -> None:
    html = compile_template("s", '<a href="{{u}}">a</a>').render({"u": value}).html
    assert html == f'<a href="{value.replace("&", "&amp;")}">a</a>'


def test_a_merge_field_later_in_the_url_or_in_text_is_left_alone() -> None:
    template = compile_template("s", '<a href="https://example.org/?r={{u}}">{{u}}</a> {{u}}')
    assert template.render({"u": "javascript:x"}).html == (
        '<a href="https://example.org/?r=javascript:x">javascript:x</a> javascript:x')


@pytest.mark.parametrize("length", range(1, 120, 7))
def test_encoded_lines_are_at_most_76_characters(length: int) -> None:
    for text in ("é" * length, "Grüße aus Köln " * (length // 10 + 1), "日本" * length, "a" * length + " ü"):
        for line in unstructured("Subject", text).split("\r\n") + address_line(
                "To", "to_name", text, "to_address", "a@example.com").split("\r\n"):
            if "=?" in line:
                assert len(line) <= 76, line


def test_list_id_goes_out_as_given_and_is_checked() -> None:
    rendered = compile_template("s", "<p>x</p>").render({})
    envelope = dict(from_address="a@example.com", from_name="A", to_address="b@example.org", message_id="<1@x>",
                    date=0.0, list_unsubscribe=("https://t.example/u/x",))
    data = build_message(Envelope(**envelope, list_id="s12.example.com"), rendered)  # type: ignore[arg-type]
    assert email.message_from_bytes(data, policy=email.policy.default)["List-Id"] == "<s12.example.com>"
    with pytest.raises(ValidationError, match="list_id"):
        build_message(Envelope(**envelope, list_id="a b\r\nBcc: x"), rendered)  # type: ignore[arg-type]
