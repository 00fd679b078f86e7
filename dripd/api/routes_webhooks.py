"""``/api/webhooks``: endpoints (config-defined ones read-only here), their deliveries, a test
send, a replay, and the exact body of a delivery (whose response model puts every event kind's
versioned payload schema in the OpenAPI components)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field, field_validator

from dripd.api.deps import MAX_ID, ServicesDep
from dripd.api.schemas import Text, _Body
from dripd.clock import iso
from dripd.errors import Conflict, NotFound, ReadOnly, ValidationError
from dripd.webhooks import payloads
from dripd.webhooks.dispatcher import message_id
from dripd.webhooks.records import Delivery, DeliveryStatus, Endpoint, EndpointSpec
from dripd.webhooks.settings import known_kinds, url_problem
from dripd.webhooks.signing import new_secret, secret_problem

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="a webhook endpoint id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="a webhook delivery id")]
AnyPayload = Annotated[Union[tuple(payloads.PAYLOAD_MODELS.values())],  # type: ignore[valid-type]
                       Field(discriminator="type")]


class WebhookBody(_Body):
    name: Annotated[Text, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    url: Annotated[Text, Field(max_length=2000)]
    events: list[Text] | None = None  # absent: every kind
    secret: Text | None = None  # "whsec_<base64>"; generated when absent
    retry_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    retry_first_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    concurrency: Annotated[int, Field(gt=0, le=64)] = 4

    @field_validator("events")
    @classmethod
    def _kinds(cls, value: list[str] | None) -> list[str] | None:
        return known_kinds(value)


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {"id": delivery.id, "webhookId": delivery.endpoint_id, "eventId": delivery.event_id,
            "eventKind": delivery.event_kind, "messageId": message_id(delivery), "status": delivery.status.value,
            "attempts": delivery.attempts, "createdAt": iso(delivery.created_at),
            "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.status is DeliveryStatus.PENDING else None,
            "lastAttemptAt": iso(delivery.last_attempt_at), "lastStatus": delivery.last_status,
            "lastError": delivery.last_error, "deliveredAt": iso(delivery.delivered_at)}


async def _endpoint(services: ServicesDep, webhook_id: int) -> Endpoint:
    found = next((e for e in await services.store.webhook_endpoints() if e.id == webhook_id), None)
    if found is None:
        raise NotFound(f"no webhook endpoint {webhook_id}")
    return found


@router.get("", summary="Webhook endpoints, with their deliveries counted by status")
async def list_webhooks(services: ServicesDep) -> dict[str, Any]:
    counts = await services.store.webhook_counts()
    return {"webhooks": [{**e.public(), "deliveries": counts.get(e.id, {})}
                         for e in await services.store.webhook_endpoints()]}


@router.post("", status_code=201, summary="Add a webhook endpoint (its secret is shown only in this answer)")
async def create_webhook(body: WebhookBody, services: ServicesDep) -> dict[str, Any]:
    problem = url_problem(body.url)
    if problem is not None:
        raise ValidationError("url", problem)
    secret = body.secret if body.secret is not None else new_secret()
    problem = secret_problem(secret)
    if problem is not None:
        raise ValidationError("secret", problem)
    spec = EndpointSpec(body.name, body.url, secret, tuple(body.events) if body.events else None, body.retry_hours,
                        body.retry_first_seconds, body.timeout_seconds, body.concurrency)
    created = await services.store.webhook_create(spec, services.clock.now())
    if created is None:
        raise Conflict(f"a webhook endpoint named {body.name!r} exists", details={"field": "name"})
    services.webhooks.refresh()
    return {**created.public(), "secret": secret}


@router.get("/deliveries", summary="Deliveries, newest first (filter by endpoint and status; page with before)")
async def list_deliveries(
    services: ServicesDep,
    webhook_id: int | None = Query(None, alias="webhookId", ge=1, le=MAX_ID),
    status: Literal["pending", "delivered", "failed"] | None = None,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="only deliveries with a smaller id"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    found = await services.store.webhook_deliveries(endpoint_id=webhook_id, status=status, before_id=before,
                                                    limit=limit)
    return {"deliveries": [_delivery_json(d) for d in found],
            "nextBefore": found[-1].id if len(found) == limit else None}


@router.post("/deliveries/{delivery_id}/replay", summary="Deliver again now (same webhook-id), with a fresh retry period")
async def replay(delivery_id: DeliveryId, services: ServicesDep) -> dict[str, Any]:
    replayed = await services.store.webhook_replay(delivery_id, services.clock.now())
    if replayed is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    services.webhooks.wake()
    return _delivery_json(replayed)


@router.get("/deliveries/{delivery_id}/payload", response_model=AnyPayload,
            summary="The body a delivery sends (one versioned schema per event kind)")
async def delivery_payload(delivery_id: DeliveryId, services: ServicesDep) -> Any:
    found = await services.store.webhook_delivery(delivery_id)
    facts = None if found is None else await services.store.webhook_event(found.event_id)
    if facts is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return Response(payloads.body(facts), media_type="application/json")


@router.get("/{webhook_id}", summary="One webhook endpoint")
async def get_webhook(webhook_id: WebhookId, services: ServicesDep) -> dict[str, Any]:
    endpoint = await _endpoint(services, webhook_id)
    counts = await services.store.webhook_counts()
    return {**endpoint.public(), "deliveries": counts.get(endpoint.id, {})}


@router.delete("/{webhook_id}", status_code=204, summary="Delete an API-made endpoint and its deliveries")
async def delete_webhook(webhook_id: WebhookId, services: ServicesDep) -> Response:
    endpoint = await _endpoint(services, webhook_id)
    if endpoint.source == "config":
        raise ReadOnly(f"webhook {endpoint.name!r} is defined in the config file: remove it there and reload")
    await services.store.webhook_delete(webhook_id)
    services.webhooks.refresh()
    return Response(status_code=204)


@router.post("/{webhook_id}/enable", summary="Enable an endpoint again (after a 410 disabled it)")
async def enable_webhook(webhook_id: WebhookId, services: ServicesDep) -> dict[str, Any]:
    await _endpoint(services, webhook_id)
    await services.store.webhook_set_enabled(webhook_id, True, None, services.clock.now())
    services.webhooks.refresh()
    return (await _endpoint(services, webhook_id)).public()


@router.post("/{webhook_id}/test", summary="Send a signed webhook.test message now and report the answer")
async def test_webhook(webhook_id: WebhookId, services: ServicesDep) -> dict[str, Any]:
    endpoint = await _endpoint(services, webhook_id)
    result = await services.webhooks.test(endpoint)
    return {"webhookId": endpoint.id, "ok": result.error is None, "status": result.status, "error": result.error}
