"""Cold-outreach rules through the daemon in simulated time (the in-process daemon on the real
engine, store and scheduler; the scripted transport plugin records what went out and when):
the contact's own window zone, holidays and blackout days, spintax that matches the preview,
out-of-office resumes, stop-on-company-reply that ignores freemail, and the mailbox bounce shield.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dripd.events import EventKind, MailEvent
from dripd.hookspecs import SendOutcome
from dripd.model import Action
from dripd.store import ContactInput
from tests.integration.simulated import START, daemon_with, mailbox, people, sequence, sleep_until, status_of

ONE = [{"type": "email", "subject": "{Hi|Hello|Hey} {{firstName|there}}", "body": "<p>{Quick|Short} note</p>"}]
TWO = [*ONE, {"type": "wait", "waitDays": 3}, {"type": "email", "subject": "", "body": "<p>again</p>"}]


def subject_of(data: bytes) -> str:
    return str(email.message_from_bytes(data, policy=email.policy.default)["Subject"])


async def test_each_contact_gets_the_window_of_its_own_zone(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, ONE, timezone="Europe/Berlin", window_zone="contact", start_hour=9, end_hour=17)
        zones = {"la@example.org": "America/Los_Angeles", "tokyo@example.org": "Asia/Tokyo",
                 "none@example.org": None}
        contacts = [ContactInput(address, fields={"timezone": zone} if zone else {}) for address, zone in zones.items()]
        await daemon.control.enroll(seq.id, contacts)
        await daemon.control.transition(seq.id, Action.START)  # Monday 09:00 UTC
        await sleep_until(daemon, START + dt.timedelta(days=1))
    sent = {message.to_address: t for t, message in plugin.transports["m"].delivered}
    local = {address: dt.datetime.fromtimestamp(sent[address], ZoneInfo(zones[address] or "Europe/Berlin"))
             for address in zones}
    # Berlin is open at 10:00 local at once; LA opens at 09:00 local (17:00 UTC); Tokyo (18:00 now)
    # at 09:00 the next local morning.
    assert local["none@example.org"].replace(tzinfo=None) == dt.datetime(2026, 12, 7, 10, 0)
    assert local["la@example.org"].replace(tzinfo=None) == dt.datetime(2026, 12, 7, 9, 0)
    assert local["tokyo@example.org"].replace(tzinfo=None) == dt.datetime(2026, 12, 8, 9, 0)


async def test_holidays_and_blackout_dates_are_skipped(tmp_path: Path, autojump_clock: Any) -> None:
    christmas_eve = dt.datetime(2026, 12, 24, 8, 0, tzinfo=dt.timezone.utc)  # a Thursday
    async with daemon_with(tmp_path, start=christmas_eve) as (daemon, plugin):
        seq = await sequence(daemon, ONE, timezone="Europe/Berlin", start_hour=9, end_hour=17, weekdays_only=True,
                             holidays=("DE",), blackout_dates=("2026-12-24", "2026-12-28"))
        await daemon.control.enroll(seq.id, people(1))
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, christmas_eve + dt.timedelta(days=10))
    [(t, _)] = plugin.transports["m"].delivered
    # 24th blackout, 25th and 26th German holidays (26th a Saturday), 27th Sunday, 28th blackout.
    assert dt.datetime.fromtimestamp(t, ZoneInfo("Europe/Berlin")).replace(tzinfo=None) == dt.datetime(2026, 12, 29, 9)


async def test_spintax_is_pinned_per_contact_and_matches_the_preview(tmp_path: Path, autojump_clock: Any) -> None:
    from dripd.api.preview import preview  # the API's preview, called on the same services

    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, ONE)
        await daemon.control.enroll(seq.id, people(12))
        contacts = {c.email: c for c in [await daemon.store.get_contact(i) for i in range(1, 13)]}
        previews = {address: (await preview(daemon.services, seq.id, 0, contact))["subject"]
                    for address, contact in contacts.items()}
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(hours=1))
    sent = {message.to_address: subject_of(message.data) for _, message in plugin.transports["m"].delivered}
    assert sent == previews
    assert {s.split()[0] for s in sent.values()} == {"Hi", "Hello", "Hey"}  # 12 contacts see all three


async def test_out_of_office_resumes_the_day_after_the_stated_return(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, TWO, timezone="Europe/Berlin")  # onAutoReply defaults to "delay"
        assert seq.settings.on_auto_reply == "delay"
        await daemon.control.enroll(seq.id, people(1))
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        [(_, first)] = plugin.transports["m"].delivered
        await daemon.reactions.apply(MailEvent(EventKind.AUTO_REPLIED, "m", daemon.clock.now(),
                                               sender="p000@example.org", references=(first.message_id,),
                                               return_date=dt.date(2026, 12, 21)))
        await sleep_until(daemon, START + dt.timedelta(days=30))
        history = await daemon.store.contact_history(seq.id, 1)
    second = plugin.transports["m"].delivered[1][0]
    # Back on Monday the 21st: the follow-up waits for the 22nd (Berlin midnight), not the 10th.
    assert dt.datetime.fromtimestamp(second, ZoneInfo("Europe/Berlin")).replace(tzinfo=None) == dt.datetime(2026, 12, 22)
    [auto] = [e for e in history["events"] if e["kind"] == "auto_replied"]
    assert auto["data"]["return_date"] == "2026-12-21"
    assert auto["data"]["resume_at"] == "2026-12-21T23:00:00Z"  # shown in the contact's log


async def test_a_freemail_reply_stops_nobody_else_a_company_reply_stops_colleagues(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, TWO, stop_on_domain_reply=True)
        addresses = ["ann@gmail.com", "bob@gmail.com", "cy@acme.io", "di@acme.io"]
        await daemon.control.enroll(seq.id, [ContactInput(a) for a in addresses])
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        sent = {m.to_address: m.message_id for _, m in plugin.transports["m"].delivered}
        for replier in ("ann@gmail.com", "cy@acme.io"):
            await daemon.reactions.apply(MailEvent(EventKind.REPLIED, "m", daemon.clock.now(), sender=replier,
                                                   references=(sent[replier],)))
        await sleep_until(daemon, START + dt.timedelta(minutes=10))
        statuses = dict(zip(addresses, await status_of(daemon, seq.id)))
    assert statuses == {"ann@gmail.com": "replied", "bob@gmail.com": "active",
                        "cy@acme.io": "replied", "di@acme.io": "replied"}


async def test_the_bounce_shield_pauses_then_rests_a_week_after_a_manual_resume(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    box = mailbox(bounce_pause_threshold=0.02)  # the defaults: 20 sends, 28 days, 7 days' rest
    async with daemon_with(tmp_path, box) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon, ONE, bounce_pause_threshold=1.0, auto_complete=False)  # its own guard stays out
        transport.script["p049@example.org"] = [SendOutcome.PERMANENT]  # 1 hard in 50 sends: 2 %
        await daemon.control.enroll(seq.id, people(50))
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(hours=1))
        reason = await daemon.store.mailbox_paused("m")
        assert reason is not None and "1 hard bounces in the last 50 sends (2.0% >= 2.0%)" in reason
        await daemon.control.resume_mailbox("m")
        # Within the week after the resume a new hard bounce (2 in 60: 3.3 %) does not pause it...
        transport.script["q009@example.org"] = [SendOutcome.PERMANENT]
        await daemon.control.enroll(seq.id, people(10, "q"))
        await sleep_until(daemon, START + dt.timedelta(days=2))
        assert await daemon.store.mailbox_paused("m") is None
        # ...after it, the next one does (3 in 70 over the trailing 28 days).
        transport.script["r009@example.org"] = [SendOutcome.PERMANENT]
        await sleep_until(daemon, START + dt.timedelta(days=8))
        await daemon.control.enroll(seq.id, people(10, "r"))
        await sleep_until(daemon, START + dt.timedelta(days=8, hours=1))
        again = await daemon.store.mailbox_paused("m")
    assert again is not None and "3 hard bounces in the last 70 sends" in again
    assert len(transport.delivered) == 67  # 70 sends, 3 of them refused


async def test_rotation_spreads_new_contacts_and_keeps_each_thread_on_its_mailbox(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    boxes = [mailbox("m1", daily_cap=10), mailbox("m2", daily_cap=10), mailbox("m3", daily_cap=10)]
    async with daemon_with(tmp_path, *boxes) as (daemon, plugin):
        await daemon.control.pause_mailbox("m3", "warming up by hand")  # paused: takes no new contacts
        seq = await sequence(daemon, TWO, "m1", mailbox_ids=("m1", "m2", "m3"), auto_complete=False)
        other = await sequence(daemon, ONE, "m1", name="other", auto_complete=False)  # shares m1's caps
        await daemon.control.enroll(other.id, people(4, "o"))
        await daemon.control.transition(other.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(minutes=1))
        for person in people(12):  # one by one, as sign-ups arrive
            await daemon.control.enroll(seq.id, [person])
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(days=6))
        facts = await daemon.store.sequence_message_facts(seq.id)
    sent = {box: [(t, m) for t, m in plugin.transports[box].delivered] for box in ("m1", "m2", "m3")}
    assert sent["m3"] == []
    first_from = {m.to_address: box for box in ("m1", "m2") for _, m in sent[box] if not subject_of(m.data).startswith("Re:")}
    mine = {a: b for a, b in first_from.items() if a.startswith("p")}
    # m1 had sent 4 for the other sequence, so it had 6 left and m2 10: m2 takes more.
    assert sorted(mine.values()).count("m2") == 8 and sorted(mine.values()).count("m1") == 4
    for box in ("m1", "m2"):
        for _, message in sent[box]:
            if subject_of(message.data).startswith("Re:"):
                assert first_from[message.to_address] == box  # the follow-up comes from the first email's mailbox
        days: dict[dt.date, int] = {}
        for t, _ in sent[box]:
            day = dt.datetime.fromtimestamp(t, dt.timezone.utc).date()
            days[day] = days.get(day, 0) + 1
        assert max(days.values()) <= 10  # the daily cap holds across both sequences
    assert {f.mailbox_id for f in facts} == {"m1", "m2"} and len(facts) == 24
