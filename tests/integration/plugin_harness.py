"""The SMTP transport and the IMAP detector run on their own, outside a daemon, against real
servers: the plugin state they keep (in memory here), a test message, sending a batch over one
transport, and a detector watched in the background.

Shared by the transport, detector, IMAP fault and OAuth tests; a test module never imports
another test module.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, AsyncIterator

import trio
import trio_asyncio

from dripd.hookspecs import MailEvent, OutgoingMessage, PluginContext, SendResult
from dripd_imap.config import ImapConfig
from dripd_imap.detector import ImapDetector
from dripd_smtp.config import SmtpConfig
from dripd_smtp.transport import SmtpTransport

MAILBOX = SimpleNamespace(id="alice", address="alice@example.com")


class MemoryState:
    """The plugin state store (``PluginContext.state``) in a dict, so a test can read it."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def set(self, key: str, value: str) -> None:
        self.values[key] = value


def context() -> PluginContext:
    return PluginContext(now=trio.current_time, state=MemoryState())


def message(to: str = "bob@example.org", n: int = 1, body: bytes = b"Hello Bob\r\n.leading dot\r\n") -> OutgoingMessage:
    data = (f"From: alice@example.com\r\nTo: {to}\r\nSubject: hi\r\nMessage-ID: <{n}.test@example.com>\r\n\r\n"
            .encode() + body)
    return OutgoingMessage("alice", f"<{n}.test@example.com>", "alice@example.com", to, data)


async def send_all(table: dict[str, Any], *messages: OutgoingMessage) -> tuple[list[SendResult], SmtpTransport]:
    """Send ``messages`` in order over one transport built from the ``[smtp]`` ``table``."""
    transport = SmtpTransport(MAILBOX, SmtpConfig.model_validate(table), context())
    results = []
    async with trio_asyncio.open_loop():
        try:
            for m in messages:
                results.append(await transport.send(m))
        finally:
            await transport.aclose()
    return results, transport


class Watch:
    """A detector running in the background, collecting what it emits."""

    def __init__(self, detector: ImapDetector) -> None:
        self.detector = detector
        self.events: list[MailEvent] = []
        self.arrived = trio.Event()

    async def emit(self, event: MailEvent) -> None:
        self.events.append(event)
        self.arrived.set()

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[MailEvent]:
        """Until ``count`` events have arrived. Woken by each event, not polled; ``timeout``
        only keeps a failing test from hanging."""
        with trio.fail_after(timeout):
            while len(self.events) < count:
                self.arrived = trio.Event()
                await self.arrived.wait()
        return self.events


def detector_for(table: dict[str, Any], state: MemoryState | None = None) -> ImapDetector:
    """An IMAP detector for the ``[imap]`` ``table`` of mailbox "alice"."""
    mailbox = SimpleNamespace(id="alice", address=table["username"])
    return ImapDetector(mailbox, ImapConfig.model_validate(table),
                        PluginContext(trio.current_time, state if state is not None else MemoryState()))


@asynccontextmanager
async def watching(table: dict[str, Any], state: MemoryState | None = None,
                   caught_up_within: float = 30.0) -> AsyncIterator[Watch]:
    """Run a detector (inside an open trio-asyncio loop) until it has caught up with the
    folders' history, then hand its ``Watch`` to the body; cancelled on the way out."""
    watch = Watch(detector_for(table, state))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.detector.run, watch.emit)
        with trio.fail_after(caught_up_within):
            await watch.detector.caught_up.wait()
        yield watch
        nursery.cancel_scope.cancel()


class LoginAttempts:
    """Counts the detector's session opens (each is one login attempt) and when they started.

    Under trio's ``MockClock`` without autojump, virtual time stands still while the real
    server answers, so a refused attempt starts and ends at one virtual instant and the
    detector's backoff is the only thing that moves it: a test jumps the clock by exactly the
    expected backoff and reads exact start times back."""

    def __init__(self, monkeypatch: Any) -> None:
        from dripd_imap import detector as module

        self.started: list[float] = []
        self.finished = 0
        self._changed = trio.Event()
        real_open = module.ImapSession.open

        async def counting_open(*args: Any) -> Any:
            self.started.append(trio.current_time())
            try:
                return await real_open(*args)
            finally:
                # The detector reaches its backoff sleep with no checkpoint in between, so a
                # test woken by this is scheduled only once the detector is parked in it.
                self.finished += 1
                self._changed.set()

        monkeypatch.setattr(module.ImapSession, "open", counting_open)

    async def until_finished(self, count: int) -> None:
        while self.finished < count:
            self._changed = trio.Event()
            await self._changed.wait()
