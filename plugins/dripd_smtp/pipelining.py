"""RFC 2920 PIPELINING on aiosmtplib: MAIL FROM, RCPT TO and DATA written together.

aiosmtplib sends one command and waits for its reply; its protocol keeps one reply waiter and
drops bytes that arrive while that reply is parsed but not yet picked up, so several commands
cannot be written at once on it. ``PipeliningProtocol`` is its protocol with one more mode: while
a pipeline is open, every complete reply is queued in order and handed out by ``next_reply``.
Outside a pipeline it is aiosmtplib's protocol unchanged (EHLO, AUTH, STARTTLS, RSET, QUIT).
``PipeliningSMTP`` is aiosmtplib's client on that protocol. A send then takes two round trips
(MAIL+RCPT+DATA, then the content) instead of four, which halves the socket writes and the event
loop's wake-ups per message (bench/bench_send.py).
"""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any, cast

import aiosmtplib
from aiosmtplib.protocol import MAX_LINE_LENGTH, MAX_RESPONSE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus


class PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, plus a pipeline mode in which replies queue instead of being dropped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replies: collections.deque[SMTPResponse] | None = None  # None: no pipeline open
        self._reply_arrived: asyncio.Future[None] | None = None
        self._pipeline_error: BaseException | None = None
        self._direct: tuple[object, int] | None = None  # see connection_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # The socket of a plain TCP connection, for ``write``. A TLS transport (implicit TLS, or
        # the one STARTTLS puts in place later) is never bypassed: ``write`` checks that the
        # protocol's transport is still this one.
        self._direct = None
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self._direct = (transport, sock.fileno())

    def write(self, data: bytes) -> None:
        """aiosmtplib's write, with the system call made without the GIL.

        uvloop writes to the socket while holding the GIL (its ``_try_write``), so in bench_send's
        headline the SMTP thread held it through every message's socket write (a quarter of that
        thread's GIL time), and the event loop's thread waited. When nothing is queued on a plain
        connection, the bytes go to the socket here with ``os.write``, which lets go of the GIL
        for the call; what the socket does not take now goes to the transport, queued behind
        nothing, as before. A write error also goes to the transport, whose own write meets it
        and reports it as it always has."""
        direct, transport = self._direct, cast("asyncio.WriteTransport | None", self.transport)
        if (direct is not None and transport is not None and transport is direct[0]
                and not transport.is_closing() and transport.get_write_buffer_size() == 0):
            try:
                sent = os.write(direct[1], data)
            except OSError:  # EAGAIN (nothing taken), or an error the transport's write will meet
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)

    def open_pipeline(self) -> None:
        """From now until ``close_pipeline``, every reply is queued for ``next_reply``."""
        self._replies = collections.deque()
        self._pipeline_error = None
        del self._buffer[:]

    def close_pipeline(self) -> bool:
        """Back to aiosmtplib's one-command mode. False when the server said more than it was
        asked (a reply or a partial line left over): the connection's state is then unknown."""
        clean = not self._replies and not self._buffer and self._pipeline_error is None
        self._replies = None
        self._reply_arrived = None
        del self._buffer[:]
        return clean

    async def next_reply(self) -> SMTPResponse:
        """The next reply of the open pipeline, in the order the commands were written. Raises
        SMTPServerDisconnected (or the parse error) once the connection fails; no timeout here:
        the caller bounds the whole transaction."""
        assert self._replies is not None, "no pipeline open"
        while not self._replies:
            if self._pipeline_error is not None:
                raise self._pipeline_error
            self._reply_arrived = self._loop.create_future()
            await self._reply_arrived
        return self._replies.popleft()

    def _wake(self) -> None:
        if self._reply_arrived is not None and not self._reply_arrived.done():
            self._reply_arrived.set_result(None)

    def _fail_pipeline(self, exc: BaseException) -> None:
        if self._pipeline_error is None:
            self._pipeline_error = exc
        self._wake()

    def data_received(self, data: bytes) -> None:
        if self._replies is None:
            super().data_received(data)
            return
        self._buffer.extend(data)
        try:
            take_replies(self._buffer, self._replies)
        except Exception as exc:  # a malformed reply: the connection cannot be trusted
            self._fail_pipeline(exc)
            return
        if len(self._buffer) > MAX_RESPONSE_LENGTH:
            self._fail_pipeline(aiosmtplib.SMTPResponseException(500, "Response too long"))
            return
        self._wake()

    def eof_received(self) -> bool:
        if self._replies is not None:
            self._fail_pipeline(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._replies is not None:
            lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
            lost.__cause__ = exc
            self._fail_pipeline(lost)
        super().connection_lost(exc)


def take_replies(buffer: bytearray, replies: collections.deque[SMTPResponse]) -> None:
    """Every complete reply at the start of ``buffer``, in order, onto ``replies``; their bytes
    leave the buffer and a partial reply stays. aiosmtplib's ``_read_response_from_buffer``, read
    the same way (the same lines, messages, limits and errors), for all the replies a read
    brought at once: called once per reply, with a copy and a shift of the buffer each time, it
    was a fifth of the SMTP loop's GIL time in the headline (four replies per message)."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return  # no line ends yet (the caller bounds how much may wait: MAX_RESPONSE_LENGTH)
    taken = offset = 0
    parts: list[bytes] = []
    try:
        for line in bytes(buffer[:end + 1]).split(b"\n")[:-1]:
            size = len(line) + 1
            if size > MAX_LINE_LENGTH:
                raise aiosmtplib.SMTPResponseException(SMTPStatus.invalid_response.value, "Response too long")
            try:
                code = int(line[:3])
            except ValueError:
                text = (line + b"\n").decode("utf-8", errors="ignore")
                raise aiosmtplib.SMTPResponseException(
                    SMTPStatus.invalid_response.value, f"Malformed SMTP response line: {text}") from None
            offset += size
            part = line[4:].strip(b" \t\r\n")
            if part or parts:  # aiosmtplib joins with LF only after a non-empty start
                parts.append(part)
            if line[3:4] != b"-":
                message = parts[0] if len(parts) == 1 else b"\n".join(parts)
                replies.append(SMTPResponse(code, message.decode("utf-8", "surrogateescape")))
                parts = []
                taken = offset
    finally:
        del buffer[:taken]


class PipeliningSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client whose connection runs on ``PipeliningProtocol``.

    aiosmtplib builds its protocol inside ``_create_connection``; the transport is handed to ours
    right after the greeting (``set_protocol``, which every asyncio transport, TLS included,
    supports), when nothing is in flight. STARTTLS later wraps the same protocol object."""

    async def _create_connection(self, timeout: float | None) -> Any:
        response = await super()._create_connection(timeout)
        plain, transport = self.protocol, self.transport
        if plain is None or transport is None:
            return response
        protocol = PipeliningProtocol(loop=self.loop, connection_lost_callback=self._on_connection_lost)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol._response_pending = False  # the greeting is read: nothing is expected now
        self.protocol = protocol
        return response
