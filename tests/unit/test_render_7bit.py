"""A text part goes 7bit exactly when RFC 2045's rule allows it, whatever the shape of its lines.

The rule, written as the one regex ``_encode_body`` used to search with (quadratic in the length
of a line, so no longer used there), is the oracle here."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from dripd.render import Envelope, Rendered, build_message
from dripd.render._mime import _as_7bit

_NEEDS_QUOTED_PRINTABLE = re.compile(r"[^\t\n\x20-\x7e]|[^\n]{77}|[ \t]\n|[ \t]\Z")

# Lines near the 76-character limit, trailing blanks, controls and a little non-ASCII: where the
# rule's edges are.
_PIECES = st.sampled_from(["a", "word ", " ", "\t", "\n", "x" * 30, "y" * 76, "z" * 77, "\x01", "\x7f", "é", "~"])


def rule_allows_7bit(text: str) -> bool:
    return text.isascii() and not _NEEDS_QUOTED_PRINTABLE.search(text)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_seven_bit_exactly_when_the_rule_allows(text: str) -> None:
    encoded = _as_7bit(text)
    assert (encoded is not None) == rule_allows_7bit(text)
    if encoded is not None:
        assert encoded == text.replace("\n", "\r\n").encode("ascii")


def test_the_limit_is_76_characters_a_line() -> None:
    assert _as_7bit("x" * 76 + "\n" + "y" * 76) == b"x" * 76 + b"\r\n" + b"y" * 76
    assert _as_7bit("x" * 76 + "\n" + "y" * 77) is None
    assert _as_7bit("") == b""


def test_a_hand_wrapped_body_goes_7bit_and_reads_back() -> None:
    # 40 lines of 60 characters: the shape whose check was quadratic in the line's length.
    text = "\n".join(f"line {n:02d} " + "of a hand-wrapped plain-text follow-up body" + "." * 9
                     for n in range(40)) + "\n"
    envelope = Envelope(from_address="a@example.com", from_name="A", to_address="b@example.com",
                        message_id="<1@example.com>", date=0.0)
    raw = build_message(envelope, Rendered("s", "<p>hi</p>\n", text, ()))
    assert raw.count(b"Content-Transfer-Encoding: 7bit") == 2
    message = BytesParser(policy=policy.default).parsebytes(raw)
    plain = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    assert plain.get_content().replace("\r\n", "\n") == text  # the parser keeps 7bit's CRLF
