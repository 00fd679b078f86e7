"""Prometheus registry and metric objects of one daemon.

Labels are mailbox, sequence and step ids (plus a small fixed set such as outcome or kind),
never a contact or an address: a label per person would leak data and explode the series.
Counters move where things happen; gauges are read from the running daemon at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.utils import floatToGoString

from dripd.clock import Clock
from dripd.events import Event, EventKind
from dripd.model import EnrollmentStatus
from dripd.store.api import Reports

if TYPE_CHECKING:
    from dripd.health import MailboxHealth
    from dripd.scheduler import Scheduler


@dataclass
class Counters:
    """The engine's running totals of send results, which the status endpoint reads (plain
    numbers, not Prometheus counters)."""

    sent: int = 0
    retried: int = 0
    bounced: int = 0
    uncertain: int = 0
    failed: int = 0


# The kinds the dripd_events counter follows, as spelled in the event stream.
COUNTED_KINDS = frozenset({
    EventKind.DELIVERED, EventKind.OPENED, EventKind.CLICKED, EventKind.REPLIED, EventKind.AUTO_REPLIED,
    EventKind.BOUNCED, EventKind.UNSUBSCRIBED, EventKind.COMPLAINED,
})

CONTENT_TYPE = CONTENT_TYPE_LATEST
_STEP = ("mailbox", "sequence", "step")
# Seconds: a local Maildir write is ~1 ms, a remote SMTP handoff up to tens of seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Seconds late against the planned time: throttling and windows push sends by minutes or hours.
_LATENESS_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)


class SlotSeconds:
    """``dripd_send_slot_seconds_total{mailbox,state}``: how each mailbox's send places spent their
    time (dripd/send_slots.py ``SLOT_STATES``), a counter read from the lanes at scrape time."""

    NAME = "dripd_send_slot_seconds"
    HELP = ("Seconds x send places (sends handed to the transport: on the wire, or queued in a transport "
            "that queues them) per state: on_the_wire; free while the next send "
            "waits for its durable claim (waiting_for_claim) or for its message to be read and built "
            "(waiting_for_prepare); idle (nothing under way)")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.values: dict[tuple[str, str], float] = {}
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.NAME, self.HELP, labels=("mailbox", "state"))
        for (mailbox, state), seconds in sorted(self.values.items()):
            family.add_metric((mailbox, state), seconds)
        yield family


class MailboxHistogram:
    """A histogram with one label, ``mailbox``, observed on every send: a bucket count found by
    bisection and a sum, exposed at scrape time as a Prometheus histogram family. It stands in
    for prometheus_client's ``Histogram``, whose ``observe`` walks the buckets in Python and takes
    a lock twice: two observations per send were 2.2 % of the event loop's thread in the headline
    (py-spy ``--gil``, issue 14). Observed and collected on the event loop's thread only."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"{name}: buckets must be distinct and increasing")
        self.name = name
        self.documentation = documentation
        self.bounds = [float(bound) for bound in buckets]
        # Labelled as prometheus_client labels its own buckets ("1.0", "0.005"); it is untyped.
        self._labels = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        # Per mailbox: one count per bucket (the last is +Inf), then the sum in the list's tail.
        self._counts: dict[str, list[float]] = {}
        registry.register(self)

    def observe(self, mailbox: str, amount: float) -> None:
        counts = self._counts.get(mailbox)
        if counts is None:
            counts = self._counts[mailbox] = [0] * (len(self.bounds) + 1) + [0.0]
        counts[bisect_left(self.bounds, amount)] += 1  # the first bound >= amount: "le"
        counts[-1] += amount

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=("mailbox",))
        for mailbox, counts in self._counts.items():
            cumulative, buckets = 0.0, []
            for label, count in zip(self._labels, counts):
                cumulative += count
                buckets.append((label, cumulative))
            family.add_metric((mailbox,), buckets, counts[-1])
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.sends = Counter("dripd_sends", "Send attempts by outcome (accepted, transient, permanent, "
                             "sender_blocked, uncertain)", (*_STEP, "outcome"), registry=r)
        self.retries = Counter("dripd_retries", "Transient failures scheduled for another attempt", _STEP, registry=r)
        self.events = Counter("dripd_events", "Engagement and delivery events by kind (opened, clicked, replied, "
                              "bounced, unsubscribed, complained, delivered, auto_replied)", (*_STEP, "kind"), registry=r)
        self.flagged = Counter("dripd_flagged_hits", "Tracking hits recorded but flagged as machines "
                               "(prefetchers, link scanners)", (*_STEP, "kind"), registry=r)
        self.send_latency = MailboxHistogram("dripd_send_latency_seconds",
                                             "Time the transport took to hand a message over", _LATENCY_BUCKETS, r)
        self.lateness = MailboxHistogram("dripd_schedule_lateness_seconds", "Send time minus the step's planned time",
                                         _LATENESS_BUCKETS, r)
        self.queue_depth = Gauge("dripd_queue_depth", "Enrollments due now and waiting", ("mailbox",), registry=r)
        self.heap_size = Gauge("dripd_heap_size", "Enrollments held in the scheduler's memory", ("mailbox",), registry=r)
        self.enrollments = Gauge("dripd_enrollments", "Enrollments by status", ("sequence", "status"), registry=r)
        self.tokens = Gauge("dripd_mailbox_tokens", "Send tokens available now", ("mailbox",), registry=r)
        self.sends_today = Gauge("dripd_mailbox_sends_today", "Sends today (mailbox-local day)", ("mailbox",), registry=r)
        self.daily_cap = Gauge("dripd_mailbox_daily_cap", "Daily cap in force today (warm-up included)", ("mailbox",),
                               registry=r)
        self.paused = Gauge("dripd_mailbox_paused", "1 while the mailbox is paused", ("mailbox",), registry=r)
        self.healthy = Gauge("dripd_mailbox_healthy", "0 while the mailbox has a health warning "
                             "(reply/open rate collapse or bounce rate climbing)", ("mailbox",), registry=r)
        self.rate = Gauge("dripd_mailbox_rate", "Rolling engagement rate over the recent health window",
                          ("mailbox", "kind"), registry=r)
        self.uncertain = Gauge("dripd_uncertain_sends", "Ledger rows whose delivery is uncertain", registry=r)
        self.slot_seconds = SlotSeconds(r)
        self._send_counters: dict[tuple[str, int, int, str], Any] = {}

    # -- called where things happen --------------------------------------------------------------

    def sent(self, mailbox: str, sequence: int, step: int, outcome: str) -> None:
        key = (mailbox, sequence, step, outcome)
        child = self._send_counters.get(key)
        if child is None:
            # labels() validates and stringifies on every call: ~3 % of the event loop per send
            # in bench/bench_dispatch.py, so each send counter is looked up once.
            if len(self._send_counters) > 100_000:
                self._send_counters.clear()
            child = self._send_counters[key] = self.sends.labels(mailbox, str(sequence), str(step), outcome)
        child.inc()

    def observe_lateness(self, mailbox: str, seconds: float) -> None:
        self.lateness.observe(mailbox, seconds)

    def observe_send_latency(self, mailbox: str, seconds: float) -> None:
        self.send_latency.observe(mailbox, seconds)

    def retried(self, mailbox: str, sequence: int, step: int) -> None:
        self.retries.labels(mailbox, str(sequence), str(step)).inc()

    def on_event(self, event: Event) -> None:
        """Listener on the event stream: counts each committed event of a counted kind once."""
        if event.kind not in COUNTED_KINDS or event.mailbox_id is None:
            return
        flagged = bool(getattr(event.payload, "flagged", False))
        (self.flagged if flagged else self.events).labels(
            event.mailbox_id, str(event.sequence_id), str(event.step_id), event.kind.value).inc()


class Scrape:
    """The /metrics exposition: counters as they stand, gauges read from the running services."""

    def __init__(self, metrics: Metrics, scheduler: "Scheduler", reports: Reports, health: "MailboxHealth",
                 clock: Clock) -> None:
        self._metrics = metrics
        self._scheduler = scheduler
        self._reports = reports
        self._health = health
        self._clock = clock

    async def refresh(self) -> None:
        metrics = self._metrics
        now = self._clock.now()
        slot_seconds: dict[tuple[str, str], float] = {}
        for lane in self._scheduler.lanes.values():
            m = lane.mailbox_id
            for state, seconds in lane.slots.seconds().items():
                slot_seconds[(m, state)] = seconds
            metrics.queue_depth.labels(m).set(lane.queue_depth())
            metrics.heap_size.labels(m).set(lane.loaded())
            metrics.tokens.labels(m).set(lane.limiter.tokens(now))
            metrics.sends_today.labels(m).set(lane.limiter.sends_today(now))
            metrics.daily_cap.labels(m).set(lane.limiter.daily_cap_on(now))
            metrics.paused.labels(m).set(1 if lane.paused_reason else 0)
        metrics.slot_seconds.values = slot_seconds
        counts = await self._reports.rollups()
        for sequence_id, by_status in counts.items():
            for status in EnrollmentStatus:
                metrics.enrollments.labels(str(sequence_id), status.value).set(by_status.get(status.value, 0))
        metrics.uncertain.set(await self._reports.count_outbox("uncertain"))
        for mailbox_id, health in (await self._health.refresh()).items():
            metrics.healthy.labels(mailbox_id).set(0 if health.status == "warning" else 1)
            recent = health.recent
            if recent is not None:
                for kind, value in (("open", recent.open_rate), ("reply", recent.reply_rate),
                                    ("bounce", recent.bounce_rate)):
                    metrics.rate.labels(mailbox_id, kind).set(value or 0.0)

    async def exposition(self) -> bytes:
        await self.refresh()
        return generate_latest(self._metrics.registry)
