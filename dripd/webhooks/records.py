"""What the store keeps about webhook endpoints and deliveries (plain values, no I/O)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

ALL_KINDS = "*"  # an endpoint that wants every event kind


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # gave up: out of retry time, or the endpoint answered 410


@dataclass(frozen=True)
class EndpointSpec:
    """What creates or updates an endpoint (from the config or the API)."""

    name: str
    url: str
    secret: str  # "whsec_<base64>"
    kinds: tuple[str, ...] | None  # None: every kind
    retry_hours: float = 24.0
    retry_first_seconds: float = 5.0
    timeout_seconds: float = 10.0
    concurrency: int = 4


@dataclass(frozen=True)
class Endpoint:
    id: int
    name: str
    url: str
    secret: str
    kinds: tuple[str, ...] | None
    source: str  # "config" | "api"
    enabled: bool
    disabled_reason: str | None
    retry_hours: float
    retry_first_seconds: float
    timeout_seconds: float
    concurrency: int
    created_at: float

    def public(self) -> dict[str, Any]:
        """The API's view: never the secret."""
        return {"id": self.id, "name": self.name, "url": self.url, "events": list(self.kinds) if self.kinds else None,
                "source": self.source, "enabled": self.enabled, "disabledReason": self.disabled_reason,
                "retryHours": self.retry_hours,
                "retryFirstSeconds": self.retry_first_seconds, "timeoutSeconds": self.timeout_seconds,
                "concurrency": self.concurrency}


@dataclass(frozen=True)
class Delivery:
    id: int
    endpoint_id: int
    event_id: int
    status: DeliveryStatus
    attempts: int
    created_at: float
    retry_from: float  # retries stop retry_hours after this (reset by a replay)
    next_attempt_at: float
    last_attempt_at: float | None = None
    last_status: int | None = None  # the receiver's HTTP status, if it answered
    last_error: str | None = None
    delivered_at: float | None = None
    event_kind: str = ""


@dataclass(frozen=True)
class EventFacts:
    """An event row as a webhook payload needs it, with the contact's address and sequence name."""

    id: int
    kind: str
    at: float
    mailbox_id: str | None
    sequence_id: int | None
    sequence_name: str | None
    enrollment_id: int | None
    contact_id: int | None
    contact_email: str | None
    step_id: int | None
    outbox_id: int | None
    data: dict[str, Any]
