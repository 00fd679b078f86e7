"""take_replies reads a pipelined connection's replies exactly as aiosmtplib's own parser does,
one reply at a time (the oracle): the same replies, the same bytes left over, the same errors."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator

import aiosmtplib
import pytest
from aiosmtplib.protocol import MAX_LINE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from dripd_smtp.pipelining import take_replies

_LINES = st.tuples(
    st.sampled_from(["250", "354", "421", "550", "25", "2x0", "", " 25"]),
    st.sampled_from(["-", " ", "", "\t"]),
    st.sampled_from(["", "OK", "2.1.0 Ok", " spaced \t", "caf\u00e9", "x" * 50, "\udcff"]),
    st.sampled_from(["\r\n", "\n", "\r\r\n"]),
).map(lambda t: (t[0] + t[1] + t[2]).encode("utf-8", "surrogateescape") + t[3].encode())
_TOO_LONG = b"250 " + b"y" * MAX_LINE_LENGTH + b"\r\n"


@pytest.fixture(scope="module")
def protocol() -> Iterator[SMTPProtocol]:
    """aiosmtplib's protocol, whose parser is the oracle (its loop only makes futures)."""
    loop = asyncio.new_event_loop()
    yield SMTPProtocol(loop=loop)
    loop.close()


def oracle(protocol: SMTPProtocol, data: bytes) -> tuple[list[SMTPResponse], bytes, tuple[int, str] | None]:
    del protocol._buffer[:]
    protocol._buffer.extend(data)
    replies: list[SMTPResponse] = []
    try:
        while (response := protocol._read_response_from_buffer()) is not None:
            replies.append(response)
    except aiosmtplib.SMTPResponseException as exc:
        return replies, bytes(protocol._buffer), (exc.code, exc.message)
    return replies, bytes(protocol._buffer), None


def ours(data: bytes) -> tuple[list[SMTPResponse], bytes, tuple[int, str] | None]:
    buffer, replies = bytearray(data), collections.deque[SMTPResponse]()
    try:
        take_replies(buffer, replies)
    except aiosmtplib.SMTPResponseException as exc:
        return list(replies), bytes(buffer), (exc.code, exc.message)
    return list(replies), bytes(buffer), None


@settings(max_examples=1000, deadline=None)
@given(st.lists(_LINES, max_size=8), st.sampled_from([b"", b"25", b"250-partial", b"354 no end", _TOO_LONG]),
       st.integers(min_value=0, max_value=8))
def test_reads_what_aiosmtplib_reads(protocol: SMTPProtocol, lines: list[bytes], tail: bytes, cut: int) -> None:
    # ``tail`` once in a while is a line too long, ahead of the lines after ``cut``.
    data = b"".join(lines[:cut]) + tail + b"".join(lines[cut:])
    assert ours(data) == oracle(protocol, data)


def test_a_pipelined_read_of_four_replies() -> None:
    data = b"250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n250-2.1.5 Ok\r\n250 more\r\n354 End data\r\n35"
    replies, left, error = ours(data)
    assert [(r.code, r.message) for r in replies] == [
        (250, "2.0.0 Ok: queued"), (250, "2.1.0 Ok"), (250, "2.1.5 Ok\nmore"), (354, "End data")]
    assert (left, error) == (b"35", None)


def test_a_multiline_reply_whose_first_line_says_nothing() -> None:
    # aiosmtplib joins the lines with LF only once the message has begun.
    replies, _, _ = ours(b"250-\r\n250-\r\n250 OK\r\n250-a\r\n250-\r\n250 b\r\n")
    assert [r.message for r in replies] == ["OK", "a\n\nb"]
