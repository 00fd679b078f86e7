"""A reply stops what has not left: a send claimed ahead of the wire is not sent once its
enrollment ends.

With claims made ahead (dripd/send_slots.py), a contact's next step can be committed 'sending'
while it waits for a connection. A reply (or an unsubscribe) committed meanwhile must stop it:
the engine hears the ending (dripd/endings.py), confirms it against the store and releases the
claim instead of handing the message over. In-process daemon, simulated time, the scripted
transport holding its one send on the wire.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import trio

from dripd.daemon import Daemon
from dripd.errors import StoreError
from dripd.events import Bounce, EventKind, Reply
from dripd.model import Action, EnrollmentStatus
from dripd.store import ContactProgress, OutboxRow, RunContext
from tests.integration.simulated import START, TWO_STEPS, daemon_with, people, sequence
from tests.scripted_transport import ScriptedPlugin, ScriptedTransport


async def _follow_ups_waiting(daemon: Daemon, transport: ScriptedTransport, sequence_id: int
                              ) -> tuple[OutboxRow, list[OutboxRow], dict[str, str]]:
    """Three contacts got the first step; of their follow-ups one is on the wire (held there)
    and two are claimed ahead, waiting for it. Returns those rows and each first Message-ID."""
    await daemon.control.transition(sequence_id, Action.START)
    await daemon.control.enroll(sequence_id, people(3))
    with trio.fail_after(600):
        while len(transport.delivered) < 3:  # the first step, to all three
            await trio.sleep(1)
    first = {message.to_address: message.message_id for _, message in transport.delivered}
    transport.hold = trio.Event()  # the next send stays on the wire until the test lets it go
    with trio.fail_after(7200):  # an hour later, the follow-ups
        while len(await daemon.store.outbox_in_state("sending")) < 3:
            await trio.sleep(1)
    on_wire, *waiting = sorted(await daemon.store.outbox_in_state("sending"), key=lambda row: row.id)
    return on_wire, waiting, first


async def test_a_reply_and_an_unsubscribe_stop_follow_ups_claimed_ahead_of_the_wire(
        tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon)
        on_wire, waiting, first = await _follow_ups_waiting(daemon, transport, seq.id)
        contacts = {c.enrollment_id: c for c in await daemon.store.sequence_contacts(seq.id)}
        replier, leaver = (contacts[row.enrollment_id] for row in waiting)

        [ref] = await daemon.store.sent_by_message_ids([first[replier.email]])
        await daemon.store.record_signal(ref, EventKind.REPLIED, daemon.clock.now(),
                                         Reply(sender=replier.email, source="INBOX/1"), end_as=EnrollmentStatus.REPLIED)
        await daemon.store.suppress(leaver.email, "unsubscribed", None, daemon.clock.now())
        transport.hold.set()
        with trio.fail_after(60):
            while await daemon.store.outbox_in_state("sending"):
                await trio.sleep(1)
        await trio.sleep(86400)  # a day later, still nothing more for them

        follow_ups = [message.to_address for _, message in transport.delivered[3:]]
        assert follow_ups == [contacts[on_wire.enrollment_id].email], "only the send already on the wire went out"
        released = {row.enrollment_id: row.message_id for row in await daemon.store.outbox_in_state("retry")}
        assert released == {row.enrollment_id: row.message_id for row in waiting}, "the claims were released, unsent"
        statuses = {c.email: c.status for c in await daemon.store.sequence_contacts(seq.id)}
        assert statuses == {contacts[on_wire.enrollment_id].email: "completed", replier.email: "replied",
                            leaver.email: "unsubscribed"}
        history = await daemon.store.contact_history(seq.id, replier.contact_id)
        [follow_up] = [m for m in history["messages"] if m["status"] == "retry"]
        assert "ended" in follow_up["detail"], follow_up
        assert follow_up["attempts"] == 0, "never tried: its attempt is undone"
        # The caps count the four sends made, not the two withdrawn: in the store (what a restart
        # reads) and in the lane's limiter.
        assert len(await daemon.store.send_history("m", 0.0)) == len(transport.delivered) == 4
        last_sent_at = transport.delivered[-1][0]  # all four on START's day
        assert daemon.services.scheduler.lanes["m"].limiter.sends_today(last_sent_at) == 4


class _ReadThen:
    """The engine's store, with one thing done right after one enrollment's next context read:
    a real store call, committed (and published) before the engine resumes."""

    def __init__(self, store: Any, enrollment_id: int, then: Any) -> None:
        self._store, self._enrollment_id, self._then = store, enrollment_id, then

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def run_context(self, enrollment_id: int) -> RunContext | None:
        if enrollment_id != self._enrollment_id or self._then is None:
            return await self._store.run_context(enrollment_id)
        then, self._then = self._then, None
        if then == "fail":
            raise StoreError("database unavailable: the database is locked by another process")
        ctx = await self._store.run_context(enrollment_id)
        await then()
        return ctx


async def _false_alarm_then(daemon: Daemon, transport: ScriptedTransport, sequence_id: int,
                            then: Callable[[ContactProgress], Any]) -> tuple[OutboxRow, ContactProgress, str]:
    """Follow-ups waiting (``_follow_ups_waiting``); a soft bounce of the first step marks the
    first waiting one (it ends nothing), ``then(its contact)`` is what comes right after the
    engine's next read of it; then the held send is let go. Returns the marked row, its contact
    and the other waiting contact's address."""
    _, (marked, plain), first = await _follow_ups_waiting(daemon, transport, sequence_id)
    contacts = {c.enrollment_id: c for c in await daemon.store.sequence_contacts(sequence_id)}
    target = contacts[marked.enrollment_id]
    engine = daemon.services.engine
    engine.store = _ReadThen(engine.store, marked.enrollment_id, then(target))
    [ref] = await daemon.store.sent_by_message_ids([first[target.email]])
    await daemon.store.record_signal(ref, EventKind.BOUNCED, daemon.clock.now(), Bounce("soft", "mailbox full"))
    assert transport.hold is not None
    transport.hold.set()
    return marked, target, contacts[plain.enrollment_id].email


async def test_an_ending_committed_while_a_false_alarm_is_checked_still_stops_the_send(
        tmp_path: Path, autojump_clock: Any) -> None:
    """A soft bounce of the first step marks a waiting follow-up (it ends nothing); while the
    engine asks the store, the contact is cancelled: the send must not go."""
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon)
        def cancel(contact: ContactProgress) -> Callable[[], Awaitable[None]]:
            return lambda: daemon.control.cancel_enrollment(seq.id, contact.contact_id)

        marked, target, other = await _false_alarm_then(daemon, transport, seq.id, cancel)
        with trio.fail_after(60):
            while await daemon.store.outbox_in_state("sending"):
                await trio.sleep(1)
        await trio.sleep(86400)
        follow_ups = [message.to_address for _, message in transport.delivered[3:]]
        assert target.email not in follow_ups and other in follow_ups
        assert [row.message_id for row in await daemon.store.outbox_in_state("retry")] == [marked.message_id]
        assert {c.email: c.status for c in await daemon.store.sequence_contacts(seq.id)}[target.email] == "cancelled"


async def test_a_store_error_while_checking_a_mark_withdraws_the_send_and_it_goes_later_once(
        tmp_path: Path, autojump_clock: Any) -> None:
    """The store fails the read that would confirm a mark: the claim is not sent then, is
    released, and goes once later under its Message-ID (not skipped as if in flight)."""
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon)
        marked, target, _ = await _false_alarm_then(daemon, transport, seq.id, lambda contact: "fail")
        with trio.fail_after(86400):
            while await daemon.store.count_outbox("sent") < 6:
                await trio.sleep(60)
        follow_ups = [message for _, message in transport.delivered[3:] if message.to_address == target.email]
        assert [message.message_id for message in follow_ups] == [marked.message_id], "once, its Message-ID"
        history = await daemon.store.contact_history(seq.id, target.contact_id)
        assert [m["attempts"] for m in history["messages"]] == [1, 1], "the withdrawn claim was no attempt"
        assert len(await daemon.store.send_history("m", 0.0)) == len(transport.delivered) == 6
        assert {c.email: c.status for c in await daemon.store.sequence_contacts(seq.id)}[target.email] == "completed"


async def test_a_claim_refused_for_an_ending_after_the_read_takes_no_place_under_the_caps(
        tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A contact cancelled between the engine's read of it and its claim: the claim is refused,
    nothing is sent, and the token the lane took for it is given back (the caps count the sends
    made, in memory as in the store)."""
    caplog.set_level(logging.INFO, logger="dripd.engine")
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon)
        await daemon.control.enroll(seq.id, people(3))
        target, *others = await daemon.store.sequence_contacts(seq.id)
        engine = daemon.services.engine
        engine.store = _ReadThen(engine.store, target.enrollment_id,
                                 lambda: daemon.control.cancel_enrollment(seq.id, target.contact_id))
        await daemon.control.transition(seq.id, Action.START)
        with trio.fail_after(600):
            while len(transport.delivered) < 2 or await daemon.store.outbox_in_state("sending"):
                await trio.sleep(1)
        assert sorted(message.to_address for _, message in transport.delivered) == sorted(c.email for c in others)
        assert {c.email: c.status for c in await daemon.store.sequence_contacts(seq.id)}[target.email] == "cancelled"
        assert [r.getMessage() for r in caplog.records if "before its claim" in r.getMessage()] == [
            f"enrollment {target.enrollment_id} step 0: ended before its claim; not sent"]
        assert daemon.services.scheduler.lanes["m"].limiter.sends_today(transport.delivered[-1][0]) == 2


class _FailsOnce:
    """The engine's store, failing one enrollment's calls of ``operations`` (the claim, the record
    of a send) as a locked database would: each once, in that order."""

    def __init__(self, store: Any, enrollment_id: int, *operations: str) -> None:
        self._store, self._enrollment_id, self.failing = store, enrollment_id, list(operations)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _fail(self, operation: str, enrollment_id: int) -> None:
        if enrollment_id == self._enrollment_id and self.failing[:1] == [operation]:
            self.failing.pop(0)
            raise StoreError("database unavailable: the database is locked by another process")

    async def claim_send(self, enrollment_id: int, *args: Any) -> Any:
        self._fail("claim_send", enrollment_id)
        return await self._store.claim_send(enrollment_id, *args)

    async def record_sent(self, claim: Any, enrollment_id: int, *args: Any) -> Any:
        self._fail("record_sent", enrollment_id)
        return await self._store.record_sent(claim, enrollment_id, *args)


async def test_a_claim_the_store_fails_takes_no_place_under_the_caps(tmp_path: Path, autojump_clock: Any) -> None:
    """The store fails one contact's claim: nothing was committed and nothing sent, so the token
    the lane took for it is given back; the lane backs off and sends it later, once."""
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon)
        await daemon.control.enroll(seq.id, people(3))
        target, *_ = await daemon.store.sequence_contacts(seq.id)
        engine = daemon.services.engine
        engine.store = failing = _FailsOnce(engine.store, target.enrollment_id, "claim_send")
        await daemon.control.transition(seq.id, Action.START)
        with trio.fail_after(600):
            while len(transport.delivered) < 3:
                await trio.sleep(1)
        assert not failing.failing
        assert sorted(message.to_address for _, message in transport.delivered) == sorted(
            c.email for c in await daemon.store.sequence_contacts(seq.id))
        assert len(await daemon.store.send_history("m", 0.0)) == 3
        assert daemon.services.scheduler.lanes["m"].limiter.sends_today(transport.delivered[-1][0]) == 3


async def test_a_failed_claim_keeps_the_journal_line_of_a_send_whose_result_was_not_recorded(
        tmp_path: Path, autojump_clock: Any) -> None:
    """A message goes out and its result cannot be recorded (the row stays 'sending', the wire
    journal says accepted); the lane's next claim of that step fails too. That failure must not
    drop the journal's line: the claim after it would write a C, and a restart would take the row
    for one never handed over and release it unsent, though the server accepted it. With the line
    kept, the restart records it sent, and nothing goes out twice."""
    async with daemon_with(tmp_path) as (daemon, plugin):
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.enroll(seq.id, people(1))
        [target] = await daemon.store.sequence_contacts(seq.id)
        engine = daemon.services.engine
        engine.store = failing = _FailsOnce(engine.store, target.enrollment_id, "record_sent", "claim_send")
        await daemon.control.transition(seq.id, Action.START)
        with trio.fail_after(600):
            while failing.failing or (await daemon.store.sequence_contacts(seq.id))[0].status == "active":
                await trio.sleep(1)  # sent, not recorded; claimed again: failed, then refused (in the ledger)
        [row] = await daemon.store.outbox_in_state("sending")
        assert plugin.transports["m"].delivered[0][1].message_id == row.message_id
    async with daemon_with(tmp_path, plugin=ScriptedPlugin(), start=START + dt.timedelta(days=1)) as (daemon, again):
        with trio.fail_after(600):
            while await daemon.store.outbox_in_state("sending"):
                await trio.sleep(1)
        assert again.transports["m"].delivered == [], "a message the server accepted is never sent again"
        assert [r.message_id for r in await daemon.store.outbox_in_state("sent")] == [row.message_id]
