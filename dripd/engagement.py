"""What the engine asks of the engagement room when it builds a message.

The tracking listener (opens, clicks, unsubscribe pages) implements ``Engagement``; without
it, ``NoTracking`` gives every message a mailto unsubscribe and leaves the HTML alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dripd.config import MailboxConfig
from dripd.model import SequenceSettings
from dripd.quick_init import quick_init


@quick_init
@dataclass(frozen=True)
class MessageRef:
    """Names one outgoing message; signed tokens carry it."""

    message_id: str
    mailbox_id: str
    sequence_id: int
    step_id: int
    enrollment_id: int
    contact_email: str


class Engagement(Protocol):
    def merge_fields(self, ref: MessageRef, mailbox: MailboxConfig) -> dict[str, str]:
        """Extra merge fields for this message, e.g. ``unsubscribeUrl``."""

    def decorate_html(self, ref: MessageRef, html: str, settings: SequenceSettings) -> str:
        """The HTML as sent: open pixel and rewritten links when the sequence tracks them."""

    def list_unsubscribe(self, ref: MessageRef, mailbox: MailboxConfig) -> tuple[tuple[str, ...], bool]:
        """``List-Unsubscribe`` URLs and whether RFC 8058 one-click applies."""


def mailto_unsubscribe(mailbox: MailboxConfig) -> str:
    return f"mailto:{mailbox.address}?subject=unsubscribe"


class NoTracking:
    """No public listener configured: unsubscribe by reply-mail, HTML untouched."""

    def merge_fields(self, ref: MessageRef, mailbox: MailboxConfig) -> dict[str, str]:
        return {"unsubscribeUrl": mailto_unsubscribe(mailbox)}

    def decorate_html(self, ref: MessageRef, html: str, settings: SequenceSettings) -> str:
        return html

    def list_unsubscribe(self, ref: MessageRef, mailbox: MailboxConfig) -> tuple[tuple[str, ...], bool]:
        return (mailto_unsubscribe(mailbox),), False
