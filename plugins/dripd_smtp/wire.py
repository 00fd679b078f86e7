"""One SMTP transaction on an open aiosmtplib connection, on the loop thread: the commands, the
content, and where the transaction got to (``Attempt``) when it failed.

The transaction (MAIL, RCPT, DATA) is driven step by step so that every outcome is known
together with the stage it happened at (see ``outcome``). The final "." counts as sent only
once every byte of the message has left this host's buffers: a connection lost before that is
a transient fault, after it the message is uncertain and never resent blindly.
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from typing import Any, Callable

import aiosmtplib
from aiosmtplib.email import quote_address

from dripd.hookspecs import WITHDRAWN, OutgoingMessage, SendOutcome, SendResult
from dripd_smtp.outcome import Stage, classify_reply
from dripd_smtp.pipelining import PipeliningProtocol

_LINE_END = re.compile(rb"\r\n|\r|\n")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")  # never inside a command's arguments

# MAIL, RCPT and DATA: each stage, the command's words and the reply codes that let it go on.
Envelope = tuple[tuple[Stage, tuple[bytes, ...], tuple[int, ...]], ...]


def dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: CRLF line endings, leading dots doubled, the final "." line (RFC 5321 4.5.2)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") == crlf == data.count(b"\n"):
        # What dripd.render builds: CRLF throughout (every CR and every LF is one of a pair), so
        # byte replaces do it at C speed (the line-by-line path below was ~3 % of the event loop
        # in bench/bench_send.py). Three counts: 2 us for 1.3 kB where a regex search for a bare
        # CR or LF took 37 us, ~10 % of a pipelined send's CPU.
        body = (b"." + data if data.startswith(b".") else data).replace(b"\r\n.", b"\r\n..")
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
        return body + b".\r\n"
    lines = _LINE_END.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


@dataclass
class Attempt:
    """Where one send got to; read after a timeout or a fault ended it."""

    stage: Stage = Stage.CONNECT
    replies: int = 0  # replies received on this transaction
    pipelined: bool = False  # sent with RFC 2920 pipelining
    began: bool = False  # it got a connection (else it was still waiting for one)
    token_refused: bool = False  # the server refused the OAuth2 token at AUTH (it is fetched again)
    written_ahead: bool = False  # its envelope went out after the previous message's content
    wrote_next: bool = False  # the next message's envelope went out after this one's content


@dataclass(frozen=True)
class Written:
    """A message whose MAIL, RCPT and DATA already went out after the previous message's content
    (``transaction``'s ``next_envelope``): those commands, and its ``on_wire``, asked right
    before its content."""

    envelope: Envelope
    begins: Callable[[], bool]


@dataclass
class Failed(Exception):
    result: SendResult
    keep: bool = True  # the connection is still in a known state


def envelope_of(smtp: aiosmtplib.SMTP, message: OutgoingMessage) -> Envelope:
    """The message's MAIL, RCPT and DATA, with the options the connection's server offers."""
    options = [b"SIZE=%d" % len(message.data)] if smtp.supports_extension("size") else []
    if smtp.supports_extension("8bitmime"):
        options.append(b"BODY=8BITMIME")
    return ((Stage.MAIL, (b"MAIL", b"FROM:" + _quoted(message.from_address), *options), (250,)),
            (Stage.RCPT, (b"RCPT", b"TO:" + _recipient(message.to_address)), (250, 251)),
            (Stage.DATA, (b"DATA",), (354,)))


def envelope_bytes(envelope: Envelope) -> bytes:
    """The envelope's commands as written in one group (RFC 2920)."""
    if any(_CONTROL.search(arg) for _, args, _ in envelope for arg in args):
        # What aiosmtplib's execute_command refuses too: a CR or LF would inject a command.
        raise ValueError("Command arg contains a prohibited control character")
    return b"".join(b" ".join(args) + b"\r\n" for _, args, _ in envelope)


def pipelines(smtp: aiosmtplib.SMTP) -> bool:
    """Whether transactions on this connection are written with RFC 2920 pipelining."""
    return isinstance(smtp.protocol, PipeliningProtocol) and smtp.supports_extension("pipelining")


async def transaction(smtp: aiosmtplib.SMTP, message: OutgoingMessage, attempt: Attempt, *,
                      written: Written | None = None,
                      next_envelope: Callable[[], bytes | None] | None = None) -> SendResult:
    """MAIL, RCPT, DATA and the content on an open connection: the outcome, or ``Failed``
    (refused; ``keep`` says whether the connection is still in a known state). ``attempt``
    records the stage reached, for a timeout's or a fault's classification.

    On a pipelining connection, ``next_envelope`` is asked right before the content is written:
    the commands it returns (the next waiting message's MAIL, RCPT and DATA) go out with the
    content, whose final "." may open a group (RFC 2920, 3.1), and ``attempt.wrote_next`` says
    so; the pipeline then stays open for their replies. That next message's own transaction is
    then run with ``written``: it only reads those replies and writes its content. A connection
    with messages waiting so takes one round trip per message instead of two.

    ``written.begins`` is that message's ``on_wire`` (``OutgoingMessage``), asked once the server
    has answered DATA with 354 and right before the content, the first byte that could deliver it:
    an envelope alone delivers nothing, so the wire journal names only the message whose content
    is going out, one per connection. When it says no (withdrawn while its envelope was on the
    wire), the server is left waiting for content: ``Failed`` with ``WITHDRAWN`` and no reuse."""
    envelope = envelope_of(smtp, message) if written is None else written.envelope
    protocol = smtp.protocol
    if written is not None or pipelines(smtp):
        assert isinstance(protocol, PipeliningProtocol)
        attempt.pipelined = True
        return await _pipelined(protocol, envelope, message, attempt, written, next_envelope)
    for stage, args, expect in envelope:
        attempt.stage = stage
        # No asyncio timeout per command: one timer bounds the whole transaction (the pool's
        # ``_within``); wait_for's timer per command was a measurable share of the event loop
        # under trio-asyncio (bench/bench_send.py).
        response = await smtp.execute_command(*args, timeout=None)
        attempt.replies += 1
        if response.code not in expect:
            keep = response.code != 421  # 421: the server is closing the channel
            raise Failed(classify_reply(stage, response.code, response.message), keep)
    attempt.stage = Stage.CONTENT
    assert protocol is not None and protocol.transport is not None
    transport = protocol.transport
    # Report when the buffer holds any unsent byte (pause) and when it is empty (resume).
    transport.set_write_buffer_limits(high=0, low=0)  # type: ignore[attr-defined]
    reply: asyncio.Future[Any] | None = None
    try:
        # The reader must be waiting before the first byte goes: aiosmtplib drops replies that
        # arrive while no read is pending (its own DATA arms the same flag before writing).
        if hasattr(protocol, "_response_pending"):
            protocol._response_pending = True
        reply = asyncio.ensure_future(protocol.read_response(timeout=None))
        await asyncio.sleep(0)
        protocol.write(dot_stuffed(message.data))
        if await _flushed(protocol):
            attempt.stage = Stage.DOT
        response = await reply
    finally:
        if reply is not None and not reply.done():
            reply.cancel()
        if protocol.transport is not None:
            protocol.transport.set_write_buffer_limits()  # type: ignore[attr-defined]
    attempt.replies += 1
    return _final(response)


def _final(response: Any) -> SendResult:
    """The reply to the final ".": accepted, or refused (the connection survives unless 421)."""
    if response.code != 250:
        raise Failed(classify_reply(Stage.DOT, response.code, response.message), response.code != 421)
    return SendResult(SendOutcome.ACCEPTED, f"{response.code} {' '.join(response.message.split())}"[:300],
                      response.code)


async def _pipelined(protocol: PipeliningProtocol, envelope: Envelope, message: OutgoingMessage, attempt: Attempt,
                     written: Written | None, next_envelope: Callable[[], bytes | None] | None
                     ) -> SendResult:
    """One transaction with RFC 2920 pipelining: MAIL, RCPT and DATA in one write (unless
    ``written`` before, see ``transaction``), their three replies read in order, then the content.
    Outcomes keep the stage of the command whose reply decided them, so a refusal means what it
    means without pipelining."""
    if written is None:
        commands = envelope_bytes(envelope)  # refused before a byte is written
        protocol.open_pipeline()
    clean = False
    try:
        if written is None:
            protocol.write(commands)
        failed: Failed | None = None
        for stage, _, expect in envelope:
            if failed is None:
                attempt.stage = stage
            try:
                response = await protocol.next_reply()
            except aiosmtplib.SMTPServerDisconnected:
                if failed is None:
                    raise
                failed.keep = False  # refused, then gone: the refusal is the outcome
                raise failed from None
            attempt.replies += 1
            if failed is None and response.code not in expect:
                failed = Failed(classify_reply(stage, response.code, response.message), response.code != 421)
            elif failed is not None and response.code == 354:
                # DATA accepted after a refused MAIL or RCPT (a server should refuse it, RFC 2920
                # 3.1): it now waits for content with no valid recipient; drop the connection.
                failed.keep = False
        if failed is not None:
            clean = True
            raise failed
        if written is not None and not written.begins():
            raise Failed(WITHDRAWN, keep=False)  # the server waits for content that will not come
        attempt.stage = Stage.CONTENT
        transport = protocol.transport
        assert transport is not None
        # Report when the buffer holds any unsent byte (pause) and when it is empty (resume).
        transport.set_write_buffer_limits(high=0, low=0)  # type: ignore[attr-defined]
        try:
            content = dot_stuffed(message.data)
            following = next_envelope() if next_envelope is not None else None
            if following is not None:
                content += following
                attempt.wrote_next = True
            protocol.write(content)
            if await _flushed(protocol):
                attempt.stage = Stage.DOT
            response = await protocol.next_reply()
        finally:
            if protocol.transport is not None:
                protocol.transport.set_write_buffer_limits()  # type: ignore[attr-defined]
        attempt.replies += 1
        clean = True
        return _final(response)
    finally:
        if attempt.wrote_next:
            pass  # the next message's replies follow: its transaction reads them, or the connection is closed
        elif not protocol.close_pipeline() and clean and protocol.transport is not None:
            # The server answered more than was asked: its state is unknown, so no reuse.
            protocol.transport.close()


# A dot-atom address, for which aiosmtplib's quote_address returns "<address>" unchanged
# (checked against it on 400,000 generated strings); anything else goes through it.
_DOT_ATOM = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")


def _recipient(address: str) -> bytes:
    """RCPT's "<address>": quote_address parses every address with email.utils (11 us per
    send, ~3 % of its CPU); the plain ones, nearly all, need no parsing."""
    if _DOT_ATOM.match(address):
        return b"<" + address.encode() + b">"
    return quote_address(address).encode()


@functools.lru_cache(maxsize=64)
def _quoted(address: str) -> bytes:
    """A mailbox's own address as MAIL FROM gives it, worked out once."""
    return _recipient(address)


async def _flushed(protocol: Any) -> bool:
    """Wait until every written byte has left this host (True) or the connection is lost first.

    Uses the flow control aiosmtplib's protocol inherits (``FlowControlMixin``, as asyncio's own
    streams do): with a zero high-water mark the transport pauses the protocol while anything is
    unsent and resumes it once the buffer is empty. Without that machinery, assume flushed:
    the uncertain side is the safe one.
    """
    drain = getattr(protocol, "_drain_helper", None)
    if drain is None:
        return True
    if not getattr(protocol, "_paused", True):
        # Nothing queued right after the write: every byte went to the socket, unless the write
        # failed. uvloop drops its buffer on a failed write without pausing, and closes; a
        # transport already closing here (nothing has run since the write) lost those bytes.
        transport = protocol.transport
        return transport is not None and not transport.is_closing()
    try:
        await drain()  # a loss while bytes were unsent raises; a clean close drains first
    except (ConnectionError, OSError):
        return False
    return True
