"""The composition root: ``build`` makes every service once and gives each only what it uses.

Nothing here runs anything; ``dripd.daemon`` runs what this builds, and the tests build the
same way. No service holds the whole daemon, and none is patched after construction: a reload
swaps the configuration in ``LiveConfig`` and the transports in their map, nothing else.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from dripd.clock import Clock
from dripd.config import Config, LiveConfig, MailboxConfig
from dripd.control import Control
from dripd.engagement import Engagement, NoTracking
from dripd.endings import EndingWatch
from dripd.engine import Engine
from dripd.events import EventStream
from dripd.health import MailboxHealth
from dripd.hookspecs import PluginContext, Transport
from dripd.inbox.service import Inbox
from dripd.metrics import Metrics, Scrape
from dripd.plugins import Plugins
from dripd.reactions import Reactions
from dripd.safeguards import Safeguards
from dripd.scheduler import Scheduler
from dripd.store.backend import Backend
from dripd.webhooks.dispatcher import Dispatcher
from dripd.wire_journal import WireJournal

if TYPE_CHECKING:
    from dripd.cluster.node import ClusterNode

log = logging.getLogger("dripd")


class StoreState:
    """PluginState backed by the store's plugin_state table, namespaced per plugin and mailbox."""

    def __init__(self, store: Backend, namespace: str) -> None:
        self._store = store
        self._namespace = namespace

    async def get(self, key: str) -> str | None:
        return await self._store.plugin_state_get(f"{self._namespace}:{key}")

    async def set(self, key: str, value: str) -> None:
        await self._store.plugin_state_set(f"{self._namespace}:{key}", value)


def plugin_context(store: Backend, clock: Clock, plugin: str, mailbox_id: str) -> PluginContext:
    return PluginContext(now=clock.now, state=StoreState(store, f"{plugin}:{mailbox_id}"))


def engagement_for(config: Config) -> Engagement:
    """Signed links and the open pixel when ``[tracking]`` has a listener and a public URL."""
    settings = config.tracking
    if not settings.listen or not settings.base_url:
        return NoTracking()
    from dripd.tracking.engagement import Tracking  # the tracking room loads only when used
    from dripd.tracking.tokens import Signer, load_secret

    return Tracking(settings.base_url, Signer(load_secret(settings.secret_file)))


@dataclass
class RunState:
    """What the running daemon learns as it goes, for the status endpoint."""

    started_at: float
    uncertain_at_start: int = 0
    stop_requested: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True)
class Services:
    """Everything ``build`` made. The daemon runs them; the API and console read them."""

    live: LiveConfig
    clock: Clock
    store: Backend
    events: EventStream
    metrics: Metrics
    scrape: Scrape
    scheduler: Scheduler
    transports: dict[str, Transport]
    safeguards: Safeguards
    engagement: Engagement
    engine: Engine
    reactions: Reactions
    control: Control
    health: MailboxHealth
    plugins: Plugins
    state: RunState
    webhooks: Dispatcher
    inbox: Inbox
    cluster: "ClusterNode | None" = None  # several nodes on PostgreSQL; None: one node holds every mailbox

    @property
    def config(self) -> Config:
        """The configuration in force now (a reload swaps it)."""
        return self.live.current

    @property
    def started_at(self) -> float:
        return self.state.started_at

    @property
    def uncertain_at_start(self) -> int:
        return self.state.uncertain_at_start

    @property
    def stop_requested(self) -> trio.Event:
        """Set when a graceful stop begins (listeners shut down on it)."""
        return self.state.stop_requested

    def build_transport(self, mailbox: MailboxConfig) -> Transport:
        return self.plugins.build_transport(
            mailbox, plugin_context(self.store, self.clock, mailbox.transport, mailbox.id))


def build(config: Config, plugins: Plugins, store: Backend, events: EventStream, clock: Clock, *,
          rng: random.Random | None = None, cluster: "ClusterNode | None" = None) -> Services:
    """Every service of one daemon over an opened ``store`` that publishes to ``events``."""
    live = LiveConfig(config)
    metrics = Metrics()
    events.listen(metrics.on_event)
    scheduler = Scheduler()
    transports: dict[str, Transport] = {}
    for mailbox in config.mailboxes:
        transports[mailbox.id] = plugins.build_transport(
            mailbox, plugin_context(store, clock, mailbox.transport, mailbox.id))
    safeguards = Safeguards(live, store, store, store, scheduler, clock)
    engagement = engagement_for(config)
    endings = EndingWatch()
    events.listen(endings.on_event)  # claimed sends hear of endings committed after their claim
    engine = Engine(live, store, transports, scheduler, clock, metrics=metrics, engagement=engagement,
                    safeguards=safeguards, extra_headers=plugins.message_headers, rng=rng,
                    wire_journal=None if cluster else WireJournal(config.daemon.state_dir / "wire.journal"),
                    endings=endings)
    health = MailboxHealth(live, store, clock)
    webhooks = Dispatcher(live, store, clock)
    events.listen(webhooks.on_event)  # wakes the dispatcher; the deliveries are in the store already
    inbox = Inbox(store, clock, live, transports)
    return Services(
        live=live, clock=clock, store=store, events=events, metrics=metrics,
        scrape=Scrape(metrics, scheduler, store, health, clock), scheduler=scheduler, transports=transports,
        safeguards=safeguards, engagement=engagement, engine=engine,
        reactions=Reactions(store, store, store, scheduler, clock, safeguards, inbox),
        control=Control(live, store, scheduler, clock), health=health, plugins=plugins,
        state=RunState(started_at=clock.now()), webhooks=webhooks, inbox=inbox, cluster=cluster,
    )
