"""Per-contact progress for ``GET /api/sequences/{id}/contacts``: the enrollment as stored, plus
the real next run (``holds.next_run``: window, caps, warm-up, paused mailbox) and its reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dripd import holds
from dripd.api.schemas import progress_json
from dripd.clock import iso
from dripd.model import EnrollmentStatus, Sequence, Step
from dripd.store.api import ContactProgress

if TYPE_CHECKING:
    from dripd.root import Services


def progress_rows(services: "Services", sequence: Sequence, steps: list[Step],
                  rows: list[ContactProgress]) -> list[dict[str, Any]]:
    now = services.clock.now()
    settings = sequence.settings
    # Per-contact zones need each contact's fields; the planned time already honours them.
    window = settings.window() if settings.window_zone == "sequence" else None
    out = []
    for row in rows:
        item = progress_json(row, steps)
        item["state"] = row.status
        item["endReason"] = row.end_reason
        item["dueAt"] = item["nextRunAt"]
        item["nextRunReason"] = None
        mailbox_id = item["mailboxId"] = row.mailbox_id or settings.mailbox_id
        if row.status == EnrollmentStatus.ACTIVE.value:
            lane = services.scheduler.lanes.get(mailbox_id)
            run = holds.next_run(
                due_at=row.due_at, now=now, sequence_status=sequence.status, window=window,
                limiter=lane.limiter if lane else None, paused_reason=lane.paused_reason if lane else None,
                mailbox_known=services.config.mailbox(mailbox_id) is not None,
                retry=(f"attempt {row.retry_attempts}: {row.retry_detail}" if row.retry_detail is not None else None))
            item["nextRunAt"], item["nextRunReason"] = iso(run.at), run.reason
            if run.stuck:
                item["state"] = "stuck"
            elif row.retry_detail is not None:
                item["state"] = "retrying"  # active, but its last send failed for now
        out.append(item)
    return out
