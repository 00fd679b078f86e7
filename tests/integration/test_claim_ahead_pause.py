"""A pause stops what has not left: a claim made ahead of the wire is released, not sent.

With claims made ahead (dripd/send_slots.py), a row can be committed 'sending' while it waits for
a connection. If the mailbox is paused meanwhile, that send has not left: it goes back to 'retry'
(same Message-ID) and waits for the resume, instead of going out after the pause. In-process
daemon, simulated time, the scripted transport holding its one send on the wire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from dripd.model import Action
from tests.integration.simulated import TWO_STEPS, daemon_with, people, sequence


async def test_a_claim_made_ahead_is_released_by_a_pause_and_sent_once_after_the_resume(
        tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        transport = plugin.transports["m"]
        transport.hold = trio.Event()  # the first send stays on the wire until the test lets it go
        seq = await sequence(daemon, TWO_STEPS[:1])
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(2))
        # One send on the wire, the next claimed ahead and waiting for the wire (concurrency 1).
        with trio.fail_after(60):
            while len(await daemon.store.outbox_in_state("sending")) < 2:
                await trio.sleep(1)
        claimed = {row.enrollment_id: row.message_id for row in await daemon.store.outbox_in_state("sending")}

        await daemon.control.pause_mailbox("m", "operator pause")
        transport.hold.set()
        with trio.fail_after(60):
            while len(await daemon.store.outbox_in_state("retry")) < 1:
                await trio.sleep(1)
        await trio.sleep(3600)  # an hour of paused mailbox: nothing more leaves
        assert len(transport.delivered) == 1, "only the send already on the wire went out"
        released = await daemon.store.outbox_in_state("retry")
        assert [row.message_id for row in released] == [claimed[released[0].enrollment_id]]
        assert await daemon.store.outbox_in_state("sending") == []

        await daemon.control.resume_mailbox("m")
        with trio.fail_after(60):
            while len(transport.delivered) < 2:
                await trio.sleep(1)
        await trio.sleep(3600)
        sent_ids = [message.message_id for _, message in transport.delivered]
        assert sorted(sent_ids) == sorted(claimed.values()), "each contact once, the released one under its Message-ID"
        assert await daemon.store.count_outbox("sent") == 2
