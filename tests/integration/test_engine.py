"""The engine end to end in one process, in simulated time: caps, priorities, retries,
bounces, pause/resume, step edits, re-enrollment and crash recovery."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import trio

from dripd.errors import AlreadyEnrolled, Conflict, InvalidTransition, ReadOnly
from dripd.hookspecs import SendOutcome, hookimpl
from dripd.model import Action
from dripd.steps import step_from_fields
from dripd.store import Claim
from tests.conftest import make_config, running_daemon
from tests.integration.simulated import (
    START,
    TWO_STEPS,
    UTC,
    daemon_with,
    mailbox,
    minutes,
    people,
    sequence,
    sleep_until,
    status_of,
)
from tests.scripted_transport import ScriptedPlugin


async def test_enrolling_into_a_draft_waits_for_start_then_sends_at_once(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, auto_complete=True)
        await daemon.control.enroll(seq.id, people(2))
        await sleep_until(daemon, START + dt.timedelta(hours=3))
        assert plugin.transports["m"].delivered == []
        await daemon.control.transition(seq.id, Action.START)
        await sleep_until(daemon, START + dt.timedelta(hours=5))
        sent = plugin.transports["m"].delivered
        assert minutes([t for t, _ in sent]) == [180, 180, 240, 240]
        assert await status_of(daemon, seq.id) == ["completed", "completed"]
        assert (await daemon.store.get_sequence(seq.id))[0].status.value == "completed"


async def test_hourly_cap_spaces_sends_and_holds_exactly_at_sixty_minutes(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path, mailbox(hourly_cap=4, burst=4)) as (daemon, plugin):
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(10))
        await sleep_until(daemon, START + dt.timedelta(hours=4))
        stamps = [t for t, _ in plugin.transports["m"].delivered]
        # Burst 4 at once, then the bucket refills at 4/h (one per 15 min) but the rolling
        # hour allows the 5th send only at exactly +60 min, not a second earlier.
        assert minutes(stamps) == [0, 0, 0, 0, 60, 60, 60, 60, 120, 120]
        for start in stamps:
            assert sum(1 for s in stamps if start <= s < start + 3600) <= 4


async def test_a_mailbox_is_sending_while_a_send_is_in_progress_not_while_it_waits_on_its_caps(
    tmp_path: Path, autojump_clock: Any
) -> None:
    # The API admits fewer requests while a mailbox is sending (dripd/api/admission.py); a
    # mailbox with a backlog held back by its caps is idle between sends and must not count.
    async with daemon_with(tmp_path, mailbox(hourly_cap=1, burst=1)) as (daemon, plugin):
        transport = plugin.transports["m"]
        transport.hold = trio.Event()
        assert not daemon.scheduler.sending()
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(3))
        await sleep_until(daemon, START + dt.timedelta(minutes=1))
        assert daemon.scheduler.sending() and transport.attempts == []  # the first send is held
        transport.hold.set()
        await sleep_until(daemon, START + dt.timedelta(minutes=2))
        assert len(transport.delivered) == 1
        assert not daemon.scheduler.sending()  # two wait for tokens: nothing in progress


class HookPlugin:
    """A plugin using the two per-send hooks: extra headers and engine events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def dripd_message_headers(self, mailbox_id: str, sequence_id: int, step_id: int) -> list[tuple[str, str]]:
        return [("X-Campaign", f"{mailbox_id}-{sequence_id}-{step_id}")]

    @hookimpl
    def dripd_event(self, event: Any) -> None:
        self.events.append(dict(event))


async def test_plugins_add_headers_and_observe_sends(tmp_path: Path, autojump_clock: Any) -> None:
    scripted, hooks = ScriptedPlugin(), HookPlugin()
    config, plugins = make_config(tmp_path, [mailbox()], extra_plugins=(scripted, hooks))
    async with running_daemon(config, plugins, START) as daemon:
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(2))
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        step_id = (await daemon.store.get_sequence(seq.id))[1][0].id
        messages = [message for _, message in scripted.transports["m"].delivered]
        assert len(messages) == 2
        assert all(f"X-Campaign: m-{seq.id}-{step_id}".encode() in m.data for m in messages)
        sent = [event for event in hooks.events if event["kind"] == "sent"]
        assert len(sent) == 2
        assert {key: sent[0][key] for key in ("mailbox_id", "sequence_id", "step_id")} == {
            "mailbox_id": "m", "sequence_id": seq.id, "step_id": step_id}


async def test_daily_cap_and_warmup_ramp(tmp_path: Path, autojump_clock: Any) -> None:
    warm = mailbox(daily_cap=50, warmup=[[7, 3]], warmup_start=dt.date(2026, 12, 7), timezone="UTC")
    async with daemon_with(tmp_path, warm) as (daemon, plugin):
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(8))
        await sleep_until(daemon, START + dt.timedelta(days=2, hours=12))
        days = [dt.datetime.fromtimestamp(t, UTC).day for t, _ in plugin.transports["m"].delivered]
        assert days == [7, 7, 7, 8, 8, 8, 9, 9]  # 3 a day in warm-up week 1; new day at midnight


async def test_follow_ups_go_first_then_oldest_first_when_caps_are_tight(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path, mailbox(hourly_cap=6, burst=1)) as (daemon, plugin):
        seq = await sequence(daemon, [TWO_STEPS[0], {"type": "wait", "waitMinutes": 1}, TWO_STEPS[2]])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(3, "a"))
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        await daemon.control.enroll(seq.id, people(3, "b"))  # newer first emails
        await sleep_until(daemon, START + dt.timedelta(hours=3))
        order = [(m.to_address[:4], "One" in m.data.decode()) for _, m in plugin.transports["m"].delivered]
        # One send per 10 minutes. a000 goes at 0; then the waiting follow-up of a000 beats the
        # older first emails of a001/a002 only once it is due (after 1 min)...
        assert order == [
            ("a000", True), ("a000", False), ("a001", True), ("a001", False), ("a002", True), ("a002", False),
            ("b000", True), ("b000", False), ("b001", True), ("b001", False), ("b002", True), ("b002", False),
        ]


async def test_transient_failures_retry_with_backoff_then_soft_bounce(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path, retry_base_seconds=60, retry_max_attempts=3) as (daemon, plugin):
        transport = plugin.transports["m"]
        transport.script["p000@example.org"] = [SendOutcome.TRANSIENT, SendOutcome.ACCEPTED]
        transport.script["p001@example.org"] = [SendOutcome.TRANSIENT] * 5
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(2))
        await sleep_until(daemon, START + dt.timedelta(hours=2))
        tries: dict[str, list[float]] = {}
        for t, to in transport.attempts:
            tries.setdefault(to, []).append((t - START.timestamp()) / 60)
        assert len(tries["p000@example.org"]) == 2 and 1 <= tries["p000@example.org"][1] <= 1.25
        gaps = [b - a for a, b in zip(tries["p001@example.org"], tries["p001@example.org"][1:])]
        assert len(gaps) == 2 and 1 <= gaps[0] <= 1.25 and 2 <= gaps[1] <= 2.5  # exponential
        assert await status_of(daemon, seq.id) == ["completed", "bounced"]
        # A soft bounce does not suppress: the address may be enrolled elsewhere.
        assert await daemon.store.suppressions() == []
        # Every retry of one step reused one Message-ID.
        assert len({m.message_id for _, m in transport.delivered}) == 1


async def test_permanent_failure_bounces_and_suppresses_everywhere(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        plugin.transports["m"].script["p000@example.org"] = [SendOutcome.PERMANENT]
        seq = await sequence(daemon)
        other = await sequence(daemon, name="other")
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(1))
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        assert await status_of(daemon, seq.id) == ["bounced"]
        assert [s["email"] for s in await daemon.store.suppressions("bounced")] == ["p000@example.org"]
        with pytest.raises(Conflict) as info:
            await daemon.control.enroll(other.id, people(1))
        assert info.value.code == "suppressed"


async def test_uncertain_send_is_not_resent_and_is_counted(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        plugin.transports["m"].script["p000@example.org"] = [SendOutcome.UNCERTAIN]
        seq = await sequence(daemon)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(1))
        await sleep_until(daemon, START + dt.timedelta(hours=3))
        attempts = plugin.transports["m"].attempts
        assert [a for _, a in attempts] == ["p000@example.org", "p000@example.org"]  # step 1 once, then step 2
        assert await daemon.store.count_outbox("uncertain") == 1


async def test_sender_blocked_pauses_the_mailbox_not_the_contact(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        plugin.transports["m"].script["p000@example.org"] = [SendOutcome.SENDER_BLOCKED]
        seq = await sequence(daemon)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(2))
        await sleep_until(daemon, START + dt.timedelta(hours=3))
        assert daemon.scheduler.lanes["m"].paused_reason is not None
        assert await daemon.store.mailbox_paused("m") is not None
        assert await status_of(daemon, seq.id) == ["active", "active"]
        assert await daemon.store.suppressions() == []


async def test_pause_holds_and_resume_continues_where_it_was(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(1))
        await sleep_until(daemon, START + dt.timedelta(minutes=30))
        await daemon.control.transition(seq.id, Action.PAUSE)
        with pytest.raises(InvalidTransition):
            await daemon.control.transition(seq.id, Action.PAUSE)
        await sleep_until(daemon, START + dt.timedelta(hours=5))
        assert len(plugin.transports["m"].delivered) == 1  # the 1-hour follow-up was held
        await daemon.control.transition(seq.id, Action.RESUME)
        await sleep_until(daemon, START + dt.timedelta(hours=6))
        subjects = [m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for _, m in plugin.transports["m"].delivered]
        assert subjects == [b"One F0", b"Two"]  # continued, not restarted
        assert minutes([t for t, _ in plugin.transports["m"].delivered]) == [0, 300]


async def test_step_edits_apply_to_future_runs_and_deleting_a_step_moves_nobody_back(tmp_path: Path, autojump_clock: Any) -> None:
    steps = [TWO_STEPS[0], {"type": "wait", "waitHours": 1}, {"type": "email", "subject": "Mid", "body": "<p>m</p>"},
             {"type": "wait", "waitHours": 1}, TWO_STEPS[2]]
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, steps)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(1))
        await sleep_until(daemon, START + dt.timedelta(minutes=30))
        await daemon.store.replace_step(seq.id, 0, step_from_fields({"type": "email", "subject": "Edited", "body": "x"}), 0)
        await daemon.store.delete_step(seq.id, 2, 0)  # "Mid", not yet reached
        await sleep_until(daemon, START + dt.timedelta(hours=4))
        subjects = [m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for _, m in plugin.transports["m"].delivered]
        assert subjects == [b"One F0", b"Two"]  # what was sent keeps its content; Mid never sent
        contacts = await daemon.store.sequence_contacts(seq.id)
        assert contacts[0].status == "completed"


async def test_enrollment_rules(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, TWO_STEPS[:1], auto_complete=False)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(1))
        with pytest.raises(AlreadyEnrolled):
            await daemon.control.enroll(seq.id, people(1))
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        assert await status_of(daemon, seq.id) == ["completed"]
        await daemon.control.enroll(seq.id, people(1))  # completed contacts may come back
        await sleep_until(daemon, START + dt.timedelta(minutes=10))
        assert len(plugin.transports["m"].delivered) == 2
        await daemon.control.transition(seq.id, Action.COMPLETE)
        with pytest.raises(ReadOnly):
            await daemon.control.enroll(seq.id, people(1, "z"))
        with pytest.raises(InvalidTransition):
            await daemon.control.transition(seq.id, Action.RESUME)


async def test_complete_cancels_active_enrollments(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(3))
        await sleep_until(daemon, START + dt.timedelta(minutes=10))
        await daemon.control.transition(seq.id, Action.COMPLETE)
        await sleep_until(daemon, START + dt.timedelta(hours=3))
        assert await status_of(daemon, seq.id) == ["cancelled"] * 3
        assert len(plugin.transports["m"].delivered) == 3  # the follow-ups never went


async def test_crash_recovery_resolves_rows_left_sending(tmp_path: Path, autojump_clock: Any) -> None:
    """Rows a crash left 'sending' are looked up: delivered -> sent, surely not -> sent once
    now, unknown -> uncertain and never resent."""
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.enroll(seq.id, people(3))
        # The sequence runs (a claim refuses one that does not), its mailbox paused so that only
        # the test claims.
        await daemon.control.pause_mailbox("m", "the test claims by hand")
        await daemon.control.transition(seq.id, Action.START)
        now = daemon.clock.now()
        contacts = await daemon.store.sequence_contacts(seq.id)
        step_id = (await daemon.store.get_sequence(seq.id))[1][0].id
        ids = []
        for contact in contacts:  # what a crash between claim and record leaves behind
            claim = await daemon.store.claim_send(contact.enrollment_id, step_id, "m", f"<c{contact.contact_id}@x>", "One", now)
            assert isinstance(claim, Claim)
            ids.append(claim.message_id)
    transport = plugin.transports["m"]
    transport.known = {ids[0]: True, ids[1]: False, ids[2]: None}
    async with daemon_with(tmp_path, plugin=plugin) as (daemon, plugin):
        assert daemon.uncertain_at_start == 1
        await daemon.control.resume_mailbox("m")
        await sleep_until(daemon, START + dt.timedelta(minutes=10))
        assert [m.to_address for _, m in transport.delivered] == ["p001@example.org"]
        assert await status_of(daemon, seq.id) == ["completed", "completed", "completed"]
        assert await daemon.store.count_outbox("uncertain") == 1


async def test_memory_is_bounded_by_the_horizon_and_the_queue_limit(tmp_path: Path, autojump_clock: Any) -> None:
    """500 due at once with a queue limit of 40: the lane never holds more than its limit
    (plus the enrollments its workers hold) and still sends everything in due order."""
    async with daemon_with(tmp_path, queue_limit=40, horizon_seconds=3600) as (daemon, plugin):
        now_seq = await sequence(daemon, TWO_STEPS[:1], name="now")
        await daemon.control.enroll(now_seq.id, people(500))
        lane = daemon.scheduler.lanes["m"]
        await daemon.control.transition(now_seq.id, Action.START)
        peak = 0
        for _ in range(400):
            await trio.sleep(1)
            peak = max(peak, lane.loaded())
            if len(plugin.transports["m"].delivered) >= 500:
                break
        assert len(plugin.transports["m"].delivered) == 500
        assert peak <= 40 + lane.concurrency
        sent_to = [m.to_address for _, m in plugin.transports["m"].delivered]
        assert sent_to == sorted(sent_to)  # due order (equal due times: enrollment order)
        assert len(lane._followup) <= 40 + lane.concurrency  # nothing kept of enrollments that left
