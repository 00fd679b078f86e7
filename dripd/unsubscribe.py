"""What an opt-out does, however it arrived (the one-click link, the page, a reply asking for it):
one rule, so a reply's "please remove me" is honoured exactly like a one-click unsubscribe."""

from __future__ import annotations

import logging

from dripd import events
from dripd.events import EventKind
from dripd.model import EnrollmentStatus
from dripd.store.api import SentRef, Signals

log = logging.getLogger("dripd.unsubscribe")


async def honour_unsubscribe(store: Signals, ref: SentRef, via: str, now: float) -> bool:
    """Global: the enrollment that sent ``ref`` ends as unsubscribed, the address joins the
    suppression list, and every other active enrollment of it ends too. Repeats change nothing
    (returns False)."""
    if await store.suppression_reason(ref.contact_email) in ("unsubscribed", "complaint"):
        return False
    await store.record_signal(ref, EventKind.UNSUBSCRIBED, now, events.Reason(f"{via} unsubscribe"),
                              end_as=EnrollmentStatus.UNSUBSCRIBED)
    await store.suppress(ref.contact_email, "unsubscribed", f"{via} unsubscribe", now)
    # No address in the log: the enrollment id is enough to find it through the API.
    log.info("enrollment %d unsubscribed (%s, step %d)", ref.enrollment_id, via, ref.step_id)
    return True
