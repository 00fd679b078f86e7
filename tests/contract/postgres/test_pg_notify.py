"""LISTEN/NOTIFY: making an enrollment due sooner (enroll, start/resume, moving contacts to
another mailbox) sends ``NOTIFY dripd_due, '<mailbox_id>'`` at COMMIT; ``listen_due`` hands the
payloads to the trio side."""

from __future__ import annotations

from typing import Any

import psycopg
import trio

from dripd.model import Action, SequenceSettings
from dripd.store import ContactInput
from tests.contract.postgres.conftest import Opener, connect
from tests.contract.support import T0, active_sequence, email_step


def drain(listener: psycopg.Connection[Any], seconds: float = 2.0) -> list[str]:
    """What was notified so far (waits up to ``seconds`` for the first one)."""
    got = [n.payload for n in listener.notifies(timeout=seconds, stop_after=1)]
    got += [n.payload for n in listener.notifies(timeout=0.2)]
    return got


async def test_enroll_start_and_a_move_notify_the_mailbox(pg_url: str, open_store: Opener) -> None:
    store = await open_store()
    with connect(pg_url) as listener:
        listener.execute("LISTEN dripd_due")
        sequence, _ = await active_sequence(store)
        await store.enroll(sequence.id, [ContactInput("a@example.org")], None, T0, strict=True)
        assert drain(listener) == ["sales"]

        draft = await store.create_sequence(SequenceSettings(name="later", mailbox_id="ops"), [email_step()], T0)
        await store.enroll(draft.id, [ContactInput("b@example.org")], None, T0, strict=True)
        assert drain(listener, 0.5) == []  # held in a draft: nothing became due
        await store.transition_sequence(draft.id, Action.START, T0)
        assert drain(listener) == ["ops"]

        moved = draft.settings.replace(mailbox_id="support")
        await store.update_sequence(draft.id, moved, T0)
        assert drain(listener) == ["support"]


async def test_listen_due_reaches_the_trio_side(open_store: Opener) -> None:
    store = await open_store()
    woken: list[str] = []
    arrived = trio.Event()

    def on_due(mailbox_id: str) -> None:
        woken.append(mailbox_id)
        arrived.set()

    sequence, _ = await active_sequence(store, mailbox_id="sales")
    async with trio.open_nursery() as nursery:
        await nursery.start(store.listen_due, on_due)
        with trio.fail_after(20):
            # The LISTEN session may still be connecting when the first enrollment commits (its
            # notification then goes to nobody): enroll again until one is heard.
            index = 0
            while not arrived.is_set():
                await store.enroll(sequence.id, [ContactInput(f"n{index}@example.org")], None, T0, strict=True)
                index += 1
                with trio.move_on_after(1):
                    await arrived.wait()
        nursery.cancel_scope.cancel()
    assert set(woken) == {"sales"}
