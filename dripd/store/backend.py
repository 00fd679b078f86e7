"""Opening the configured backend: SQLite at ``[daemon] state_dir`` by default, PostgreSQL when
``[store] url`` is set. ``Backend`` is everything the daemon's services use of an opened store
(the consumers' Protocols, the webhook outbox and the reply inbox); both backends provide it."""

from __future__ import annotations

from typing import Protocol

from dripd.config import Config
from dripd.events import EventSink
from dripd.inbox.service import ReplyStore
from dripd.store.api import FullStore, LeaseFence
from dripd.webhooks.dispatcher import WebhookStore
from dripd.webhooks.records import Delivery, Endpoint, EndpointSpec


class WebhookAdmin(Protocol):
    """The webhook outbox as the API manages it (beside the dispatcher's ``WebhookStore``)."""

    async def webhook_create(self, spec: EndpointSpec, now: float) -> Endpoint | None: ...
    async def webhook_delete(self, endpoint_id: int) -> bool: ...
    async def webhook_delivery(self, delivery_id: int) -> Delivery | None: ...
    async def webhook_replay(self, delivery_id: int, now: float) -> Delivery | None: ...
    async def webhook_deliveries(self, *, endpoint_id: int | None = None, status: str | None = None,
                                 before_id: int | None = None, limit: int = 100) -> list[Delivery]: ...
    async def webhook_counts(self) -> dict[int, dict[str, int]]: ...


class Backend(FullStore, WebhookStore, WebhookAdmin, ReplyStore, Protocol):
    """An opened store of either backend."""


async def open_backend(config: Config, events: EventSink, *, fence: LeaseFence | None = None,
                       node_id: str | None = None) -> Backend:
    """Open (creating or migrating) the store the configuration names; committed events go to
    ``events``. A fence is for PostgreSQL only (several nodes); SQLite is one node's."""
    settings = config.store
    if settings.url is None:
        from dripd.store.sqlite import open_store
        return await open_store(config.daemon.database, events=events)
    from dripd.store.postgres import open_postgres_store
    # The state directory holds more than SQLite's file (CSV import spools): made for either backend.
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    return await open_postgres_store(settings.url, password=settings.password(), events=events, fence=fence,
                                     node_id=node_id, pool_size=settings.pool_size)
