"""Analytics in simulated time with a scripted transport: the per-step funnel of a scenario
equals the counts worked out by hand (refusals, async bounces, replies, DSNs, opens, clicks,
machine hits, unsubscribes, the bounce window), the metrics agree, and a mailbox whose
replies collapse and bounces climb gets a health warning (API, metric, log)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dripd import events
from dripd.api.routes_stats import contact_log, mailbox_stats, sequence_stats
from dripd.hookspecs import EventKind, MailEvent, SendOutcome
from dripd.model import Action
from dripd.store import SentRef
from dripd.tracking.app import TrackingApp
from dripd.tracking.tokens import Signer
from tests.integration.simulated import START, daemon_with, mailbox, people, sequence, sleep_until

STEPS: list[dict[str, Any]] = [
    {"type": "email", "subject": "A", "body": "<p>a</p>"},
    {"type": "wait", "waitHours": 1},
    {"type": "email", "subject": "B", "body": "<p>b</p>", "thread": False},
]
COUNTED = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed", "refused", "flaggedOpens")


def sent_ids(plugin: Any, subject: str) -> dict[str, str]:
    """Recipient -> Message-ID of the message with this subject."""
    return {m.to_address: m.message_id for _, m in plugin.transports["m"].delivered
            if f"Subject: {subject}\r\n".encode() in m.data}


async def hit(daemon: Any, message_id: str, kind: str, *, flagged: bool = False) -> None:
    message = await daemon.store.tracked_message(message_id)
    ref = SentRef(message.outbox_id, message.enrollment_id, message.step_id, message.sequence_id,
                  message.contact_email, message.enrollment_status)
    await daemon.store.record_signal(ref, EventKind(kind), daemon.clock.now(), events.Engagement(agent="test", flagged=flagged))


def counts(step: dict[str, Any]) -> dict[str, int]:
    return {k: step[k] for k in COUNTED}


async def test_funnel_of_a_scripted_scenario_equals_the_hand_count(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        plugin.transports["m"].script["p000@example.org"] = [SendOutcome.PERMANENT]
        seq = await sequence(daemon, STEPS, track_opens=True, track_clicks=True)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(6))
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        a = sent_ids(plugin, "A")
        assert sorted(a) == [f"p00{i}@example.org" for i in range(1, 6)]  # p000 was refused (5xx)
        # p001 replies to A; p002 opens and clicks A; p003's A is only fetched by a prefetcher;
        # p004's A gets a positive DSN; p005 does nothing.
        await daemon.reactions.apply(MailEvent(EventKind.REPLIED, "m", daemon.clock.now(), sender="p001@example.org",
                                               references=(a["p001@example.org"],)))
        await hit(daemon, a["p002@example.org"], "opened")
        await hit(daemon, a["p002@example.org"], "clicked")
        await hit(daemon, a["p003@example.org"], "opened", flagged=True)
        await daemon.reactions.apply(MailEvent(EventKind.DELIVERED, "m", daemon.clock.now(),
                                               references=(a["p004@example.org"],), status="2.0.0"))
        await sleep_until(daemon, START + dt.timedelta(hours=1, minutes=5))
        b = sent_ids(plugin, "B")
        assert sorted(b) == [f"p00{i}@example.org" for i in range(2, 6)]  # the replier was stopped
        # B: p002's bounces later (DSN); p005 unsubscribes in one click.
        await daemon.reactions.apply(MailEvent(EventKind.BOUNCED, "m", daemon.clock.now(), bounce_class="hard",
                                               references=(b["p002@example.org"],), recipients=("p002@example.org",),
                                               status="5.1.1", detail="user unknown"))
        tracking = TrackingApp(daemon.services.live, daemon.store, daemon.clock, Signer(b"k" * 32))
        unsubscribed = await daemon.store.tracked_message(b["p005@example.org"])
        assert unsubscribed is not None
        await tracking.unsubscribe_message(unsubscribed, "one-click", "ua")
        await sleep_until(daemon, START + dt.timedelta(hours=2))

        stats = await sequence_stats(seq.id, daemon)
        step_a, step_b = stats["steps"]
        # By hand, A: 6 attempted, 5 accepted, 1 refused (a bounce); within the 24 h bounce
        # window only p004's DSN makes a delivery; 1 open + 1 click (p002), 1 machine-only open.
        assert counts(step_a) == {"sent": 5, "delivered": 1, "opened": 1, "clicked": 1, "replied": 1, "bounced": 1,
                                  "unsubscribed": 0, "refused": 1, "flaggedOpens": 1}
        assert step_a["rates"] == {"delivered": 0.2, "opened": 0.2, "clicked": 0.2, "replied": 0.2,
                                   "unsubscribed": 0.0, "bounced": round(1 / 6, 4)}
        assert counts(step_b) == {"sent": 4, "delivered": 0, "opened": 0, "clicked": 0, "replied": 0, "bounced": 1,
                                  "unsubscribed": 1, "refused": 0, "flaggedOpens": 0}
        assert stats["total"]["sent"] == 9 and stats["total"]["bounced"] == 2

        # Past the bounce window every accepted, unbounced message counts as delivered.
        await sleep_until(daemon, START + dt.timedelta(days=2))
        stats = await sequence_stats(seq.id, daemon)
        assert [s["delivered"] for s in stats["steps"]] == [5, 3]

        # The per-contact log names the step that drove the reply.
        replier = await daemon.store.find_contact("p001@example.org")
        assert replier is not None
        log = await contact_log(seq.id, replier.id, daemon)
        assert log["repliedTo"]["stepIndex"] == 0 and log["repliedTo"]["messageId"] == a["p001@example.org"]
        assert [e["kind"] for e in log["events"]] == ["enrolled", "sent", "replied"]

        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families((await daemon.services.scrape.exposition()).decode())
                   for s in f.samples}
        ids = [s.id for s in (await daemon.store.get_sequence(seq.id))[1] if s.type.value == "email"]

        def m(name: str, step: int, **labels: str) -> float:
            key = tuple(sorted({"mailbox": "m", "sequence": str(seq.id), "step": str(step), **labels}.items()))
            return samples.get((name, key), 0.0)

        assert m("dripd_sends_total", ids[0], outcome="accepted") == 5
        assert m("dripd_sends_total", ids[0], outcome="permanent") == 1
        assert m("dripd_sends_total", ids[1], outcome="accepted") == 4
        assert m("dripd_events_total", ids[0], kind="bounced") == 1
        assert m("dripd_events_total", ids[1], kind="bounced") == 1
        assert m("dripd_events_total", ids[0], kind="replied") == 1
        assert m("dripd_events_total", ids[0], kind="delivered") == 1
        assert m("dripd_events_total", ids[1], kind="unsubscribed") == 1
        assert samples[("dripd_schedule_lateness_seconds_count", (("mailbox", "m"),))] == 10
        assert samples[("dripd_send_latency_seconds_count", (("mailbox", "m"),))] == 10


async def test_mailbox_health_warns_when_replies_collapse_and_bounces_climb(
        tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    # The bounce guards (the mailbox's 2 %, the sequence's 5 %) would pause the sends at the third
    # bounce; this test is about the health warning, which must show whether or not they act.
    async with daemon_with(tmp_path, mailbox(bounce_pause_threshold=1.0)) as (daemon, plugin):
        seq = await sequence(daemon, STEPS[:1], auto_complete=False, bounce_pause_threshold=1.0)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(30, "old"))
        await sleep_until(daemon, START + dt.timedelta(hours=1))
        for address, message_id in list(sent_ids(plugin, "A").items())[:9]:  # a 30% reply rate
            await daemon.reactions.apply(MailEvent(EventKind.REPLIED, "m", daemon.clock.now(), sender=address,
                                                   references=(message_id,)))
        assert (await daemon.health.refresh(max_age=0))["m"].status == "ok"  # no baseline yet: nothing to compare
        await sleep_until(daemon, START + dt.timedelta(days=10))
        for i in range(3):
            plugin.transports["m"].script[f"new{i:03d}@example.org"] = [SendOutcome.PERMANENT]
        await daemon.control.enroll(seq.id, people(30, "new"))
        await sleep_until(daemon, START + dt.timedelta(days=10, hours=1))
        with caplog.at_level(logging.WARNING, logger="dripd.health"):
            result = (await daemon.health.refresh(max_age=0))["m"]
        # Recent week: 30 attempted, 27 accepted, 0 replies, 3 bounces; baseline: 30 sends, 9 replies.
        assert result.status == "warning" and result.recent is not None and result.baseline is not None
        assert result.recent.as_json() == {"sends": 30, "openRate": 0.0, "replyRate": 0.0, "bounceRate": 0.1}
        assert result.baseline.as_json() == {"sends": 30, "openRate": 0.0, "replyRate": 0.3, "bounceRate": 0.0}
        assert [w.split(":")[0] for w in result.warnings] == ["reply rate collapsed", "bounce rate climbing"]
        assert sum("mailbox m health" in r.getMessage() for r in caplog.records) == 2
        api = await mailbox_stats("m", daemon)
        assert api["health"]["status"] == "warning" and len(api["health"]["warnings"]) == 2
        text = (await daemon.services.scrape.exposition()).decode()
        assert 'dripd_mailbox_healthy{mailbox="m"} 0.0' in text
        assert 'dripd_mailbox_rate{kind="bounce",mailbox="m"} 0.1' in text
