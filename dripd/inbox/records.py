"""The reply inbox's values: a reply as kept, its relabels, and what a listing asks for. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NewReply:
    """A reply or auto-reply to keep, tied to the message dripd sent that drove it."""

    mailbox_id: str
    kind: str  # "replied" | "auto_replied"
    contact_email: str
    sequence_id: int
    enrollment_id: int
    step_id: int
    outbox_id: int
    from_header: str
    subject: str
    date: str  # the Date header as written
    message_id: str
    text: str  # the new text, quotes stripped
    folder: str | None  # the raw message in the user's mailbox: folder, UIDVALIDITY, UID
    uidvalidity: int | None
    uid: int | None
    category: str
    rule: str  # which rule chose the category
    received_at: float


@dataclass(frozen=True)
class Relabel:
    category: str
    previous: str
    at: float


@dataclass(frozen=True)
class SentAnswer:
    """An answer a person sent from the inbox; ``status`` is "sending" until the transport answered."""

    id: int
    message_id: str
    subject: str
    text: str
    status: str
    detail: str | None
    created_at: float


@dataclass(frozen=True)
class StoredReply:
    id: int
    mailbox_id: str
    kind: str
    contact_id: int | None
    contact_email: str
    sequence_id: int
    enrollment_id: int
    step_id: int
    outbox_id: int
    from_header: str
    subject: str
    date: str
    message_id: str
    text: str
    folder: str | None
    uidvalidity: int | None
    uid: int | None
    category: str
    rule: str
    labelled_by: str  # "rules" until a person relabels it, then "person"
    received_at: float
    read_at: float | None
    relabels: tuple[Relabel, ...] = ()
    answers: tuple[SentAnswer, ...] = ()


@dataclass(frozen=True)
class ReplyFilter:
    mailbox_id: str | None = None
    sequence_id: int | None = None
    category: str | None = None
    unread: bool | None = None  # True: unread only; False: read only
    since: float | None = None  # received at or after
    limit: int = 50
    offset: int = 0


def parse_source(source: str) -> tuple[str | None, int | None, int | None]:
    """A detector's "folder/uidvalidity/uid" (the folder may contain "/") as its three parts."""
    parts = source.rsplit("/", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return (source or None), None, None
