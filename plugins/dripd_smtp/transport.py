"""The SMTP transport: aiosmtplib on the plugin's own asyncio loop thread, with a pool of open
connections kept on that thread. The transaction itself is ``wire.transaction``.

The conversations do not cross the trio-asyncio bridge DESIGN.md describes ("asyncio libraries
cross one bridge"): they run on one native asyncio loop in a thread shared by every SMTP mailbox
of the process (``loop_thread``), each piece handed over with ``call_soon_threadsafe`` and
answered through the trio token, as the SQLite store does for its hot path. Under the bridge each
asyncio callback ran as a step of a trio task (~12 trio-asyncio loop steps and ~6 trio scheduler
passes per message), and the transport alone cost more CPU per message than a whole plain client.
Measured 2026-12-03, 2-core machine under other load (load average 1.6-3.4), Postfix smtp-sink on
loopback, 5,000 pre-rendered 1.3 kB messages over 4 connections from 4 trio tasks, medians of 15
passes alternated in the same minutes (scratch scripts: transport alone, ``time.process_time``):

    through the bridge (before)                   0.389 ms CPU/message  2,205 msg/s
    the bridge + the two savings below            0.322 ms              2,480 msg/s
    this loop thread + the two savings            0.224 ms              3,551 msg/s
    plain aiosmtplib sendmail, clean asyncio      0.290 ms              2,510 msg/s

The whole daemon (``bench/bench_send.py`` with its daemon-CPU column, two rounds alternated,
load 2.1-3.4), bridge -> loop thread: 5,000 enrolled by CSV at connections = 4, 706-730 ->
666-908 msg/s and 1.21-1.37 -> 1.08-1.10 ms CPU/message; a database built beforehand, 616-644 ->
801-846 msg/s, 1.34-1.47 -> 0.97-1.14 ms. The two savings, on either path: a CRLF check by byte
counts instead of a regex, and RCPT's "<address>" without email.utils parsing.
``bench/bench_smtp_transport.py`` measures the transport alone against the plain client.

**The pool lives on the loop thread (issue 14).** A send is handed over whole: on the loop thread
it waits for a connection (or for a free place to open one), runs its transaction, and passes the
connection straight to the next waiting send before its own answer crosses back to trio. So a
connection that frees starts its next message at once instead of idling until the event loop's
thread has taken the answer and handed the next message over, which on a busy daemon took longer
than the transaction itself. The core may therefore hand a mailbox's sends ahead of its
connections (``reports_on_wire``; dripd/parallelism.py sizes the lane): they wait here, in the
order they came. Each message's ``on_wire`` is called right before its first command (or its
content, below) and its ``on_accepted`` as the server accepts it, so the core's wire journal
follows the transactions, not the queue: a crash leaves uncertain only the messages that were in
a transaction.

**A connection with sends waiting takes one round trip per message (issue 14).** Where the
server offers PIPELINING, a message's content goes out together with the MAIL, RCPT and DATA of
the oldest send waiting (RFC 2920 lets content open a group), and the connection passes to that
send, which reads their replies and writes its own content. Its ``on_wire`` is asked once the
server has answered its DATA, right before its content: an envelope alone delivers nothing, so a
crash still leaves at most one uncertain message per connection (dripd/wire_journal.py), and a
send withdrawn meanwhile closes the connection (the server waits for content that will not
come). A refusal or fault of the message before it also closes the connection; the waiting send
then opens its own, and nothing of it was delivered. Transport alone, 4 connections, sends queued
(16 trio tasks, 4,000 pre-rendered messages, 2026-12-05): 5,714 msg/s at 0.195 ms of CPU per
message against 4,015 at 0.276 with two round trips.

Cancellation and timeouts: a real-time timer on the loop bounds each connect, each transaction and
each RSET (``timeout_seconds``; trio's clock cannot: the simulated test clock stands still while a
send is away, ``dripd.clock.offloaded``); the wait for a connection is bounded only by the sends
ahead of it. A trio cancel (the daemon stopping) cancels the asyncio task and waits for it to end;
a connection it interrupted is closed, never reused. The IMAP Sent folder (``sent``) and the
address probe (``verify``) stay on the bridge: not on the hot path.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, TypeVar

import aiosmtplib
import trio

from dripd.hookspecs import WITHDRAWN, MailboxSettings, OutgoingMessage, PluginContext, SendOutcome, SendResult
from dripd_mailconn.credentials import Credentials, CredentialsError
from dripd_smtp import loop_thread
from dripd_smtp.config import SmtpConfig
from dripd_smtp.loop_thread import LoopThread
from dripd_smtp.outcome import Stage, classify_fault, classify_reply
from dripd_smtp.pipelining import PipeliningSMTP
from dripd_smtp.wire import Attempt, Failed, Written, envelope_bytes, envelope_of, transaction

if TYPE_CHECKING:
    from dripd_smtp.sent import SentFolder  # only with an IMAP table: the transport itself needs no IMAP

log = logging.getLogger("dripd.smtp")

T = TypeVar("T")

QUIT_SECONDS = 2.0  # a polite QUIT to a connection no longer needed, then it is closed anyway

# Returned by the loop side when it must open a connection and was handed no secret: the trio
# side then reads the secret (a file, a command, an OAuth2 refresh) and hands the send over again.
# Reading it for every send would cost a file read per message for a pool that is already open.
_NEEDS_SECRET = SendResult(SendOutcome.TRANSIENT, "a new connection needs the mailbox's secret")


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    # The waiting send whose MAIL, RCPT and DATA this connection's last transaction wrote after its
    # content (``_next_envelope``), with what was written: the connection goes to it next, or is closed.
    ahead: tuple[asyncio.Future[_Connection | None], OutgoingMessage, Written] | None = None

    @property
    def usable(self) -> bool:
        return self.smtp.is_connected


# A send waiting for a connection: what will hand it one (None: a place to open one), and its message.
_Waiter = tuple["asyncio.Future[_Connection | None]", OutgoingMessage]


def _begins(message: OutgoingMessage) -> bool:
    """Right before the message's transaction: tell the core (its wire journal), and whether it
    still wants the message sent (``OutgoingMessage.on_wire``)."""
    return message.on_wire is None or message.on_wire()


class _StartTlsMissing(Exception):
    """``security = "starttls"`` and the server's EHLO does not offer STARTTLS."""


class _Expired(Exception):
    """The loop side's timer ended a connect, a transaction or an RSET."""


class SmtpTransport:
    # Sends handed over beyond the open connections wait on the loop thread, and each message's
    # ``on_wire`` is called when its transaction begins (see the module docstring).
    reports_on_wire = True

    def __init__(self, mailbox: MailboxSettings, config: SmtpConfig, context: PluginContext,
                 sent_folder: SentFolder | None = None) -> None:
        self.mailbox_id = mailbox.id
        self.config = config
        self.context = context
        self.credentials = Credentials(config, context.now)
        self.sent_folder = sent_folder
        self.connects = 0  # connections opened so far (tests and status)
        self.pipelined = 0  # transactions sent with RFC 2920 pipelining (tests)
        self.written_ahead = 0  # of those, the ones whose envelope followed the previous content (tests)
        self._thread: LoopThread | None = None  # held from the first use until aclose
        self._in_flight = 0  # sends between their start and their result
        self._closed = False
        # The pool, touched only on the loop thread.
        self._idle: list[_Connection] = []
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self._places = 0  # connections open or being opened, at most ``config.connections``

    def _loop(self) -> LoopThread:
        if self._thread is None:
            self._thread = loop_thread.acquire()
        return self._thread

    # -- Transport protocol --------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendResult:
        self._in_flight += 1
        try:
            result = await self._handed_over(message, None)
            if result is _NEEDS_SECRET:
                try:
                    xoauth2 = self.config.auth == "xoauth2"
                    secret = await (self.credentials.access_token() if xoauth2 else self.credentials.password())
                except CredentialsError as exc:
                    # Without a secret this mailbox cannot send at all: the sender is the problem.
                    result = SendResult(SendOutcome.SENDER_BLOCKED, f"credentials: {exc}")
                else:
                    result = await self._handed_over(message, secret)
        finally:
            self._in_flight -= 1
            if self._closed and not self._in_flight:
                await self._let_go()
        if result.outcome is SendOutcome.ACCEPTED and self.sent_folder is not None and self.sent_folder.save_copies:
            await self.sent_folder.append(message)
        return result

    async def lookup(self, message_id: str) -> bool | None:
        """Found in the Sent folder: surely sent. Not found proves nothing over SMTP: None."""
        if self.sent_folder is None:
            return None
        return True if await self.sent_folder.contains(message_id) else None

    async def aclose(self) -> None:
        self._closed = True
        if self._thread is not None:
            with trio.CancelScope(shield=True):
                await self._thread.run(self._aio_quit_idle)
        if not self._in_flight:
            # Else the last send in flight lets go (a reload closes a transport once its lane
            # is idle or after a grace): stopping the loop under it would cut its conversation.
            await self._let_go()
        if self.sent_folder is not None:
            await self.sent_folder.aclose()

    async def _let_go(self) -> None:
        if self._thread is not None:
            thread, self._thread = self._thread, None
            await loop_thread.release(thread)

    async def _handed_over(self, message: OutgoingMessage, secret: str | None) -> SendResult:
        """One pass of ``_aio_send`` on the loop thread (``_NEEDS_SECRET``: it must open a
        connection and ``secret`` is None)."""
        attempt = Attempt()
        try:
            result = await self._loop().run(self._aio_send, message, secret, attempt)
        except ConnectionAbortedError as exc:
            # The loop was stopped under the send (its trio run is ending): a connection fault,
            # classified by the stage it had reached.
            return classify_fault(attempt.stage, f"{type(exc).__name__}: {exc}")
        except BaseException as exc:
            # Cancelled from outside (the daemon stopping) or a message the transaction refused
            # to write: the loop side has finished and closed the connection it held.
            where = f"during {attempt.stage.value}" if attempt.began else "waiting for a connection"
            log.info("mailbox %s: send of %s ended %s by %s", self.mailbox_id, message.message_id, where,
                     type(exc).__name__)
            raise
        if attempt.token_refused:
            self.credentials.invalidate()
        if attempt.pipelined:
            self.pipelined += 1
        if attempt.written_ahead:
            self.written_ahead += 1
        return result

    # -- on the loop thread --------------------------------------------------------------------

    async def _aio_send(self, message: OutgoingMessage, secret: str | None, attempt: Attempt) -> SendResult:
        """One send: a connection from the pool (or a new one in a free place), the transaction,
        and the connection passed on to the next waiting send."""
        connection = await self._aio_acquire(message)
        written: Written | None = None
        if connection is not None and connection.ahead is not None:
            _, ahead_message, written = connection.ahead
            assert ahead_message is message
            connection.ahead = None
            attempt.written_ahead = True  # its envelope is on the wire; ``on_wire`` comes before its content
        kept: _Connection | None = None
        try:
            reused = connection is not None
            while True:
                if connection is None:
                    if secret is None and self.credentials.needed:
                        return _NEEDS_SECRET
                    opened = await self._aio_connect(secret, attempt)
                    if isinstance(opened, SendResult):
                        return opened
                    connection = opened
                if written is None and not _begins(message):
                    kept = connection
                    return WITHDRAWN
                result, keep = await self._aio_transaction(connection, message, attempt, written)
                written = None  # a second try, on a new connection, writes its own envelope
                if not (reused and result.outcome is SendOutcome.TRANSIENT and attempt.stage is Stage.MAIL
                        and attempt.replies == 0):
                    break
                # The server closed the idle connection under us before it read a byte of this
                # transaction: nothing was handed over, so one fresh connection is safe (once).
                connection.smtp.close()
                connection, reused = None, False
            if result.outcome is SendOutcome.ACCEPTED and message.on_accepted is not None:
                message.on_accepted()  # at once: the answer may wait a while for the event loop
            if keep:
                kept = connection
            return result
        finally:
            if connection is not None and kept is None:
                connection.smtp.close()  # broken, refused past repair, or interrupted mid-way
            ahead = connection.ahead if connection is not None else None
            if ahead is not None and kept is None:
                # Closed with the next send's envelope written: that send gets the place and
                # opens a connection of its own (asked ``on_wire`` before its first command).
                assert connection is not None
                connection.ahead = None
                if not ahead[0].done():
                    ahead[0].set_result(None)
                else:
                    self._aio_release(None)
            elif ahead is not None:
                self._aio_release(kept)  # to the send whose envelope it carries
            elif kept is not None and self._closed and not self._waiting:
                # Closed meanwhile (a reload replaced it): nobody reuses it. The place first, so
                # a cancel during the goodbye cannot keep it.
                self._aio_release(None)
                await self._aio_quit(kept)
            else:
                self._aio_release(kept)

    async def _aio_acquire(self, message: OutgoingMessage) -> _Connection | None:
        """An idle connection, or None with a place reserved for a new one; else wait, in order,
        for a send to pass one on."""
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
            connection.smtp.close()
            self._places -= 1
        if self._places < self.config.connections:
            self._places += 1
            return None
        assert self._thread is not None
        waiter: asyncio.Future[_Connection | None] = self._thread.loop.create_future()
        self._waiting.append((waiter, message))
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._aio_release(waiter.result())  # passed on as this send was cancelled: pass it on
            elif (waiter, message) in self._waiting:
                self._waiting.remove((waiter, message))
            raise

    def _aio_release(self, connection: _Connection | None) -> None:
        """Pass a connection (None: its place, for a new one) to the send whose envelope it
        carries, else to the oldest waiting send, else keep it idle (or free the place)."""
        if connection is not None and connection.ahead is not None:
            waiter = connection.ahead[0]
            if not waiter.done():
                waiter.set_result(connection)  # it finds itself in ``ahead`` (``_aio_send``)
                return
            # That send is gone (cancelled) and the server holds its envelope: a new one instead.
            connection.ahead = None
            connection.smtp.close()
            connection = None
        while self._waiting:
            waiter, _ = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is None:
            self._places -= 1
        else:
            self._idle.append(connection)

    async def _aio_quit_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            self._places -= 1
            await self._aio_quit(connection)

    async def _aio_quit(self, connection: _Connection) -> None:
        try:
            if connection.usable:
                await self._within(connection.smtp.quit(), QUIT_SECONDS)
        except (_Expired, aiosmtplib.SMTPException, OSError):
            pass
        finally:
            connection.smtp.close()

    async def _within(self, awaitable: Awaitable[T], seconds: float | None = None) -> T:
        """``await awaitable``, ended by ``_Expired`` after ``seconds`` (default: the configured
        timeout) on the loop's clock. A timer handle, not ``asyncio.timeout()``: with trio-asyncio
        imported, asyncio's get_running_loop is patched to ask trio first, which raises here."""
        assert self._thread is not None
        loop = self._thread.loop
        task = asyncio.current_task(loop)
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = loop.call_later(self.config.timeout_seconds if seconds is None else seconds, expire)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            raise _Expired() from None
        finally:
            timer.cancel()

    def _next_envelope(self, connection: _Connection) -> bytes | None:
        """The MAIL, RCPT and DATA of the oldest send waiting for a connection, to be written
        right after the content of the message on ``connection`` (``wire.transaction``); that send
        then gets this connection next. It is asked ``on_wire`` only before its content (the
        envelope alone delivers nothing). None when nobody waits, or the oldest one's commands are
        refused (it waits on, and its own turn says so)."""
        waiting = self._waiting
        while waiting and waiting[0][0].done():
            waiting.popleft()  # cancelled while waiting
        if not waiting:
            return None
        waiter, queued = waiting[0]
        envelope = envelope_of(connection.smtp, queued)
        try:
            commands = envelope_bytes(envelope)
        except ValueError:
            return None
        waiting.popleft()
        connection.ahead = (waiter, queued, Written(envelope, functools.partial(_begins, queued)))
        return commands

    async def _aio_transaction(self, connection: _Connection, message: OutgoingMessage, attempt: Attempt,
                               written: Written | None) -> tuple[SendResult, bool]:
        """The transaction's outcome and whether the connection may carry another one."""
        attempt.stage, attempt.replies, attempt.began = Stage.MAIL, 0, True
        following = functools.partial(self._next_envelope, connection)
        try:
            return await self._within(transaction(connection.smtp, message, attempt, written=written,
                                                  next_envelope=following)), True
        except _Expired:
            return classify_fault(attempt.stage, f"no answer within {self.config.timeout_seconds:g}s"), False
        except Failed as failed:
            # Refused with the next send's envelope written after it (at the dot): rather than
            # tell the replies apart, the connection is closed and that send opens its own.
            keep = failed.keep and connection.smtp.is_connected and connection.ahead is None
            if keep:
                keep = await self._aio_reset(connection)
            return failed.result, keep
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, EOFError) as exc:
            return classify_fault(attempt.stage, f"{type(exc).__name__}: {exc}"), False

    async def _aio_reset(self, connection: _Connection) -> bool:
        """RSET after a refused transaction; False if the connection is no longer usable."""
        try:
            response = await self._within(connection.smtp.execute_command(b"RSET"))
        except (_Expired, aiosmtplib.SMTPException, OSError):
            return False
        return response.code == 250

    async def _aio_connect(self, secret: str | None, attempt: Attempt) -> _Connection | SendResult:
        """A new connection, greeted, secured and logged in; or why not, as a send's result."""
        config = self.config
        attempt.stage, attempt.began = Stage.CONNECT, True
        holder: list[aiosmtplib.SMTP] = []
        try:
            smtp = await self._within(self._aio_open(secret, attempt, holder))
        except BaseException as exc:
            for opened in holder:
                opened.close()  # no half-open connection is left behind, whatever happened
            if isinstance(exc, _Expired):
                return classify_fault(attempt.stage, f"no answer from {config.host}:{config.port} "
                                                     f"within {config.timeout_seconds:g}s")
            if isinstance(exc, aiosmtplib.SMTPResponseException):
                if attempt.stage is Stage.AUTH and config.auth == "xoauth2":
                    attempt.token_refused = True
                return classify_reply(attempt.stage, exc.code, exc.message)
            if isinstance(exc, ssl.SSLCertVerificationError):
                return SendResult(SendOutcome.SENDER_BLOCKED,
                                  f"TLS certificate of {config.host} not trusted: {exc.verify_message}")
            if isinstance(exc, aiosmtplib.SMTPNotSupported):
                return SendResult(SendOutcome.SENDER_BLOCKED, f"{config.host}: {exc.message}")
            if isinstance(exc, _StartTlsMissing):
                # Never fall back to plain text: the operator must fix the server or the config.
                return SendResult(SendOutcome.SENDER_BLOCKED, f"{config.host}: the server does not offer STARTTLS")
            if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, EOFError)):
                return classify_fault(Stage.CONNECT, f"{type(exc).__name__}: {exc}")
            raise
        self.connects += 1
        return _Connection(smtp)

    async def _aio_open(self, secret: str | None, attempt: Attempt, holder: list[aiosmtplib.SMTP]) -> aiosmtplib.SMTP:
        config = self.config
        tls_context = None
        if config.security != "none":
            tls_context = ssl.create_default_context()
            if config.ca_file is not None:
                tls_context.load_verify_locations(cafile=str(config.ca_file))
        # STARTTLS is driven here rather than by connect(), so that a server not offering it is
        # told apart by what it advertised, not by the words of aiosmtplib's exception.
        smtp = PipeliningSMTP(
            hostname=config.host, port=config.port, timeout=config.timeout_seconds,
            use_tls=config.security == "tls", start_tls=False,
            tls_context=tls_context, local_hostname=config.local_hostname,
        )
        holder.append(smtp)
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await smtp.helo()  # an SMTP (not ESMTP) server
        if config.security == "starttls":
            if not smtp.supports_extension("starttls"):
                raise _StartTlsMissing()
            await smtp.starttls()
            await smtp.ehlo()  # RFC 3207 4.2: what the server said before TLS no longer counts
        if config.username:
            assert secret is not None
            attempt.stage = Stage.AUTH
            if config.auth == "xoauth2":
                await smtp.auth_xoauth2(config.username, secret)
            else:
                # One mechanism, the best offered: trying them all after a refusal only piles up
                # failed logins on the server's rate limits.
                methods = smtp.supported_auth_methods
                if "plain" in methods or not methods:
                    await smtp.auth_plain(config.username, secret)
                elif "login" in methods:
                    await smtp.auth_login(config.username, secret)
                else:
                    await smtp.login(config.username, secret)
        return smtp
