"""The SMTP transport's asyncio loop thread (dripd_smtp.loop_thread) against the scripted sink:
cancellation from trio reaches the asyncio side, the thread is shared and goes away with the last
transport, and a server that never answers is cut off even under the simulated test clock."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Any

import pytest
import trio
import uvloop

from dripd.hookspecs import WITHDRAWN, OutgoingMessage, SendOutcome, SendResult
from dripd_smtp import loop_thread
from dripd_smtp.config import SmtpConfig
from dripd_smtp.transport import SmtpTransport
from tests.integration.plugin_harness import MAILBOX, context, message
from tests.integration.servers import smtp_sink
from tests.integration.waiting import wait_until_async

THREAD_NAME = "dripd-smtp-loop"


def loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


def transport_for(table: dict[str, Any]) -> SmtpTransport:
    return SmtpTransport(MAILBOX, SmtpConfig.model_validate(table), context())


async def tasks_on_loop(transport: SmtpTransport) -> int:
    """asyncio tasks on the transport's loop thread, besides the one asking."""
    async def count() -> int:
        return len(asyncio.all_tasks()) - 1
    return await transport._loop().run(count)


async def test_a_cancel_from_trio_stops_the_conversation_and_the_next_send_reconnects(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dripd.smtp")
    with smtp_sink({"rules": [{"on": "rcpt", "action": "stall", "times": 1}]}) as sink:
        transport = transport_for(sink.smtp_table(timeout_seconds=30))
        try:
            with trio.fail_after(60):  # hang guard only
                async with trio.open_nursery() as nursery:
                    async def send_then_note() -> None:
                        await transport.send(message(n=1))
                        raise AssertionError("the stalled send returned instead of being cancelled")
                    nursery.start_soon(send_then_note)

                    async def at_rcpt() -> bool:
                        return sink.count("rcpt") == 1
                    await wait_until_async(at_rcpt, what="the RCPT at the sink")
                    nursery.cancel_scope.cancel()
                # The cancel returned only once the asyncio side had finished: nothing runs there.
                assert await tasks_on_loop(transport) == 0
                after = await transport.send(message(n=2))
        finally:
            await transport.aclose()
        assert after.outcome is SendOutcome.ACCEPTED, after
        assert transport.connects == 2  # the cancelled conversation's connection was not reused
        assert [r.getMessage() for r in caplog.records if "<1.test@example.com>" in r.getMessage()] == [
            "mailbox alice: send of <1.test@example.com> ended during rcpt by Cancelled"]


async def test_the_transaction_timeout_cancels_the_loop_side_and_keeps_the_stage() -> None:
    with smtp_sink({"rules": [{"on": "dot", "action": "stall", "times": 1}]}) as sink:
        transport = transport_for(sink.smtp_table(timeout_seconds=0.5))
        try:
            with trio.fail_after(60):  # hang guard only
                stalled = await transport.send(message(n=1))
                assert await tasks_on_loop(transport) == 0
                after = await transport.send(message(n=2))
        finally:
            await transport.aclose()
        # The final dot had left: the stage the loop side reached decides UNCERTAIN.
        assert stalled.outcome is SendOutcome.UNCERTAIN and "0.5s" in stalled.detail, stalled
        assert after.outcome is SendOutcome.ACCEPTED


async def test_transports_share_one_loop_thread_and_the_last_close_ends_it() -> None:
    assert loop_threads() == []
    with smtp_sink() as first_sink, smtp_sink() as second_sink:
        first = transport_for(first_sink.smtp_table(connections=2))
        second = transport_for(second_sink.smtp_table(connections=2))
        results: list[SendResult] = []

        async def send(transport: SmtpTransport, n: int) -> None:
            results.append(await transport.send(message(n=n)))

        with trio.fail_after(60):  # hang guard only
            async with trio.open_nursery() as nursery:
                for n in range(4):
                    nursery.start_soon(send, first, n)
                    nursery.start_soon(send, second, 10 + n)
            assert first._thread is second._thread is not None
            assert len(loop_threads()) == 1
            await first.aclose()
            assert len(loop_threads()) == 1  # the second transport still holds it
            results.append(await second.send(message(n=20)))
            await second.aclose()
        assert loop_threads() == []
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 9
        assert len(first_sink.messages()) == 4 and len(second_sink.messages()) == 5


async def test_a_transport_after_the_last_close_starts_a_new_thread() -> None:
    with smtp_sink() as sink:
        for n in range(2):
            transport = transport_for(sink.smtp_table())
            try:
                assert (await transport.send(message(n=n))).outcome is SendOutcome.ACCEPTED
                assert len(loop_threads()) == 1
            finally:
                await transport.aclose()
            assert loop_threads() == []
    assert loop_thread._shared is None


async def test_a_close_during_a_send_leaves_the_thread_to_that_send() -> None:
    # A reload closes a replaced transport once its lane is idle or after a grace: a send still
    # on the wire then must end by its own outcome, not by the loop stopping under it.
    with smtp_sink({"rules": [{"on": "dot", "action": "stall", "times": 1}]}) as sink:
        transport = transport_for(sink.smtp_table(timeout_seconds=1))
        results: list[SendResult] = []

        async def send() -> None:
            results.append(await transport.send(message(n=1)))

        with trio.fail_after(60):  # hang guard only
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)

                async def at_dot() -> bool:
                    return sink.count("dot") == 1
                await wait_until_async(at_dot, what="the final dot at the sink")
                await transport.aclose()
                assert len(loop_threads()) == 1 and results == []  # still in flight
        assert loop_threads() == []  # the send's end let go of it
        [stalled] = results
        assert stalled.outcome is SendOutcome.UNCERTAIN and "within 1s" in stalled.detail, stalled


async def test_a_server_that_never_answers_is_cut_off_under_the_simulated_clock(autojump_clock: Any) -> None:
    # The test clock stands still while a send is on the loop thread (dripd.clock.offloaded), so
    # trio's move_on_after cannot end this wait; the loop side's own real-time bound must.
    with smtp_sink({"rules": [{"on": "rcpt", "action": "stall", "times": 1}]}) as sink:
        transport = transport_for(sink.smtp_table(timeout_seconds=0.5))
        token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as guard:
            # A hang guard in real time: trio's own timeouts do not move here.
            watchdog = threading.Timer(60, lambda: token.run_sync_soon(guard.cancel))
            watchdog.start()
            try:
                stalled = await transport.send(message(n=1))
                after = await transport.send(message(n=2))
            finally:
                watchdog.cancel()
                await transport.aclose()
        assert not guard.cancelled_caught, "the stalled send was not cut off within 60 s of real time"
        assert stalled.outcome is SendOutcome.TRANSIENT and "rcpt" in stalled.detail, stalled
        assert "0.5s" in stalled.detail
        assert after.outcome is SendOutcome.ACCEPTED
        assert trio.current_time() == 0  # no simulated time passed while the sends were away


def reported(n: int, log: list[tuple[str, int, str]], *, wanted: bool = True) -> OutgoingMessage:
    """Message ``n`` whose ``on_wire`` and ``on_accepted`` note (what, n, thread name) in ``log``;
    ``wanted`` False: its ``on_wire`` withdraws it."""
    def on_wire() -> bool:
        log.append(("wire" if wanted else "withdrawn", n, threading.current_thread().name))
        return wanted

    return dataclasses.replace(
        message(n=n), on_wire=on_wire,
        on_accepted=lambda: log.append(("accepted", n, threading.current_thread().name)))


async def test_sends_beyond_the_connections_wait_on_the_loop_thread_and_report_each_transaction() -> None:
    # The core hands a queueing transport more sends than it has connections (dripd/parallelism.py):
    # they must share the pool's connections, one transaction each at a time, and report when
    # each begins and is accepted, from the loop thread, in that order.
    log: list[tuple[str, int, str]] = []
    with smtp_sink() as sink:
        transport = transport_for(sink.smtp_table(connections=2))
        results: list[SendResult] = []

        async def send(n: int) -> None:
            results.append(await transport.send(reported(n, log)))

        try:
            with trio.fail_after(60):  # hang guard only
                async with trio.open_nursery() as nursery:
                    for n in range(10):
                        nursery.start_soon(send, n)
        finally:
            await transport.aclose()
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 10
        assert sink.count("connect") == 2 and transport.connects == 2
        assert len(sink.messages()) == 10
    assert {thread for _, _, thread in log} == {THREAD_NAME}
    assert sorted(n for what, n, _ in log if what == "wire") == list(range(10))
    assert sorted(n for what, n, _ in log if what == "accepted") == list(range(10))
    in_transaction, most = set(), 0
    for what, n, _ in log:
        if what == "wire":
            in_transaction.add(n)
            most = max(most, len(in_transaction))
        else:
            assert n in in_transaction, f"message {n} accepted before its transaction began"
            in_transaction.remove(n)
    assert most <= 2, f"{most} transactions at once on 2 connections"


async def test_a_send_cancelled_while_waiting_for_a_connection_never_began_and_frees_its_turn() -> None:
    log: list[tuple[str, int, str]] = []
    with smtp_sink({"rules": [{"on": "dot", "action": "stall", "times": 1}]}) as sink:
        transport = transport_for(sink.smtp_table(connections=1, timeout_seconds=1))
        try:
            with trio.fail_after(60):  # hang guard only
                async with trio.open_nursery() as nursery:
                    first: list[SendResult] = []

                    async def send_first() -> None:
                        first.append(await transport.send(reported(1, log)))
                    nursery.start_soon(send_first)

                    async def at_dot() -> bool:
                        return sink.count("dot") == 1
                    await wait_until_async(at_dot, what="the first message's final dot at the sink")
                    async with trio.open_nursery() as inner:
                        inner.start_soon(transport.send, reported(2, log))  # never to begin

                        async def queued() -> bool:
                            return len(transport._waiting) == 1  # waiting on the loop thread
                        await wait_until_async(queued, what="the second send waiting for the connection")
                        inner.cancel_scope.cancel()
                    # The first one ends by its own timeout.
                [stalled] = first
                after = await transport.send(reported(3, log))
        finally:
            await transport.aclose()
    # The first timed out after its dot (uncertain) and its connection was dropped; the second
    # was cancelled while it waited, so it never began; the third got a new connection.
    assert stalled.outcome is SendOutcome.UNCERTAIN, stalled
    assert after.outcome is SendOutcome.ACCEPTED, after
    assert [(what, n) for what, n, _ in log] == [("wire", 1), ("wire", 3), ("accepted", 3)]
    assert transport.connects == 2


async def test_a_message_withdrawn_as_its_turn_comes_is_not_sent_and_the_connection_carries_on() -> None:
    log: list[tuple[str, int, str]] = []
    with smtp_sink() as sink:
        transport = transport_for(sink.smtp_table())
        try:
            with trio.fail_after(60):  # hang guard only
                withdrawn = await transport.send(reported(1, log, wanted=False))
                after = await transport.send(reported(2, log))
        finally:
            await transport.aclose()
        assert withdrawn is WITHDRAWN
        assert after.outcome is SendOutcome.ACCEPTED
        assert [(what, n) for what, n, _ in log] == [("withdrawn", 1), ("wire", 2), ("accepted", 2)]
        assert sink.count("connect") == 1 and sink.count("rcpt") == 1 and len(sink.messages()) == 1


async def test_hand_offs_made_in_one_turn_share_a_wake_up_each_way() -> None:
    # Each wake-up is a system call and a GIL hand-over on both threads (issue 14): hand-offs
    # made while one is on its way ride with it, and answers likewise. Every one is answered,
    # in the order given, and a cancel still comes after its start.
    thread = loop_thread.acquire()
    try:
        wake_ups = {"loop": 0, "trio": 0}
        starts = thread._starts
        loop_wake = starts._wake

        def counted_loop_wake(run: Any) -> None:
            wake_ups["loop"] += 1
            loop_wake(run)

        starts._wake = counted_loop_wake
        started: list[int] = []

        async def job(n: int) -> int:
            started.append(n)
            await asyncio.sleep(0)
            return n * 10

        answers: dict[int, int] = {}
        handed: list[int] = []

        async def hand_off(n: int) -> None:
            handed.append(n)  # run() gives the start to the loop before its first await
            answers[n] = await thread.run(job, n)

        batch = thread._answers.setdefault(trio.lowlevel.current_trio_token(),
                                           loop_thread._Batch(trio.lowlevel.current_trio_token().run_sync_soon))
        trio_wake = batch._wake

        def counted_trio_wake(run: Any) -> None:
            wake_ups["trio"] += 1
            trio_wake(run)

        batch._wake = counted_trio_wake
        with trio.fail_after(30):  # hang guard only
            async with trio.open_nursery() as nursery:
                for n in range(200):
                    nursery.start_soon(hand_off, n)
        assert answers == {n: n * 10 for n in range(200)}
        assert started == handed  # started in the order handed over
        assert 1 <= wake_ups["loop"] < 200 and 1 <= wake_ups["trio"] < 200

        async def forever() -> None:
            await asyncio.Event().wait()

        with trio.move_on_after(0.2):  # a real timeout: the cancel crosses after its start
            await thread.run(forever)
        assert await thread.run(job, 7) == 70
    finally:
        await loop_thread.release(thread)


def test_a_batch_whose_loop_is_gone_says_so_on_every_hand_off() -> None:
    loop = uvloop.new_event_loop()  # the loop thread's kind
    loop.close()
    batch = loop_thread._Batch(loop.call_soon_threadsafe)
    for _ in range(2):  # not only the first: a later one must not wait for a wake-up that never comes
        with pytest.raises(RuntimeError, match="closed"):
            batch.add(lambda: None)
