"""One IMAP connection (aioimaplib) driven from trio through the trio-asyncio bridge.

Every asyncio object is built inside an aio coroutine (DESIGN.md); the trio side bounds every
command with a cancel scope. The mailbox is only ever read: folders are opened with EXAMINE
(read-only) and fetched with BODY.PEEK[], so no flag changes; the only write is APPEND of our
own sent copies to the Sent folder.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

import trio
import trio_asyncio
from aioimaplib import aioimaplib

from dripd.errors import TransportError
from dripd_mailconn.config import ServerConfig
from dripd_mailconn.credentials import Credentials, CredentialsError

log = logging.getLogger("dripd.imap")

T = TypeVar("T")

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")
_EXISTS = re.compile(rb"^(\d+) EXISTS")
_ANNOUNCES_MAIL = re.compile(rb"^(\* )?\d+ (EXISTS|RECENT)\b")
_MESSAGE_ID = re.compile(r"^<[^\s<>\"\\]+>$")


class ImapError(TransportError):
    """The server refused a command, or the connection is unusable."""

    code = "imap_error"


class ImapLoginRefused(ImapError):
    """The server refused the login (a wrong password, or a revoked or expired OAuth2 token)."""

    code = "imap_login_refused"


# What a network or server fault looks like to a user of a session: drop the session and try
# again later (the detector with backoff, the Sent folder on its next use); never crash.
NETWORK_FAULTS: tuple[type[BaseException], ...] = (
    OSError, EOFError, ImapError, CredentialsError, aioimaplib.AioImapException, trio.TooSlowError, TimeoutError)


@dataclass(frozen=True)
class FolderInfo:
    uidvalidity: int
    uidnext: int | None
    exists: int


def tls_context(config: ServerConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config.ca_file is not None:
        context.load_verify_locations(cafile=str(config.ca_file))
    return context


def _ok(response: Any, what: str, refused: type[ImapError] = ImapError) -> Any:
    if response.result != "OK":
        text = b" ".join(bytes(line) for line in response.lines[-1:]).decode("utf-8", "replace")
        raise refused(f"{what} refused: {response.result} {text}".strip())
    return response


class ImapSession:
    """A logged-in connection. Create with ``await ImapSession.open(config, credentials)``."""

    def __init__(self, config: ServerConfig, client: aioimaplib.IMAP4) -> None:
        self.config = config
        self._client = client
        self.lost = False
        self._lost = trio.Event()
        self._mail_announced = False  # the server announced mail no command of ours took in

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    async def open(cls, config: ServerConfig, credentials: Credentials) -> "ImapSession":
        secret: str | None = None
        if credentials.needed:
            secret = await (credentials.access_token() if config.auth == "xoauth2" else credentials.password())
        with trio.fail_after(config.timeout_seconds):
            client = await trio_asyncio.aio_as_trio(cls._aio_open)(config, secret)
        session = cls(config, client)
        session._hear_unclaimed(client.protocol)
        client.protocol.conn_lost_cb = session._on_lost
        if client.protocol.transport is None or client.protocol.transport.is_closing():
            session._on_lost(None)
        return session

    @staticmethod
    async def _aio_open(config: ServerConfig, secret: str | None) -> aioimaplib.IMAP4:
        timeout = config.timeout_seconds
        if config.security == "tls":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(config.host, config.port, timeout=timeout,
                                                            ssl_context=tls_context(config))
        else:
            client = aioimaplib.IMAP4(config.host, config.port, timeout=timeout)
        try:
            await client.wait_hello_from_server()
            if config.security == "starttls":
                await _aio_starttls(client, config)
            if config.username:
                assert secret is not None
                if config.auth == "xoauth2":
                    response = await asyncio.wait_for(_aio_xoauth2(client.protocol, config.username, secret), timeout)
                else:
                    response = await client.login(config.username, secret)
                _ok(response, "login", ImapLoginRefused)
        except BaseException:
            _abort(client)
            raise
        return client

    def _on_lost(self, exc: Exception | None) -> None:
        # Called by asyncio's transport, which trio-asyncio runs on the trio thread.
        self.lost = True
        self._lost.set()

    async def close(self) -> None:
        """LOGOUT politely (bounded), then drop the socket whatever happened."""
        with trio.move_on_after(2), trio.CancelScope(shield=True):
            try:
                # In the middle of an IDLE (cancelled), a LOGOUT would queue behind it: just drop.
                if not self.lost and not self._client.has_pending_idle():
                    await self._call(self._client.logout, timeout=2)
            except Exception:
                pass
        with trio.CancelScope(shield=True):
            await trio_asyncio.aio_as_trio(_aio_abort)(self._client)

    # -- commands ------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T:
        """Run an aio call, bounded by ``timeout`` and ended at once if the connection drops
        (aioimaplib would otherwise wait for an answer that cannot come)."""
        if self.lost:
            raise ImapError("connection lost")
        outcome: list[T] = []
        with trio.fail_after(timeout or self.config.timeout_seconds):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._cancel_when_lost, nursery.cancel_scope)
                outcome.append(await trio_asyncio.aio_as_trio(fn)(*args))
                nursery.cancel_scope.cancel()
        if not outcome:
            raise ImapError("connection lost")
        return outcome[0]

    async def _cancel_when_lost(self, scope: trio.CancelScope) -> None:
        await self._lost.wait()
        scope.cancel()

    @property
    def has_idle(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    async def examine(self, folder: str) -> FolderInfo:
        """Open ``folder`` read-only and return its UIDVALIDITY, UIDNEXT and message count."""
        response = _ok(await self._call(self._aio_examine, folder), f"EXAMINE {folder}")
        uidvalidity = uidnext = None
        exists = 0
        for line in response.lines:
            raw = bytes(line)
            if m := _UIDVALIDITY.search(raw):
                uidvalidity = int(m.group(1))
            if m := _UIDNEXT.search(raw):
                uidnext = int(m.group(1))
            if m := _EXISTS.match(raw):
                exists = int(m.group(1))
        if uidvalidity is None:
            raise ImapError(f"EXAMINE {folder}: the server gave no UIDVALIDITY")
        return FolderInfo(uidvalidity, uidnext, exists)

    async def _aio_examine(self, folder: str) -> Any:
        protocol = self._client.protocol
        response = await asyncio.wait_for(protocol.simple_command("EXAMINE", _quote(folder)), self.config.timeout_seconds)
        if response.result == "OK":
            # aioimaplib only tracks SELECT; EXAMINE is SELECT without write access (RFC 3501 6.3.2).
            protocol.state = aioimaplib.SELECTED
        return response

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid`` in the open folder, ascending."""
        response = _ok(await self._call(functools.partial(self._client.uid_search, f"UID {last_uid + 1}:*", charset=None)), "UID SEARCH")
        return sorted(uid for uid in _search_numbers(response) if uid > last_uid)

    async def uids_since(self, day: str) -> list[int]:
        """UIDs of messages with an internal date on or after ``day`` (``"01-Jan-2026"``)."""
        response = _ok(await self._call(functools.partial(self._client.uid_search, f"SINCE {day}", charset=None)), "UID SEARCH SINCE")
        return sorted(_search_numbers(response))

    async def fetch(self, uid: int) -> bytes | None:
        """The raw message with this UID (BODY.PEEK: \\Seen is never set), or None if it is gone."""
        response = _ok(await self._call(self._client.uid, "fetch", str(uid), "(BODY.PEEK[])"), f"UID FETCH {uid}")
        for index, line in enumerate(response.lines):
            if isinstance(line, bytearray) and index > 0 and re.search(rb"\{\d+\}$", bytes(response.lines[index - 1])):
                return bytes(line)
        return None

    async def contains_message_id(self, folder: str, message_id: str) -> bool | None:
        """Whether ``folder`` holds a message with this Message-ID (None: cannot tell)."""
        if not _MESSAGE_ID.match(message_id):
            return None
        await self.examine(folder)
        response = _ok(await self._call(functools.partial(self._client.uid_search, f'HEADER Message-ID "{message_id}"', charset=None)),
                       "UID SEARCH HEADER")
        return bool(_search_numbers(response))

    async def append(self, folder: str, data: bytes) -> None:
        """APPEND ``data`` to ``folder`` marked \\Seen, creating the folder once if the server asks."""
        response = await self._call(self._client.append, data, folder, "(\\Seen)")
        if response.result != "OK" and b"TRYCREATE" in b" ".join(bytes(x) for x in response.lines):
            await self._call(self._client.create, _quote(folder))
            response = await self._call(self._client.append, data, folder, "(\\Seen)")
        _ok(response, f"APPEND {folder}")

    def _hear_unclaimed(self, protocol: Any) -> None:
        """aioimaplib drops an untagged response that no pending command claims (it logs "ignored
        untagged response"): an EXISTS the server sends with the answer to a UID SEARCH (an async
        command to aioimaplib, which matches untagged lines to those by name) or between two
        commands. A message delivered during the catch-up's search was announced only so, and
        waited unseen for the next IDLE timeout (29 minutes by default; tests/integration/
        test_inbox_e2e.py failed on it). Such an announcement is remembered for ``wait_for_news``."""
        untagged = protocol._untagged_response

        def hear(line: bytes) -> Any:
            command = untagged(line)
            if command is None and _ANNOUNCES_MAIL.match(line):
                self._mail_announced = True
            return command

        protocol._untagged_response = hear

    def _take_announced(self) -> bool:
        announced, self._mail_announced = self._mail_announced, False
        return announced

    async def wait_for_news(self, seconds: float) -> bool:
        """IDLE until the server pushes something or ``seconds`` pass; True if it pushed, or had
        announced mail beside an earlier answer (``_hear_unclaimed``), which ends the wait at once."""
        return await self._call(self._aio_idle, seconds, timeout=seconds + self.config.timeout_seconds)

    async def _aio_idle(self, seconds: float) -> bool:
        client = self._client
        if self._take_announced():
            return True  # since the last look: catch up now, no IDLE
        idle = await client.idle_start(timeout=seconds)
        try:
            # Announced while the IDLE was on its way (not yet the pending command): news too.
            push = "announced" if self._take_announced() else await client.wait_server_push(timeout=seconds + 1)
        except asyncio.TimeoutError:
            push = aioimaplib.STOP_WAIT_SERVER_PUSH
        finally:
            if not self.lost and client.has_pending_idle():
                client.idle_done()
        await asyncio.wait_for(idle, self.config.timeout_seconds)
        return bool(push != aioimaplib.STOP_WAIT_SERVER_PUSH)

    async def noop(self) -> None:
        _ok(await self._call(self._client.noop), "NOOP")


async def _aio_starttls(client: aioimaplib.IMAP4, config: ServerConfig) -> None:
    """STARTTLS (RFC 3501 6.2.1): aioimaplib has the command but no client support, so upgrade
    the transport with asyncio's start_tls and read the capabilities again."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS")
    response = await asyncio.wait_for(
        protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)), config.timeout_seconds)
    _ok(response, "STARTTLS")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(protocol.transport, protocol, tls_context(config),
                                              server_hostname=config.host)
    await asyncio.wait_for(protocol.capability(), config.timeout_seconds)


class _SaslCommand(aioimaplib.Command):  # type: ignore[misc]  # aioimaplib has no type information
    """AUTHENTICATE that answers the server's continuations, which aioimaplib's own ``xoauth2``
    leaves unanswered: a server that refuses a bearer token first sends an error challenge
    (``+ eyJzdGF0dXMiOiI0MDEi...``, RFC 7628 3.2.2; Gmail and Dovecot do) and waits for the
    client's empty reply before its tagged NO, so the login would hang until the timeout (and the
    refused token would not be dropped). The initial response (the secret) is not one of the
    command's arguments, so aioimaplib never logs it: it goes on the command line (SASL-IR), or
    as the answer to the server's first, empty, continuation."""

    def __init__(self, protocol: Any, mechanism: str, initial: str) -> None:
        super().__init__("AUTHENTICATE", protocol.new_tag(), mechanism, loop=protocol.loop)
        self._protocol = protocol
        self.sasl_ir = "SASL-IR" in protocol.capabilities
        self._pending: bytes | None = None if self.sasl_ir else initial.encode("ascii")

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        super().append_to_resp(line, result)
        if result == "Pending" and bytes(line).startswith(b"+"):  # a continuation: the server waits for us
            answer, self._pending = (self._pending or b""), None
            self._protocol.transport.write(answer + b"\r\n")


async def _aio_xoauth2(protocol: Any, user: str, token: str) -> Any:
    """AUTHENTICATE XOAUTH2 (Google's and Microsoft's SASL mechanism) with ``token``; at login
    nothing else is in flight, so the command is sent here rather than through ``execute``
    (which would log the initial response)."""
    blob = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode("utf-8")).decode("ascii")
    async with protocol.state_condition:
        if protocol.state != aioimaplib.NONAUTH or protocol.pending_sync_command is not None:
            raise ImapError(f"cannot log in in state {protocol.state}")
        command = _SaslCommand(protocol, "XOAUTH2", blob)
        protocol.pending_sync_command = command
        log.debug("sending %r (initial response not shown)", command)
        protocol.transport.write((f"{command} {blob}" if command.sasl_ir else str(command)).encode("ascii") + b"\r\n")
        try:
            await command.wait()
        finally:
            if protocol.pending_sync_command is command:
                protocol.pending_sync_command = None
        response = command.response
        if response.result == "OK":
            protocol.state = aioimaplib.AUTH
            for line in response.lines:  # post-login capabilities, as aioimaplib's login() reads them
                if bytes(line).startswith(b"CAPABILITY"):
                    protocol.capabilities |= set(bytes(line).decode("ascii", "replace").split()[1:])
        protocol.state_condition.notify_all()
    return response


def _search_numbers(response: Any) -> list[int]:
    """Numbers of a SEARCH response. aioimaplib hands the untagged ``* SEARCH 1 2`` line over as
    ``1 2`` (SEARCH is one of its "async" commands) and the tagged status text last."""
    numbers: list[int] = []
    for line in response.lines[:-1]:
        tokens = bytes(line).split()
        if tokens and tokens[0].upper() == b"SEARCH":
            tokens = tokens[1:]
        if all(t.isdigit() for t in tokens):
            numbers += [int(t) for t in tokens]
    return numbers


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _abort(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.abort()
    else:
        client._client_task.cancel()


async def _aio_abort(client: aioimaplib.IMAP4) -> None:
    _abort(client)
