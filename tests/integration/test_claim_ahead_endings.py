"""A reply stops what has not left: a send claimed ahead of the wire is not sent once its
enrollment ends.

With claims made ahead (dripd/send_slots.py), a contact's next step can be committed 'sending'
while it waits for a connection. A reply (or an unsubscribe) committed meanwhile must stop it:
the engine hears the ending (dripd/endings.py), confirms it against the store and releases the
claim instead of handing the message over. In-process daemon, simulated time, the scripted
transport holding its one send on the wire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from dripd.events import EventKind, Reply
from dripd.model import Action, EnrollmentStatus
from tests.integration.simulated import TWO_STEPS, daemon_with, people, sequence


async def test_a_reply_and_an_unsubscribe_stop_follow_ups_claimed_ahead_of_the_wire(
        tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        seq = await sequence(daemon)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(3))
        with trio.fail_after(600):
            while len(transport.delivered) < 3:  # the first step, to all three
                await trio.sleep(1)
        first = {message.to_address: message.message_id for _, message in transport.delivered}
        transport.hold = trio.Event()  # the next send stays on the wire until the test lets it go
        # An hour later the follow-ups: one on the wire, two claimed ahead and waiting for it.
        with trio.fail_after(7200):
            while len(await daemon.store.outbox_in_state("sending")) < 3:
                await trio.sleep(1)
        on_wire, *waiting = sorted(await daemon.store.outbox_in_state("sending"), key=lambda row: row.id)
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
