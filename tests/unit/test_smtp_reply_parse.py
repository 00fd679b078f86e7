"""PipeliningProtocol's reply queue against aiosmtplib's own parser: the same bytes, however the
network splits them, give the same replies in the same order and the same error, whether they
are one-line replies (read a buffer at a time) or anything else (left to aiosmtplib)."""

from __future__ import annotations

import asyncio
import random
from typing import Iterator

import pytest
from aiosmtplib.protocol import MAX_LINE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse

from dripd_smtp.pipelining import PipeliningProtocol


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()  # never run: the protocols only need one to exist
    yield loop
    loop.close()


def _reference(stream: bytes, loop: asyncio.AbstractEventLoop) -> tuple[list[SMTPResponse], str | None]:
    """Every reply in ``stream`` as aiosmtplib's ``_read_response_from_buffer`` reads them."""
    protocol = SMTPProtocol(loop=loop)
    protocol._buffer.extend(stream)
    replies: list[SMTPResponse] = []
    try:
        while (response := protocol._read_response_from_buffer()) is not None:
            replies.append(response)
    except Exception as exc:
        return replies, repr(exc)
    return replies, None


def _pipelined(chunks: list[bytes], loop: asyncio.AbstractEventLoop) -> tuple[list[SMTPResponse], str | None]:
    protocol = PipeliningProtocol(loop=loop)
    protocol.open_pipeline()
    for chunk in chunks:
        protocol.data_received(chunk)
        if protocol._pipeline_error is not None:
            break
    assert protocol._replies is not None
    error = protocol._pipeline_error
    return list(protocol._replies), None if error is None else repr(error)


def _split(stream: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(0, 6))))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]


STREAMS = [
    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
    b"250 2.0.0 Ok: queued as 4F2A1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n",
    b"250-first\r\n250-second line\r\n250 last\r\n250 2.1.0 Ok\r\n",
    b"250 Ok\r\n451-4.3.0 try\r\n451 4.3.0 later\r\n550 5.1.1 no such user \xc3\xa9\xff\r\n",
    b"250\r\n250 \r\n250\t tabs and spaces \t\r\n250 Ok\n354 bare LF\n",
    b"250 Ok\r\n25 short code\r\n250 Ok\r\n",
    b"250 Ok\r\n+25 sign\r\n",
    b"250 Ok\r\nabc not a code\r\n",
    b"250 Ok\r\n" + b"250 " + b"x" * (MAX_LINE_LENGTH + 10) + b"\r\n",
    b"250 Ok\r\n" + b"250 " + b"x" * (MAX_LINE_LENGTH - 6) + b"\r\n250 Ok\r\n",
    b"250 Ok\r\n" + b"250 " + b"x" * (MAX_LINE_LENGTH - 5) + b"\r\n250 Ok\r\n",
    b"250 Ok\r\n250 partial",
    b"250-a\r\n250-b\r\n",
]


@pytest.mark.parametrize("stream", STREAMS)
def test_same_replies_as_aiosmtplib(stream: bytes, loop: asyncio.AbstractEventLoop) -> None:
    expected = _reference(stream, loop)
    rng = random.Random(stream)
    for _ in range(50):
        assert _pipelined(_split(stream, rng), loop) == expected
    assert _pipelined([stream], loop) == expected
    assert _pipelined([stream[i:i + 1] for i in range(len(stream))], loop) == expected


def test_one_line_replies_are_all_queued(loop: asyncio.AbstractEventLoop) -> None:
    replies, error = _pipelined([STREAMS[0]], loop)
    assert error is None
    assert replies == [SMTPResponse(250, "2.1.0 Ok"), SMTPResponse(250, "2.1.5 Ok"),
                       SMTPResponse(354, "End data with <CR><LF>.<CR><LF>")]
