"""Listener isolation (dripd/api/listener.py): a failing connection or accept is logged and
ends nothing else. The Unix-socket race itself is reproduced against the real daemon in
tests/integration/test_hostile_listener.py."""

from __future__ import annotations

import errno
from typing import Any

import pytest
import trio
import trio.testing

from dripd.api.listener import _accept_loop, _connection


async def test_a_failing_connection_is_logged_and_closed_only(caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = trio.testing.memory_stream_pair()

    async def make(stream: Any) -> None:
        raise RuntimeError("boom in a connection")

    await _connection(make, "http://unix:/run/dripd.sock", ours)  # type: ignore[arg-type]
    assert "a connection failed and was closed: RuntimeError: boom in a connection" in caplog.text
    assert await theirs.receive_some(10) == b""  # the peer sees the close


class FlakyListener:
    """accept(): fails with EMFILE, then with something unexpected, then hands a stream, then closes."""

    def __init__(self) -> None:
        self.results: list[Any] = [OSError(errno.EMFILE, "Too many open files"), ValueError("odd"),
                                   "stream", trio.ClosedResourceError()]

    async def accept(self) -> Any:
        await trio.lowlevel.checkpoint()
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result


async def test_the_accept_loop_outlives_accept_errors(autojump_clock: trio.testing.MockClock,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    handled: list[Any] = []

    async def make(stream: Any) -> None:
        handled.append(stream)

    async with trio.open_nursery() as nursery:
        await _accept_loop(FlakyListener(), "http://127.0.0.1:1", nursery, make)  # type: ignore[arg-type]
    assert handled == ["stream"]
    assert "Too many open files" in caplog.text and "ValueError: odd" in caplog.text
