"""``GET /api/mailboxes/{id}/doctor``: the deliverability checks of one mailbox (dripd.doctor)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dripd.api.deps import ServicesDep
from dripd.doctor.run import diagnose
from dripd.errors import NotFound

router = APIRouter(prefix="/api/mailboxes", tags=["mailboxes"])


@router.get("/{mailbox_id}/doctor",
            summary="Deliverability checks of the mailbox's From domain: SPF, DKIM, DMARC, MX, TLS, blocklists, "
                    "message shape (each pass / warn / fail / unknown, with the record read and what to change)")
async def doctor(mailbox_id: str, services: ServicesDep) -> dict[str, Any]:
    config = services.config
    mailbox = config.mailbox(mailbox_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {mailbox_id!r} in the configuration", details={"mailboxId": mailbox_id})
    sequences = [s.settings for s in await services.store.list_sequences()]
    report = await diagnose(mailbox, config.doctor, sequences, services.engagement, services.clock.now())
    return report.as_json()
