"""Sends waiting for a connection ride on the previous message's content (RFC 2920 across
messages), against the scripted aiosmtpd sink: every message still gets the outcome of its own
replies, none goes out twice, a send whose envelope went ahead of a failure is not lost, and a
send is asked ``on_wire`` (the wire journal's W line) only right before its content, so a crash
leaves at most one uncertain message per connection (tests/integration/test_send_slots_crash.py).

The sends are handed over together, so which of them takes the one connection first is up to the
scheduler: the assertions hold whichever it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import trio
import trio_asyncio

from dripd.hookspecs import WITHDRAWN, OutgoingMessage, SendOutcome, SendResult
from dripd_smtp.config import SmtpConfig
from dripd_smtp.transport import SmtpTransport
from tests.integration.plugin_harness import MAILBOX, context, message
from tests.integration.servers import smtp_sink


async def send_together(table: dict[str, Any], *messages: OutgoingMessage) -> tuple[list[SendResult], SmtpTransport]:
    """Hand every message to one transport at once; their results in the messages' order."""
    transport = SmtpTransport(MAILBOX, SmtpConfig.model_validate(table), context())
    results: list[SendResult | None] = [None] * len(messages)

    async def send(index: int) -> None:
        results[index] = await transport.send(messages[index])

    async with trio_asyncio.open_loop():
        try:
            # The real clock (the sink is another process): the bound only stops a failing test
            # from hanging, e.g. a connection never passed to the send whose envelope it carries.
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    for index in range(len(messages)):
                        nursery.start_soon(send, index)
        finally:
            await transport.aclose()
    assert all(result is not None for result in results)
    return [result for result in results if result is not None], transport


def counted(messages: list[OutgoingMessage], asked: list[str], answer: bool = True) -> list[OutgoingMessage]:
    """The messages with ``on_wire`` noting each ask in ``asked`` (by recipient) and answering ``answer``."""
    def on_wire(to: str) -> bool:
        asked.append(to)
        return answer
    return [dataclasses.replace(m, on_wire=lambda to=m.to_address: on_wire(to)) for m in messages]


def numbered(count: int) -> list[OutgoingMessage]:
    return [message(to=f"rcpt{i}@example.org", n=i) for i in range(count)]


def delivered(sink: Any) -> list[str]:
    return [event["to"] for event in sink.events() if event["event"] == "accepted"]


async def test_each_waiting_send_goes_out_with_the_content_before_it() -> None:
    asked: list[str] = []
    # What the sink had seen of each message when it was asked ``on_wire``: (its RCPT, its content).
    seen: dict[str, tuple[bool, bool]] = {}
    with smtp_sink({"pipelining": True}) as sink:
        def note(to: str) -> bool:
            events = [e for e in sink.events() if e.get("to") == to]
            seen[to] = (any(e["event"] == "rcpt" for e in events), any(e["event"] == "dot" for e in events))
            return True
        messages = counted(numbered(8), asked)
        messages = [dataclasses.replace(m, on_wire=lambda to=m.to_address, ask=m.on_wire: note(to) and ask())
                    for m in messages]
        results, transport = await send_together(sink.smtp_table(connections=1), *messages)
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 8
        assert transport.connects == 1 and sink.count("connect") == 1
        # The first one writes its own envelope; each of the seven behind it went out after
        # the content before it, and was asked ``on_wire`` once, when the server had answered
        # its envelope and before its content: its RCPT seen, its content not.
        assert transport.written_ahead == 7 and transport.pipelined == 8
        assert sorted(asked) == sorted(m.to_address for m in messages)
        assert sorted(seen.values()) == [(False, False)] + [(True, False)] * 7, seen
        assert sorted(delivered(sink)) == sorted(m.to_address for m in messages)
        assert len(sink.messages()) == 8


async def test_without_pipelining_no_envelope_goes_ahead() -> None:
    with smtp_sink({"pipelining": False}) as sink:
        results, transport = await send_together(sink.smtp_table(connections=1), *numbered(4))
        assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 4
        assert transport.written_ahead == 0 and transport.pipelined == 0
        assert len(sink.messages()) == 4


async def test_a_refusal_at_the_dot_leaves_the_send_behind_it_to_a_new_connection() -> None:
    rule = {"on": "dot", "reply": "554 5.7.1 message rejected as spam", "times": 1}
    messages = numbered(3)
    with smtp_sink({"rules": [rule], "pipelining": True}) as sink:
        results, transport = await send_together(sink.smtp_table(connections=1), *messages)
        outcomes = [r.outcome for r in results]
        assert sorted(o.value for o in outcomes) == sorted(["sender_blocked", "accepted", "accepted"]), results
        refused = messages[outcomes.index(SendOutcome.SENDER_BLOCKED)].to_address
        # The refusal's connection carried the next envelope: it is closed, not reset, and the
        # send behind it opens its own. Nothing is delivered twice, the refused one never.
        assert sink.count("connect") == 2
        assert sorted(delivered(sink)) == sorted(m.to_address for m in messages if m.to_address != refused)


async def test_a_connection_lost_after_the_dot_loses_no_send_behind_it() -> None:
    asked: list[str] = []
    messages = counted(numbered(3), asked)
    with smtp_sink({"rules": [{"on": "dot", "action": "drop", "times": 1}], "pipelining": True}) as sink:
        results, _ = await send_together(sink.smtp_table(connections=1, timeout_seconds=5), *messages)
        outcomes = [r.outcome for r in results]
        # The one whose dot was left unanswered may have been delivered: uncertain. The one
        # whose envelope followed it sent no content there, so it is sent on a new connection.
        assert sorted(o.value for o in outcomes) == sorted(["uncertain", "accepted", "accepted"]), results
        lost = messages[outcomes.index(SendOutcome.UNCERTAIN)].to_address
        accepted = delivered(sink)
        assert sorted(accepted) == sorted(m.to_address for m in messages if m.to_address != lost)
        assert len(accepted) == len(set(accepted)), "a message went out twice"
        assert set(asked) == {m.to_address for m in messages}


async def test_a_withdrawn_waiting_send_never_writes_its_content() -> None:
    # Which of the three takes the connection first is the scheduler's choice; in about two runs
    # of three the withdrawn one waits behind another and its envelope rides ahead. Run until
    # that case has been seen (each run checks both cases exactly).
    rode_ahead = 0
    for _ in range(20):
        asked: list[str] = []
        kept = counted(numbered(2), asked)
        withdrawn = counted([message(to="gone@example.org", n=9)], asked, answer=False)
        with smtp_sink({"pipelining": True}) as sink:
            results, transport = await send_together(sink.smtp_table(connections=1), kept[0], withdrawn[0], kept[1])
            assert results[1] is WITHDRAWN
            assert [results[0].outcome, results[2].outcome] == [SendOutcome.ACCEPTED] * 2
            assert "gone@example.org" in asked
            # Its content never went out; when its envelope had (behind the content before it),
            # the connection left waiting for that content was closed, not reused.
            assert all(e.get("to") != "gone@example.org" for e in sink.events() if e["event"] in ("dot", "accepted"))
            assert len(sink.messages()) == 2
            events = sink.events()
            gone = [i for i, e in enumerate(events) if e["event"] == "rcpt" and e["to"] == "gone@example.org"]
            went_ahead = bool(gone)
            after = went_ahead and any(e["event"] == "rcpt" for e in events[gone[0] + 1:])
            assert transport.connects == (2 if after else 1)  # a send after it needed a new one
            rode_ahead += went_ahead
        if rode_ahead:
            break
    assert rode_ahead, "the withdrawn send never waited behind another in 20 runs"


async def test_a_waiting_send_refused_at_rcpt_is_never_asked_on_wire() -> None:
    asked: list[str] = []
    messages = counted(numbered(3), asked)
    rule = {"on": "rcpt", "match": "rcpt1@", "reply": "550 5.1.1 no such user", "times": 1}
    with smtp_sink({"rules": [rule], "pipelining": True}) as sink:
        results, transport = await send_together(sink.smtp_table(connections=1), *messages)
        assert [r.outcome.value for r in results].count("permanent") == 1
        assert results[1].outcome is SendOutcome.PERMANENT and results[1].code == 550
        # When its envelope rode ahead, nothing of it could be delivered: it never began. The
        # connection is reset and carries on.
        assert "rcpt1@example.org" not in asked or transport.written_ahead < 2
        assert sorted(delivered(sink)) == ["rcpt0@example.org", "rcpt2@example.org"]
        assert transport.connects == 1
