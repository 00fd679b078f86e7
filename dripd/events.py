"""The one vocabulary of events, and the stream that carries them after commit.

Every event has one spelling, from the detector that saw it through the store that writes it
(``events.kind``) to the metrics and the plugin hook. The store is the only writer: it writes an
``Event`` in the same transaction as the change it describes, and hands the events of each
committed transaction to an ``EventSink``. ``EventStream`` is the in-process sink: consumers
(the plugin hook, later webhooks and the reply inbox) each get a bounded queue, and a full queue
drops the event for that consumer and counts it, so a slow consumer can never stall a send.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping, Protocol

import trio

from dripd.model import EnrollmentStatus
from dripd.quick_init import quick_init

log = logging.getLogger("dripd.events")


class EventKind(enum.StrEnum):
    """Every kind of event dripd records, as stored in ``events.kind`` and sent to consumers."""

    ENROLLED = "enrolled"
    SENT = "sent"
    RETRY = "retry"  # a transient failure; the step is due again later
    UNCERTAIN = "uncertain"  # may or may not have been delivered; never resent by default
    FAILED = "failed"  # the message could not be built or sent after its ledger claim
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    AUTO_REPLIED = "auto_replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"
    CANCELLED = "cancelled"
    COMPLETED = "completed"  # an enrollment walked every step
    SEQUENCE_PAUSED = "sequence_paused"
    SEQUENCE_COMPLETED = "sequence_completed"
    MAILBOX_PAUSED = "mailbox_paused"
    MAILBOX_RESUMED = "mailbox_resumed"
    ANSWERED = "answered"  # a person answered a reply from the reply inbox (not a sequence step)


# What the store's journals write when an enrollment ends, by its end status: the one event of
# each ending (a consumer that must know of every ending, such as the engine's watch of claimed
# sends, listens for these kinds).
END_KIND: Mapping[EnrollmentStatus, EventKind] = {
    EnrollmentStatus.COMPLETED: EventKind.COMPLETED,
    EnrollmentStatus.REPLIED: EventKind.REPLIED,
    EnrollmentStatus.BOUNCED: EventKind.BOUNCED,
    EnrollmentStatus.UNSUBSCRIBED: EventKind.UNSUBSCRIBED,
    EnrollmentStatus.CANCELLED: EventKind.CANCELLED,
    EnrollmentStatus.FAILED: EventKind.FAILED,
}


# -- typed payloads: what each kind carries besides its place (mailbox, sequence, contact, step) --


@quick_init
@dataclass(frozen=True)
class NoData:
    """Kinds whose place says everything (enrolled, sent, completed, cancelled, ...)."""


@dataclass(frozen=True)
class Reason:
    """Why something stopped or was paused (an enrollment ended, a sequence or mailbox paused)."""

    reason: str | None = None


@dataclass(frozen=True)
class Detail:
    """A transport's or a server's words (retry, uncertain, failed, delivered, complained)."""

    detail: str | None = None
    attempt: int | None = None
    status: str | None = None


@dataclass(frozen=True)
class Bounce:
    bounce_class: str  # "hard" | "soft"
    detail: str | None = None
    status: str | None = None  # RFC 3463 enhanced status, e.g. "5.1.1"


@dataclass(frozen=True)
class Reply:
    sender: str = ""
    source: str = ""  # where the detector saw it (folder/uid)
    return_date: str | None = None  # ISO date an auto-reply says its writer is back
    resume_at: str | None = None  # ISO time the contact's next step waits for (onAutoReply "delay")
    category: str | None = None  # the reply inbox's category (dripd.inbox.categories), for webhooks


@dataclass(frozen=True)
class Engagement:
    """An open or a click; ``flagged`` hits came from a scanner or prefetcher, not a person."""

    url: str | None = None  # the link clicked
    agent: str | None = None  # the User-Agent, cut to 300 characters
    flagged: bool = False  # not counted as a person's
    flag: str | None = None  # why the hit looks like a machine's (kept even when counted)


@dataclass(frozen=True)
class Answer:
    """A person's answer to a reply, sent from the reply inbox through the contact's mailbox."""

    reply_id: int
    message_id: str
    outcome: str  # the transport's SendOutcome ("accepted", "transient", "permanent", ...)
    detail: str | None = None


Payload = NoData | Reason | Detail | Bounce | Reply | Engagement | Answer

PAYLOAD_OF: Mapping[EventKind, type[Payload]] = {
    EventKind.ENROLLED: NoData,
    EventKind.SENT: NoData,
    EventKind.RETRY: Detail,
    EventKind.UNCERTAIN: Detail,
    EventKind.FAILED: Detail,
    EventKind.DELIVERED: Detail,
    EventKind.OPENED: Engagement,
    EventKind.CLICKED: Engagement,
    EventKind.REPLIED: Reply,
    EventKind.AUTO_REPLIED: Reply,
    EventKind.BOUNCED: Bounce,
    EventKind.UNSUBSCRIBED: Reason,
    EventKind.COMPLAINED: Detail,
    EventKind.CANCELLED: Reason,
    EventKind.COMPLETED: NoData,
    EventKind.SEQUENCE_PAUSED: Reason,
    EventKind.SEQUENCE_COMPLETED: Reason,
    EventKind.MAILBOX_PAUSED: Reason,
    EventKind.MAILBOX_RESUMED: NoData,
    EventKind.ANSWERED: Answer,
}


def payload_json(payload: Payload) -> dict[str, Any]:
    """The stored (and streamed) JSON shape of a payload: its fields, without the unset ones."""
    return {key: value for key, value in asdict(payload).items() if value is not None and value is not False}


def payload_from_json(kind: EventKind, data: Mapping[str, Any]) -> Payload:
    """Inverse of ``payload_json`` for the kind's payload type; unknown keys are ignored."""
    cls = PAYLOAD_OF[kind]
    names = cls.__dataclass_fields__
    return cls(**{key: value for key, value in data.items() if key in names})


@quick_init
@dataclass(frozen=True)
class Event:
    """One thing that happened, with where it happened. ``payload`` must be the kind's type."""

    kind: EventKind
    at: float
    payload: Payload = field(default_factory=NoData)
    mailbox_id: str | None = None
    sequence_id: int | None = None
    enrollment_id: int | None = None
    contact_id: int | None = None
    step_id: int | None = None
    outbox_id: int | None = None
    id: int | None = None  # the store's row id, once written

    def __post_init__(self) -> None:
        expected = PAYLOAD_OF[self.kind]
        if not isinstance(self.payload, expected):
            raise TypeError(f"{self.kind.value} events carry {expected.__name__}, not {type(self.payload).__name__}")

    def numbered(self, event_id: int | None) -> "Event":
        """This event with its store row id (the store's journals number each one they write): a
        shallow copy of its fields given the id, as the dataclass's own ``__init__`` sets them.
        ``dataclasses.replace`` re-runs every field and the payload check, and ``copy.copy`` goes
        through ``__reduce_ex__``: each was a measurable share of a send, two events per send."""
        numbered = object.__new__(type(self))
        fields = numbered.__dict__
        fields.update(self.__dict__)
        fields["id"] = event_id
        return numbered

    def as_json(self) -> dict[str, Any]:
        """The shape consumers outside the process see (the plugin hook, webhooks)."""
        out: dict[str, Any] = {"kind": self.kind.value, "at": self.at}
        for key in ("id", "mailbox_id", "sequence_id", "enrollment_id", "contact_id", "step_id", "outbox_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["data"] = payload_json(self.payload)
        return out


# -- what a detector saw: messages and addresses only, no enrollments --------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """What the reply inbox keeps of a reply: its headers as written and its text (quotes and
    all; the inbox strips them), with no reference to the mailbox it came from."""

    from_header: str = ""
    subject: str = ""
    date: str = ""  # the Date header as written
    message_id: str = ""
    text: str = ""  # the message's own text (text/plain, or its HTML as text)

DETECTED_KINDS = frozenset({
    EventKind.REPLIED, EventKind.AUTO_REPLIED, EventKind.BOUNCED, EventKind.COMPLAINED, EventKind.DELIVERED,
})


@dataclass(frozen=True)
class MailEvent:
    """Something a detector saw in a mailbox, in terms of messages and addresses only."""

    kind: EventKind  # one of DETECTED_KINDS
    mailbox_id: str
    at: float
    sender: str | None = None
    references: tuple[str, ...] = ()  # Message-IDs this message points at
    recipients: tuple[str, ...] = ()  # failed / complaining recipients
    bounce_class: str | None = None  # "hard" | "soft"
    status: str | None = None
    detail: str | None = None
    return_date: dt.date | None = None
    source: str = ""  # where it was seen (folder/uidvalidity/uid): logs, and the inbox's link to it
    message: ReceivedMessage | None = None  # replies and auto-replies: what the reply inbox keeps

    def __post_init__(self) -> None:
        if self.kind not in DETECTED_KINDS:
            raise ValueError(f"a detector cannot report {self.kind.value!r} events")


# -- after commit --------------------------------------------------------------------------------


class EventSink(Protocol):
    """Where the store hands the events of each committed transaction. Must not block."""

    def publish(self, events: Iterable[Event]) -> None: ...


Listener = Callable[[Event], None]  # cheap and synchronous (metrics counters)
Consumer = Callable[[Event], Awaitable[None]]


class EventStream:
    """Fan-out of committed events: synchronous listeners, and bounded queues per async consumer."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._queues: dict[str, trio.MemorySendChannel[Event]] = {}
        self.dropped: dict[str, int] = {}
        self.published = 0

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def subscribe(self, name: str, max_buffer: int = 10_000) -> trio.MemoryReceiveChannel[Event]:
        """A bounded queue of every event published from now on; a full queue drops for this
        consumer only (counted in ``dropped[name]``), never holds up the publisher."""
        if name in self._queues:
            raise ValueError(f"event consumer {name!r} subscribed twice")
        send, receive = trio.open_memory_channel[Event](max_buffer)
        self._queues[name] = send
        self.dropped[name] = 0
        return receive

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self.published += 1
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed on %s", event.kind.value)
            for name, queue in self._queues.items():
                try:
                    queue.send_nowait(event)
                except trio.WouldBlock:
                    self.dropped[name] += 1
                    if self.dropped[name] in (1, 100) or self.dropped[name] % 10_000 == 0:
                        log.warning("event consumer %s is behind: %d event(s) dropped", name, self.dropped[name])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the consumer has gone (shutdown); nothing to deliver to

    def close(self) -> None:
        for queue in self._queues.values():
            queue.close()


async def consume(receive: trio.MemoryReceiveChannel[Event], consumer: Consumer, name: str) -> None:
    """Feed one consumer until the stream closes; a consumer's failure is logged, not fatal."""
    async with receive:
        async for event in receive:
            # Then every event already queued (a group commit publishes several at once): one
            # scheduler pass per batch, not per event.
            while True:
                try:
                    await consumer(event)
                except Exception:
                    log.exception("event consumer %s failed on %s", name, event.kind.value)
                try:
                    event = receive.receive_nowait()
                except trio.WouldBlock:
                    break
                except trio.EndOfChannel:
                    return
