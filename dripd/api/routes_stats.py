"""Analytics over the API: per-step funnels, the per-contact log, per-mailbox engagement, and
the Prometheus exposition on the control socket."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from dripd import analytics
from dripd.api.deps import ContactId, ServicesDep, SequenceId
from dripd.clock import iso
from dripd.errors import NotFound
from dripd.metrics import CONTENT_TYPE
from dripd.variant_stats import variant_report

stats = APIRouter(prefix="/api", tags=["analytics"])
metrics_router = APIRouter(tags=["metrics"])


@stats.get("/sequences/{sequence_id}/stats", summary="Funnel per step: sent, delivered, opened, clicked, "
           "replied, bounced, unsubscribed (counts and rates)")
async def sequence_stats(sequence_id: SequenceId, services: ServicesDep) -> dict[str, Any]:
    sequence, live = await services.store.get_sequence(sequence_id)
    window = services.config.analytics.bounce_window_hours * 3600
    now = services.clock.now()
    facts = await services.store.sequence_message_facts(sequence_id)
    funnels = analytics.funnels_by_step(facts, now, window)
    by_mailbox = analytics.funnels_by_mailbox(facts, now, window)
    by_variant = analytics.funnels_by_variant(facts, now, window)
    index_of = {step.id: i for i, step in enumerate(live)}
    rows = []
    for step in await services.store.all_steps(sequence_id):
        if step["type"] != "email" or (step["deleted"] and step["id"] not in funnels):
            continue
        funnel = funnels.get(step["id"], analytics.Funnel())
        rows.append({"stepIndex": index_of.get(step["id"]), "stepId": step["id"], "subject": step["subject"],
                     "deleted": step["deleted"], **funnel.as_json()})
        if step["variants"] or step["id"] in by_variant:
            rows[-1]["abTest"] = variant_report(step["variants"], step["auto_winner"], by_variant.get(step["id"], {}))
    return {"sequenceId": sequence_id, "name": sequence.settings.name, "status": sequence.status.value,
            "trackOpens": sequence.settings.track_opens, "trackClicks": sequence.settings.track_clicks,
            "bounceWindowHours": services.config.analytics.bounce_window_hours, "generatedAt": iso(now),
            "steps": rows, "total": analytics.total(funnels.values()).as_json(),
            "mailboxes": [{"mailboxId": mailbox_id, **by_mailbox[mailbox_id].as_json()}
                          for mailbox_id in sorted(by_mailbox)]}


@stats.get("/sequences/{sequence_id}/contacts/{contact_id}", summary="Per-contact log: every message and "
           "event in order, and which step drove the reply")
async def contact_log(sequence_id: SequenceId, contact_id: ContactId, services: ServicesDep) -> dict[str, Any]:
    _, live = await services.store.get_sequence(sequence_id)
    contact = await services.store.get_contact(contact_id)
    history = await services.store.contact_history(sequence_id, contact_id)
    if not history["enrollments"]:
        raise NotFound(f"contact {contact_id} was never enrolled in sequence {sequence_id}",
                       details={"sequenceId": sequence_id, "contactId": contact_id})
    index_of = {step.id: i for i, step in enumerate(live)}
    by_outbox = {m["id"]: m for m in history["messages"]}
    messages = [{"messageId": m["message_id"], "stepIndex": index_of.get(m["step_id"]), "stepId": m["step_id"],
                 "subject": m["subject"], "variant": m["variant"], "html": m["body"], "text": m["text_body"],
                 "status": m["status"], "attempts": m["attempts"],
                 "sentAt": iso(m["resolved_at"] or m["attempted_at"]), "detail": m["detail"]}
                for m in history["messages"]]
    events = []
    replied_to = None
    for e in history["events"]:
        message = by_outbox.get(e["outbox_id"])
        item = {"at": iso(e["at"]), "kind": e["kind"], "stepIndex": index_of.get(e["step_id"]),
                "stepId": e["step_id"], "messageId": message["message_id"] if message else None,
                "flagged": bool(e["flagged"]), "data": e["data"]}
        events.append(item)
        if e["kind"] == "replied" and message is not None and replied_to is None:
            replied_to = {"stepIndex": item["stepIndex"], "stepId": e["step_id"], "messageId": item["messageId"],
                          "subject": message["subject"]}
    enrollments = [{"enrollmentId": e["id"], "status": e["status"], "enrolledAt": iso(e["enrolled_at"]),
                    "endedAt": iso(e["ended_at"]), "endReason": e["end_reason"], "sentCount": e["sent_count"]}
                   for e in history["enrollments"]]
    return {"sequenceId": sequence_id, "contactId": contact_id, "email": contact.email,
            "enrollments": enrollments, "messages": messages, "events": events, "repliedTo": replied_to}


@stats.get("/mailboxes/{mailbox_id}/stats", summary="Rolling open, reply and bounce rates and the health verdict")
async def mailbox_stats(mailbox_id: str, services: ServicesDep) -> dict[str, Any]:
    if services.config.mailbox(mailbox_id) is None:
        raise NotFound(f"no mailbox {mailbox_id!r} in the configuration", details={"mailboxId": mailbox_id})
    settings = services.config.analytics
    result = await services.health.of(mailbox_id)
    return {"mailboxId": mailbox_id, "windowDays": settings.health_window_days,
            "baselineDays": settings.health_baseline_days, "minSends": settings.health_min_sends,
            "health": result.as_json()}


@metrics_router.get("/metrics", summary="Prometheus exposition (text format)", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    return Response(await services.scrape.exposition(), media_type=CONTENT_TYPE)
