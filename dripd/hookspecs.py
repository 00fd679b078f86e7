"""The pluggy contract between dripd and its plugins.

pluggy cannot await hooks, so hooks are sync and registration-style (as tox does): a plugin's
hook is handed a registry and registers factories. The objects those factories build implement
small async Protocols that the core drives in its own nursery with its own cancel scopes.
A transport knows nothing of sequences; a detector emits typed events and knows nothing of
enrollments.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Protocol, TypeAlias, TypeVar, overload

import pluggy
from pydantic import BaseModel

# Re-exported for plugin authors: a detector emits MailEvent(EventKind.REPLIED, ...) and the like.
from dripd.events import DETECTED_KINDS, EventKind, MailEvent
from dripd.quick_init import quick_init

__all__ = [
    "DETECTED_KINDS", "PROJECT", "AddressCheck", "AddressVerifier", "Detector", "DetectorFactory", "DripdSpec",
    "Emit", "EventKind", "MailEvent", "MailboxSettings", "OutgoingMessage", "PluginContext", "PluginState",
    "Registry", "SendOutcome", "SendResult", "Transport", "TransportFactory", "hookimpl", "hookspec",
]

PROJECT = "dripd"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- what crosses the boundary -------------------------------------------------------------


@dataclass(frozen=True)
class MailboxSettings:
    """What a plugin knows of the mailbox it serves; the core builds it from the mailbox's config."""

    id: str
    address: str  # the From address, normalized
    name: str = ""  # the From display name
    message_id_domain: str = ""  # the domain of generated Message-IDs; the address's domain when empty
    timezone: str = "UTC"  # IANA zone of the mailbox's day (caps, send windows)
    transport: str = ""  # the transport plugin that delivers its mail
    # The mailbox's plugin tables as written ([mailboxes.<name>]), each already validated by its
    # owner's model. A plugin may read a sibling's table (the SMTP transport finds the Sent folder
    # in the IMAP table).
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.message_id_domain:
            object.__setattr__(self, "message_id_domain", self.address.rpartition("@")[2])

    def table(self, name: str) -> Mapping[str, Any] | None:
        """The ``[mailboxes.<name>]`` table of this mailbox, or None when it has none."""
        return self.tables.get(name)


@quick_init
@dataclass(frozen=True)
class OutgoingMessage:
    mailbox_id: str
    message_id: str
    from_address: str
    to_address: str
    data: bytes  # the complete RFC 5322 message, CRLF line endings
    # Set by the core for a transport with ``reports_on_wire``, which calls them from any thread
    # (they are quick and never raise): ``on_wire`` right before the first byte that could deliver
    # the message leaves: its transaction's first command, or its content when its envelope went
    # out ahead (again if it is retried on a new connection); False means the core has
    # withdrawn the message (its mailbox or sequence was paused, or its enrollment ended, while it
    # waited), which then must not be sent: the transport answers at once with ``WITHDRAWN``.
    # ``on_accepted`` as soon as the server has accepted it, before the answer goes back to the core.
    on_wire: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    on_accepted: Callable[[], None] | None = field(default=None, compare=False, repr=False)


class SendOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"  # retry later (4xx, network fault before the final dot)
    PERMANENT = "permanent"  # the recipient bounced (5xx for this recipient)
    SENDER_BLOCKED = "sender_blocked"  # 5.7.x policy/auth: the mailbox is the problem, not the contact
    UNCERTAIN = "uncertain"  # may have been delivered (connection lost after the final dot)


@quick_init
@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    detail: str = ""
    code: int | None = None  # SMTP reply code when there was one
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"


# A queueing transport's answer for a message whose ``on_wire`` said no: nothing was sent.
WITHDRAWN = SendResult(SendOutcome.TRANSIENT, "withdrawn before its transaction began")


class Transport(Protocol):
    """Optionally also ``reports_on_wire = True``: the transport may be handed more sends than
    it carries at once (they wait inside it for a connection) and calls each message's
    ``on_wire`` right before it could deliver it and ``on_accepted`` when the server accepted it, so
    the core's wire journal follows the wire, not the queue. Without it, the core hands a
    transport only as many sends as it carries at once and counts a message as gone once it is
    handed over."""

    async def send(self, message: OutgoingMessage) -> SendResult: ...

    async def lookup(self, message_id: str) -> bool | None:
        """After a crash: True if the message surely went out, False if it surely did not
        (so sending it is safe), None when the transport cannot tell (it stays uncertain)."""

    async def aclose(self) -> None: ...


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

# A factory gets the mailbox, its own table parsed by the model it registered with (None when it
# registered none) and its context. A detector factory may return None: nothing to watch.
Section = TypeVar("Section")
TransportFactory: TypeAlias = Callable[[MailboxSettings, Section, PluginContext], Transport]
DetectorFactory: TypeAlias = Callable[[MailboxSettings, Section, PluginContext], Detector | None]
Model = TypeVar("Model", bound=BaseModel)


class Registry(Protocol):
    """What ``dripd_register`` is handed. Registering a name twice is an error."""

    @overload
    def add_transport(self, name: str, factory: TransportFactory[Model], config: type[Model]) -> None: ...

    @overload
    def add_transport(self, name: str, factory: TransportFactory[None], config: None = None) -> None: ...

    @overload
    def add_detector(self, name: str, factory: DetectorFactory[Model], config: type[Model]) -> None: ...

    @overload
    def add_detector(self, name: str, factory: DetectorFactory[None], config: None = None) -> None: ...

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
    def dripd_event(self, event: Mapping[str, Any]) -> None:
        """Observe every committed event; must not block (it runs on the daemon's event loop).

        ``event`` is ``dripd.events.Event.as_json()``: ``kind`` (an ``EventKind`` value such as
        ``"sent"``, ``"replied"``, ``"bounced"``, ``"mailbox_paused"``), ``at`` (Unix seconds), the
        place where known (``id``, ``mailbox_id``, ``sequence_id``, ``enrollment_id``,
        ``contact_id``, ``step_id``, ``outbox_id``; absent when unknown) and ``data``, the kind's
        payload without its unset fields (e.g. a bounce's ``{"bounce_class": "hard", "status":
        "5.1.1", "detail": "..."}``; see ``dripd.events.PAYLOAD_OF``)."""
