"""The two bounce verdicts: an RFC 3464 delivery-status report (BOUNCE, or DELIVERED for a
positive DSN), and a non-standard plain-text bounce."""

from __future__ import annotations

import re

from dripd_imap.classify.bounce_text import (
    _bounced_addresses,
    _codes,
    _diagnostic_from_text,
    _failure_section,
    _inline_dsn_failures,
    _is_forward,
    _looks_like_bounce,
    _original_message_id,
    _unquote,
)
from dripd_imap.classify.decode import _unique
from dripd_imap.classify.dsn_fields import (
    _POSITIVE_ACTIONS,
    _SOFT_TEXT_RE,
    _class_from_text,
    _class_of,
    _class_of_status,
    _dsn_recipients,
    _recipient_failed,
    _worst,
)
from dripd_imap.classify.result import Classification, Kind
from dripd_imap.classify.view import _MessageView
from dripd_imap.classify.wording import SOFT_RE


def _as_dsn(view: _MessageView) -> Classification | None:
    texts = list(view.dsn_texts)
    if not texts and view.report_type == "delivery-status":
        # Some MTAs mislabel the status part (text/plain): the report type is the promise.
        texts = view.texts[1:]
    if not texts and _is_forward(view.subject):
        # A person forwarding a whole DSN: its machine-readable fields are still the truth.
        texts = [_unquote(view.body)]
    recipients = [r for text in texts for r in _dsn_recipients(text)]
    if not recipients:
        return None
    failed = [r for r in recipients if _recipient_failed(r)]
    if not failed:
        if any(r.action in _POSITIVE_ACTIONS for r in recipients):
            return view.verdict(
                Kind.DELIVERED,
                status=recipients[0].status,
                diagnostic=recipients[0].diagnostic,
                original_message_id=_original_message_id(view),
            )
        return None  # blocks without a readable outcome: let the plain-text rules look
    worst = _worst(failed)
    addresses = _unique(a for r in failed for a in r.addresses)
    if not addresses:
        addresses = _bounced_addresses(view)
    return view.verdict(
        Kind.BOUNCE,
        failed_recipients=tuple(addresses),
        bounce_class=_class_of(worst.status, worst.action, worst.diagnostic or ""),
        status=worst.status,
        diagnostic=worst.diagnostic or _diagnostic_from_text(view),
        original_message_id=_original_message_id(view),
    )


def _as_plain_bounce(view: _MessageView) -> Classification | None:
    if not _looks_like_bounce(view):
        return None
    section = _failure_section(view.body)
    addresses = _bounced_addresses(view)
    inline = _inline_dsn_failures(view)
    status, code = _codes(section)
    diagnostic = _diagnostic_from_text(view)
    if inline:  # pasted DSN fields say it more precisely than the prose around them
        status = _worst(inline).status or status
        diagnostic = _worst(inline).diagnostic or diagnostic
    if status:
        bounce_class = _class_of_status(status)
    elif code:
        bounce_class = "hard" if code[0] == "5" else "soft"
    else:
        bounce_class = _class_from_text(view.subject + "\n" + section) or "hard"
        if SOFT_RE.search(view.subject + "\n" + section):
            bounce_class = "soft"  # a full mailbox or a delay, worded in another language
    if _SOFT_TEXT_RE.search(view.subject) or re.search(
        r"not yet been delivered|warning message only|still being retried|delivery attempts will continue",
        section,
        re.I,
    ):
        bounce_class = "soft"  # an MTA's delay warning: whatever code it quotes, it will retry
    return view.verdict(
        Kind.BOUNCE,
        failed_recipients=tuple(addresses),
        bounce_class=bounce_class,
        status=status,
        diagnostic=diagnostic,
        original_message_id=_original_message_id(view),
    )
