"""Re-verification of an address (seed 000's "triple check"): syntax, mail domain, and an
optional SMTP RCPT probe, through the verifier a plugin registered (the SMTP plugin's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dripd.api.deps import ServicesDep
from dripd.api.schemas import Text, _Body
from dripd.errors import Unsupported, ValidationError

router = APIRouter(prefix="/api/contacts", tags=["contacts"])


class VerifyBody(_Body):
    email: Text
    probe: bool = False  # also ask the domain's mail server (SMTP RCPT; nothing is sent)
    mailbox_id: Text | None = None  # whose address the probe gives as MAIL FROM
    lift: bool = False  # take a valid address off the suppression list


def verdict(checks: list[Any]) -> str:
    if any(check.ok is False for check in checks):
        return "invalid"
    if checks and all(check.ok is True for check in checks):
        return "valid"
    return "unknown"


@router.post("/verify", summary="Re-verify an address: syntax, mail domain, optional SMTP probe")
async def verify(body: VerifyBody, services: ServicesDep) -> dict[str, Any]:
    if not services.plugins.verifiers:
        raise Unsupported("no address verifier is installed (it comes with the SMTP plugin)")
    mail_from = ""
    if body.mailbox_id is not None:
        mailbox = services.config.mailbox(body.mailbox_id)
        if mailbox is None:
            raise ValidationError("mailboxId", f"unknown mailbox {body.mailbox_id!r}")
        mail_from = mailbox.address
    checks = await services.plugins.verifiers[0](body.email.strip(), body.probe, mail_from)
    result = verdict(checks)
    lifted = False
    if body.lift and result == "valid":
        lifted = await services.store.unsuppress(body.email.strip().lower())
    return {"email": body.email.strip(), "verdict": result, "lifted": lifted,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}
