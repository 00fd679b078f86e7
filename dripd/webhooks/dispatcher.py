"""Drains the webhook outbox: posts each due delivery, signed, and records what the receiver said.

It runs in its own task (``run``) beside the lanes and touches them in no way: its store work is
control-plane (never more than a few operations in a send's group commit), each endpoint has at
most ``concurrency`` requests in flight, each attempt its own timeout, and an endpoint that
keeps failing gets no new attempts for a while (``retry.endpoint_pause``), so a receiver that
hangs or answers 500 costs the daemon a bounded trickle of work. Nothing is lost meanwhile: the
deliveries wait in the outbox, which survives restarts and kill -9.

The HTTP client is httpx on trio (httpcore's trio backend, chosen by sniffio inside trio tasks):
it does not cross the trio-asyncio bridge.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import httpx
import trio

from dripd.clock import Clock, offloaded
from dripd.config import LiveConfig
from dripd.events import Event
from dripd.webhooks import payloads, retry, signing
from dripd.webhooks.records import Delivery, DeliveryStatus, Endpoint, EndpointSpec, EventFacts

log = logging.getLogger("dripd.webhooks")

CONFIG_CHECK_SECONDS = 5.0  # how soon a reloaded [[webhooks]] list is put in force
ROUND_SECONDS = 0.02  # the shortest time between two rounds of starting due deliveries
IDLE_SECONDS = 3600.0  # a round with nothing due: the next one comes on a wake-up, or after this
ERROR_TEXT_LIMIT = 300


class WebhookStore(Protocol):
    async def webhook_sync_config(self, specs: Sequence[EndpointSpec], now: float) -> None: ...
    async def webhook_endpoints(self) -> list[Endpoint]: ...
    async def webhook_set_enabled(self, endpoint_id: int, enabled: bool, reason: str | None, now: float) -> bool: ...
    async def webhook_due(self, endpoint_id: int, now: float, limit: int, skip: Sequence[int]) -> list[Delivery]: ...
    async def webhook_next_due(self, exclude: Sequence[int]) -> float | None: ...
    async def webhook_event(self, event_id: int) -> EventFacts | None: ...
    async def webhook_record(self, delivery_id: int, status: DeliveryStatus, at: float, http_status: int | None,
                             error: str | None, next_attempt_at: float | None) -> None: ...
    async def webhook_expire(self, delivery_id: int, now: float, reason: str) -> None: ...


@dataclass(frozen=True)
class AttemptResult:
    status: int | None  # the receiver's HTTP status; None when it did not answer
    error: str | None  # why not, in words (never the secret)


@dataclass
class _EndpointState:
    in_flight: set[int] = field(default_factory=set)  # delivery ids
    failures: int = 0  # consecutive
    paused_until: float = 0.0  # trio time


def message_id(delivery: Delivery) -> str:
    """The webhook-id: the receiver's idempotency key, the same on every attempt and replay."""
    return f"msg_{delivery.event_id}_{delivery.endpoint_id}"


async def post(client: httpx.AsyncClient, endpoint: Endpoint, msg_id: str, timestamp: int,
               body: bytes) -> AttemptResult:
    """One signed POST within the endpoint's timeout. The test clock must not jump while a real
    receiver is answering (``offloaded``), and the timeout is real time's: a hung receiver is
    cut off by ``move_on_after`` of the daemon's clock in production."""
    key = signing.key_of(endpoint.secret)
    with trio.move_on_after(endpoint.timeout_seconds) as scope:
        try:
            with offloaded:
                response = await client.post(endpoint.url, content=body,
                                             headers=signing.headers(key, msg_id, timestamp, body),
                                             timeout=endpoint.timeout_seconds)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:  # ValueError: a bad IDN host
            return AttemptResult(None, (f"{type(exc).__name__}: {exc}" or type(exc).__name__)[:ERROR_TEXT_LIMIT])
    if scope.cancelled_caught:
        return AttemptResult(None, f"no answer within {endpoint.timeout_seconds:g}s")
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, error)


class Dispatcher:
    """The webhook delivery service of one daemon."""

    def __init__(self, live: LiveConfig, store: WebhookStore, clock: Clock, *,
                 rng: random.Random | None = None) -> None:
        self._live = live
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = trio.Event()
        self._states: dict[int, _EndpointState] = {}
        self._synced: object = None  # the config whose [[webhooks]] is in the store
        self._endpoints: list[Endpoint] | None = None  # None: read them on the next round
        self._wanted: frozenset[str] | None = frozenset()  # kinds some enabled endpoint wants; None: all
        self.attempts = 0
        self.delivered = 0

    def on_event(self, event: Event) -> None:
        """An EventStream listener: a committed event of a kind some endpoint wants has queued
        deliveries. O(1); events nobody wants (every event when there are no endpoints) cost a
        set lookup."""
        if self._wanted is None or event.kind.value in self._wanted:
            self._wake.set()

    def refresh(self) -> None:
        """The endpoints changed (API, reload, a 410): read them again on the next round."""
        self._endpoints = None
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def sync_config(self) -> None:
        config = self._live.current
        if config is self._synced:
            return
        await self._store.webhook_sync_config([endpoint.spec() for endpoint in config.webhooks], self._clock.now())
        self._synced = config
        self.refresh()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled. Starts after the config's endpoints are in the store."""
        await self.sync_config()
        async with httpx.AsyncClient(follow_redirects=False) as client:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    self._wake = trio.Event()
                    try:
                        await self.sync_config()
                    except ValueError as exc:  # a secret file gone unreadable since start-up
                        log.error("webhooks: keeping the previous endpoints: %s", exc)
                        self._synced = self._live.current
                    deadline = trio.current_time() + await self._start_due(client, nursery)
                    while not self._wake.is_set() and trio.current_time() < deadline \
                            and self._live.current is self._synced:
                        with trio.move_on_at(min(deadline, trio.current_time() + CONFIG_CHECK_SECONDS)):
                            await self._wake.wait()
                    # Rounds at most every ROUND_SECONDS: a busy send path wakes this on every
                    # event, and one round serves them all.
                    await trio.sleep(ROUND_SECONDS)

    async def _start_due(self, client: httpx.AsyncClient, nursery: trio.Nursery) -> float:
        """Start every due delivery there is room for; seconds until something may be due."""
        endpoints = self._endpoints
        if endpoints is None:
            endpoints = self._endpoints = await self._store.webhook_endpoints()
            enabled = [e for e in endpoints if e.enabled]
            self._wanted = None if any(e.kinds is None for e in enabled) else \
                frozenset(kind for e in enabled for kind in e.kinds or ())
        # The round keeps the list it began with: a delivery answered 410 meanwhile (``refresh``,
        # at any await below) sets ``_endpoints`` to None for the next round, and reading it again
        # here raised TypeError and ended the daemon.
        now = self._clock.now()
        wait = IDLE_SECONDS
        waiting: list[int] = []  # endpoints that cannot start more now: their due rows are not "next"
        for endpoint in endpoints:
            if not endpoint.enabled:
                waiting.append(endpoint.id)
                continue
            state = self._states.setdefault(endpoint.id, _EndpointState())
            room = endpoint.concurrency - len(state.in_flight)
            paused = state.paused_until - trio.current_time()
            if paused > 0 or room <= 0:  # a completion wakes the loop; a pause ends by itself
                waiting.append(endpoint.id)
                wait = min(wait, paused) if paused > 0 else wait
                continue
            for delivery in await self._store.webhook_due(endpoint.id, now, room, sorted(state.in_flight)):
                state.in_flight.add(delivery.id)
                nursery.start_soon(self._deliver, client, endpoint, delivery, state)
        if len(waiting) == len(endpoints):
            return wait  # every endpoint paused, full or disabled (or none): no store work until that changes
        next_due = await self._store.webhook_next_due(waiting)
        if next_due is not None:
            wait = min(wait, max(0.0, next_due - self._clock.now()))
        return wait

    async def _deliver(self, client: httpx.AsyncClient, endpoint: Endpoint, delivery: Delivery,
                       state: _EndpointState) -> None:
        try:
            await self._attempt(client, endpoint, delivery, state)
        except Exception:
            log.exception("webhook %s: delivery %d failed unexpectedly", endpoint.name, delivery.id)
            state.failures += 1
            state.paused_until = trio.current_time() + retry.endpoint_pause(state.failures)
        finally:
            state.in_flight.discard(delivery.id)
            self._wake.set()

    async def _attempt(self, client: httpx.AsyncClient, endpoint: Endpoint, delivery: Delivery,
                       state: _EndpointState) -> None:
        now = self._clock.now()
        if now >= delivery.retry_from + endpoint.retry_hours * 3600.0 and delivery.attempts > 0:
            await self._store.webhook_expire(delivery.id, now, f"gave up after {endpoint.retry_hours:g} h")
            return
        facts = await self._store.webhook_event(delivery.event_id)
        if facts is None:
            await self._store.webhook_record(delivery.id, DeliveryStatus.FAILED, now, None, "the event is gone", None)
            return
        self.attempts += 1
        result = await post(client, endpoint, message_id(delivery), int(self._clock.now()), payloads.body(facts))
        done = self._clock.now()
        verdict = retry.outcome(result.status)
        if verdict is retry.Outcome.DELIVERED:
            self.delivered += 1
            state.failures = 0
            await self._store.webhook_record(delivery.id, DeliveryStatus.DELIVERED, done, result.status, None, None)
            return
        state.failures += 1
        state.paused_until = trio.current_time() + retry.endpoint_pause(state.failures)
        if verdict is retry.Outcome.GONE:
            reason = "the receiver answered 410 Gone"
            log.warning("webhook %s: %s; endpoint disabled", endpoint.name, reason)
            await self._store.webhook_record(delivery.id, DeliveryStatus.FAILED, done, result.status, result.error,
                                             None)
            await self._store.webhook_set_enabled(endpoint.id, False, reason, done)
            self.refresh()
            return
        at = retry.next_attempt(done, delivery.attempts + 1, delivery.retry_from, endpoint.retry_hours, self._rng,
                                endpoint.retry_first_seconds)
        if at is None:
            log.warning("webhook %s: delivery %d failed for good after %d attempt(s): %s", endpoint.name,
                        delivery.id, delivery.attempts + 1, result.error)
            await self._store.webhook_record(delivery.id, DeliveryStatus.FAILED, done, result.status, result.error,
                                             None)
        else:
            await self._store.webhook_record(delivery.id, DeliveryStatus.PENDING, done, result.status, result.error, at)

    async def test(self, endpoint: Endpoint) -> AttemptResult:
        """Send a ``webhook.test`` message now, outside the outbox; what the receiver said."""
        now = self._clock.now()
        msg_id = f"msg_test_{endpoint.id}_{int(now * 1000)}"
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await post(client, endpoint, msg_id, int(now), payloads.test_body(endpoint.name, now))
