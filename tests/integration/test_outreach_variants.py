"""A/B variants through the daemon in simulated time (the in-process daemon on the real engine,
store and scheduler; the scripted transport records what went out): each contact gets the
variant its preview shows, a retry after an edit keeps it, the ledger keeps what was sent, the
stats count per variant, and the auto-winner takes the remaining traffic."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dripd.api.preview import preview
from dripd.api.routes_status import mailbox_json
from dripd.events import EventKind, MailEvent
from dripd.hookspecs import SendOutcome
from dripd.model import Action
from dripd.steps import step_from_fields
from tests.integration.simulated import START, daemon_with, mailbox, minutes, people, sequence, sleep_until

AB = [{"type": "email", "subject": "Hello {{firstName|there}}", "body": "<p>Version A</p>",
       "variants": [{"name": "A"}, {"name": "B", "subject": "Quick question, {{firstName|there}}",
                                    "body": "<p>Version B</p>"}]}]


def _subject(data: bytes) -> str:
    return str(email.message_from_bytes(data, policy=email.policy.default)["Subject"])


async def test_each_contact_gets_its_previewed_variant_and_the_ledger_keeps_it(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    async with daemon_with(tmp_path, retry_base_seconds=60) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon, AB)
        await daemon.control.enroll(seq.id, people(20))
        contacts = [await daemon.store.get_contact(i) for i in range(1, 21)]
        previews = {c.email: await preview(daemon.services, seq.id, 0, c) for c in contacts}
        retried = next(address for address, p in previews.items() if p["variant"] == "B")
        transport.script[retried] = [SendOutcome.TRANSIENT, SendOutcome.ACCEPTED]
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(seconds=30))
        # Before the retry: B is switched off and reworded. The contact pinned to B keeps B (its
        # first attempt chose it), with the step as it stands now.
        edited = {**AB[0], "variants": [{"name": "A"}, {"name": "B", "weight": 0, "subject": "Reworded B",
                                                         "body": "<p>Version B2</p>"}]}
        await daemon.control.replace_step(seq.id, 0, step_from_fields(edited))
        await sleep_until(daemon, START + dt.timedelta(hours=1))
        sent = {m.to_address: m for _, m in transport.delivered}
        history = await daemon.store.contact_history(seq.id, contacts.index(
            next(c for c in contacts if c.email == retried)) + 1)
        facts = await daemon.store.sequence_message_facts(seq.id)
    assert len(sent) == 20
    for address, message in sent.items():
        if address != retried:
            assert _subject(message.data) == previews[address]["subject"]
    assert {p["variant"] for p in previews.values()} == {"A", "B"}  # 20 contacts see both
    assert _subject(sent[retried].data) == "Reworded B"  # its pinned variant, as edited
    [row] = history["messages"]
    assert (row["variant"], row["subject"], row["attempts"]) == ("B", "Reworded B", 2)
    assert "Version B2" in row["body"] and "Version B2" in row["text_body"]
    by_variant = {f.variant for f in facts}
    assert by_variant == {"A", "B"}


async def test_the_auto_winner_takes_the_remaining_traffic(tmp_path: Path, autojump_clock: Any) -> None:
    steps = [{**AB[0], "autoWinner": {"after": 4, "metric": "replied"}}]
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon, steps, auto_complete=False)
        await daemon.control.enroll(seq.id, people(16))
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        first = [m for _, m in transport.delivered]
        rows = {f.outbox_id: f.variant for f in await daemon.store.sequence_message_facts(seq.id)}
        counts = {name: sum(1 for v in rows.values() if v == name) for name in ("A", "B")}
        assert min(counts.values()) >= 4, counts  # 16 contacts: each variant has its sample
        # Every B recipient replies, no A recipient does.
        for message in first:
            if "Quick question" in _subject(message.data):
                await daemon.reactions.apply(MailEvent(EventKind.REPLIED, "m", daemon.clock.now(),
                                                       sender=message.to_address, references=(message.message_id,)))
        await sleep_until(daemon, START + dt.timedelta(minutes=10))  # past the minute the tallies are kept
        await daemon.control.enroll(seq.id, people(12, prefix="late"))
        late = await daemon.store.get_contact(17)
        previewed = await preview(daemon.services, seq.id, 0, late)
        await sleep_until(daemon, START + dt.timedelta(minutes=20))
        later = [m for _, m in transport.delivered][len(first):]
        stats = await daemon.services.store.sequence_message_facts(seq.id)
    assert previewed["variant"] == "B"
    assert len(later) == 12 and all("Quick question" in _subject(m.data) for m in later)
    assert sum(1 for f in stats if f.variant == "B") == counts["B"] + 12


async def test_the_new_contact_cap_holds_first_emails_while_follow_ups_flow(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    steps = [{"type": "email", "subject": "One", "body": "<p>one</p>"}, {"type": "wait", "waitHours": 1},
             {"type": "email", "subject": "", "body": "<p>two</p>"}]
    async with daemon_with(tmp_path, mailbox(daily_new_cap=3)) as (daemon, plugin):
        seq = await sequence(daemon, steps)
        await daemon.control.enroll(seq.id, people(7))
        await daemon.control.transition(seq.id, Action.START)  # Monday 09:00 UTC
        await sleep_until(daemon, START + dt.timedelta(hours=6))
        box = daemon.services.config.mailbox("m")
        assert box is not None
        status = mailbox_json(daemon.services, box)
        await sleep_until(daemon, START + dt.timedelta(days=3))
    sent = [(t, _subject(m.data), m.to_address) for t, m in plugin.transports["m"].delivered]
    firsts = [(t, to) for t, subject, to in sent if subject == "One"]
    follow_ups = [t for t, subject, _ in sent if subject.startswith("Re:")]
    days = [dt.datetime.fromtimestamp(t, dt.timezone.utc).date().isoformat() for t, _ in firsts]
    assert days == ["2026-12-07"] * 3 + ["2026-12-08"] * 3 + ["2026-12-09"]
    # Day one's three follow-ups went out an hour later, with four first emails still waiting.
    assert minutes(follow_ups[:3]) == [60.0, 60.0, 60.0]
    assert len(follow_ups) == 7
    assert (status["dailyNewCap"], status["newToday"], status["sendsToday"]) == (3, 3, 6)


async def test_the_mailbox_days_off_hold_in_every_sequence(tmp_path: Path, autojump_clock: Any) -> None:
    christmas_eve = dt.datetime(2026, 12, 24, 8, 0, tzinfo=dt.timezone.utc)  # a Thursday
    box = mailbox(holidays=["DE"], blackout_dates=[dt.date(2026, 12, 24)])
    async with daemon_with(tmp_path, box, start=christmas_eve) as (daemon, plugin):
        seq = await sequence(daemon, [{"type": "email", "subject": "Hi", "body": "<p>x</p>"}],
                             timezone="Europe/Berlin", start_hour=9, end_hour=17, weekdays_only=True)
        await daemon.control.enroll(seq.id, people(1))
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, christmas_eve + dt.timedelta(days=10))
    [(t, _)] = plugin.transports["m"].delivered
    # The mailbox's blackout (24th) and German holidays (25th, 26th), then Sunday: Monday the 28th.
    assert dt.datetime.fromtimestamp(t, ZoneInfo("Europe/Berlin")).replace(tzinfo=None) == dt.datetime(2026, 12, 28, 9)
