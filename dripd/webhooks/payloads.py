"""The JSON body of each webhook: one documented, versioned shape per event kind. Pure.

``{"type": "<kind>", "version": 1, "timestamp": "<RFC 3339>", "eventId": N, "data": {...}}``:
``data`` holds where the event happened (mailbox, sequence, contact, step, message) and the
kind's own fields (``dripd.events.PAYLOAD_OF``), camelCased like the rest of the API. The
pydantic models here exist for the OpenAPI document's components (``payload_models``); a new
field is added within a version, a renamed or removed one makes the next version.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from dripd.clock import iso
from dripd.events import PAYLOAD_OF, EventKind, Payload
from dripd.webhooks.records import EventFacts

VERSION = 1
TEST_TYPE = "webhook.test"  # what ``POST /api/webhooks/{id}/test`` sends


def body(facts: EventFacts) -> bytes:
    """The exact bytes sent (and signed) for one event; the same for every attempt."""
    data: dict[str, Any] = {
        "mailboxId": facts.mailbox_id, "sequenceId": facts.sequence_id, "sequenceName": facts.sequence_name,
        "enrollmentId": facts.enrollment_id, "contactId": facts.contact_id, "contactEmail": facts.contact_email,
        "stepId": facts.step_id, "messageId": facts.outbox_id,
    }
    data = {key: value for key, value in data.items() if value is not None}
    data.update({to_camel(key): value for key, value in facts.data.items()})
    return _dump({"type": facts.kind, "version": VERSION, "timestamp": iso(facts.at), "eventId": facts.id,
                  "data": data})


def test_body(endpoint_name: str, at: float) -> bytes:
    return _dump({"type": TEST_TYPE, "version": VERSION, "timestamp": iso(at),
                  "data": {"endpoint": endpoint_name, "message": "a test delivery from dripd"}})


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# -- the schema, for the OpenAPI document -----------------------------------------------------

class _Model(BaseModel):
    # extra="allow": a field added within a version (say, a reply's category) passes through.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class WebhookPlace(_Model):
    """Where an event happened; absent keys do not apply to the kind (a mailbox pause has no contact)."""

    mailbox_id: str | None = None
    sequence_id: int | None = None
    sequence_name: str | None = None
    enrollment_id: int | None = None
    contact_id: int | None = None
    contact_email: str | None = None
    step_id: int | None = None
    message_id: int | None = Field(default=None, description="the sent message's ledger id (dripd's, not the "
                                                              "Message-ID header)")


def _data_model(cls: type[Payload]) -> type[BaseModel]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {f.name: (Optional[hints[f.name]], None) for f in dataclasses.fields(cls)}
    return create_model(f"WebhookData{cls.__name__}", __base__=WebhookPlace,
                        __doc__=f"Where the event happened, and the fields of {cls.__name__} events.", **fields)


def _kind_model(kind: EventKind, data: type[BaseModel]) -> type[BaseModel]:
    title = "".join(part.title() for part in kind.value.split("_"))
    model: type[BaseModel] = create_model(
        f"Webhook{title}V{VERSION}", __base__=_Model,
        __doc__=f"The body of a {kind.value!r} webhook, version {VERSION}.",
        type=(Literal[kind.value], ...),  # type: ignore[arg-type]
        version=(Literal[1], VERSION),
        timestamp=(str, Field(description="when the event happened, RFC 3339 UTC")),
        event_id=(int, Field(description="the event's id; with the endpoint, what webhook-id is made of")),
        data=(data, ...),
    )
    return model


_DATA = {cls: _data_model(cls) for cls in set(PAYLOAD_OF.values())}
PAYLOAD_MODELS: dict[EventKind, type[BaseModel]] = {kind: _kind_model(kind, _DATA[cls])
                                                    for kind, cls in PAYLOAD_OF.items()}
