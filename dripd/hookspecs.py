"""The pluggy contract between dripd and its plugins.

pluggy cannot await hooks, so hooks are sync and registration-style (as tox does): a plugin's
hook is handed a registry and registers factories. The objects those factories build implement
small async Protocols that the core drives in its own nursery with its own cancel scopes.
A transport knows nothing of sequences; a detector emits typed events and knows nothing of
enrollments.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Protocol

import pluggy
from pydantic import BaseModel

PROJECT = "dripd"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- what crosses the boundary -------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    mailbox_id: str
    message_id: str
    from_address: str
    to_address: str
    data: bytes  # the complete RFC 5322 message, CRLF line endings


class SendOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"  # retry later (4xx, network fault before the final dot)
    PERMANENT = "permanent"  # the recipient bounced (5xx for this recipient)
    SENDER_BLOCKED = "sender_blocked"  # 5.7.x policy/auth: the mailbox is the problem, not the contact
    UNCERTAIN = "uncertain"  # may have been delivered (connection lost after the final dot)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    detail: str = ""
    code: int | None = None  # SMTP reply code when there was one
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"


class Transport(Protocol):
    async def send(self, message: OutgoingMessage) -> SendResult: ...

    async def lookup(self, message_id: str) -> bool | None:
        """After a crash: True if the message surely went out, False if it surely did not
        (so sending it is safe), None when the transport cannot tell (it stays uncertain)."""

    async def aclose(self) -> None: ...


class EventKind(enum.StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class MailEvent:
    """Something a detector saw in a mailbox, in terms of messages and addresses only."""

    kind: EventKind
    mailbox_id: str
    at: float
    sender: str | None = None
    references: tuple[str, ...] = ()  # Message-IDs this message points at
    recipients: tuple[str, ...] = ()  # failed / complaining recipients
    bounce_class: str | None = None  # "hard" | "soft"
    status: str | None = None
    detail: str | None = None
    return_date: dt.date | None = None
    source: str = ""  # where it was seen (folder/uid), for logs


Emit = Callable[[MailEvent], Awaitable[None]]


class Detector(Protocol):
    """Optionally also ``caught_up: trio.Event``, set once the mail that arrived while dripd
    was stopped has been read; sends wait for it at start-up (up to a few seconds)."""

    async def run(self, emit: Emit) -> None:
        """Watch the mailbox until cancelled, calling ``emit`` for each event; reconnect on
        its own after network faults. Returning ends the detector; raising restarts it."""


class PluginState(Protocol):
    """Small durable key/value state a plugin may keep in the store."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class PluginContext:
    """What a factory gets besides its mailbox: the clock and durable state."""

    now: Callable[[], float]
    state: PluginState
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AddressCheck:
    """One check of an address's re-verification: ok True (passes), False (fails), None (cannot tell)."""

    name: str
    ok: bool | None
    detail: str


# (email, probe with SMTP RCPT?, MAIL FROM for the probe) -> the checks, in order.
AddressVerifier = Callable[[str, bool, str], Awaitable[list[AddressCheck]]]
TransportFactory = Callable[[Any, BaseModel | None, PluginContext], Transport]
DetectorFactory = Callable[[Any, BaseModel | None, PluginContext], Detector | None]


class Registry(Protocol):
    def add_transport(self, name: str, factory: TransportFactory, config: type[BaseModel] | None = None) -> None: ...

    def add_detector(self, name: str, factory: DetectorFactory, config: type[BaseModel] | None = None) -> None: ...

    def add_verifier(self, verifier: AddressVerifier) -> None: ...


# -- the hooks -----------------------------------------------------------------------------


class DripdSpec:
    @hookspec
    def dripd_register(self, registry: Registry) -> None:
        """Register transports and detectors (with the config table each one owns)."""

    @hookspec
    def dripd_message_headers(self, mailbox_id: str, sequence_id: int, step_id: int) -> list[tuple[str, str]]:
        """Extra headers for an outgoing message (results are concatenated)."""
        return []

    @hookspec
    def dripd_event(self, kind: str, data: Mapping[str, Any]) -> None:
        """Observe engine events (sent, bounced, replied, ...); must not block."""
