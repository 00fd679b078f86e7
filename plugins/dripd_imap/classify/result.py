"""The classifier's verdict: what a message is, and what could be read from it."""

from __future__ import annotations

import dataclasses
import datetime
import enum


class Kind(str, enum.Enum):
    """What a message is, as far as a cadence is concerned."""

    MESSAGE = "message"  # written by a person (candidate reply)
    AUTO_REPLY = "auto_reply"  # out-of-office / autoresponder: NOT a reply
    BOUNCE = "bounce"  # delivery failure (or delay: soft)
    COMPLAINT = "complaint"  # abuse / feedback report
    DELIVERED = "delivered"  # positive DSN: not a failure


@dataclasses.dataclass(frozen=True)
class Classification:
    """The classifier's verdict and what it could read from the message."""

    kind: Kind
    sender: str | None = None
    references: tuple[str, ...] = ()
    original_message_id: str | None = None
    failed_recipients: tuple[str, ...] = ()
    bounce_class: str | None = None
    status: str | None = None
    diagnostic: str | None = None
    return_date: datetime.date | None = None
    subject: str = ""
