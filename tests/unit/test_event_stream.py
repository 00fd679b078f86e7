"""The event vocabulary and the bounded post-commit stream."""

from __future__ import annotations

import datetime as dt

import pytest
import trio

from dripd import events
from dripd.events import Event, EventKind, EventStream, MailEvent


def test_every_kind_has_a_payload_type() -> None:
    assert set(events.PAYLOAD_OF) == set(EventKind)


def test_an_event_refuses_the_wrong_payload() -> None:
    with pytest.raises(TypeError, match="bounced events carry Bounce, not Reply"):
        Event(EventKind.BOUNCED, 1.0, events.Reply("a@b.example"))


def test_payload_json_round_trip_drops_unset_fields() -> None:
    bounce = events.Bounce("hard", "550 no such user", "5.1.1")
    data = events.payload_json(bounce)
    assert data == {"bounce_class": "hard", "detail": "550 no such user", "status": "5.1.1"}
    assert events.payload_from_json(EventKind.BOUNCED, {**data, "unknown": 1}) == bounce
    assert events.payload_json(events.Engagement(url="https://x.example/")) == {"url": "https://x.example/"}


def test_as_json_is_what_consumers_outside_see() -> None:
    event = Event(EventKind.SENT, 5.0, mailbox_id="sales", sequence_id=2, enrollment_id=3, step_id=4, id=9)
    assert event.as_json() == {"kind": "sent", "at": 5.0, "id": 9, "mailbox_id": "sales", "sequence_id": 2,
                               "enrollment_id": 3, "step_id": 4, "data": {}}


def test_a_detector_reports_only_what_it_can_see() -> None:
    MailEvent(EventKind.REPLIED, "sales", 1.0, return_date=dt.date(2026, 1, 1))
    with pytest.raises(ValueError, match="cannot report 'sent'"):
        MailEvent(EventKind.SENT, "sales", 1.0)


async def test_stream_feeds_listeners_and_bounded_consumers() -> None:
    stream = EventStream()
    heard: list[EventKind] = []
    stream.listen(lambda e: heard.append(e.kind))
    fast = stream.subscribe("fast", max_buffer=10)
    slow = stream.subscribe("slow", max_buffer=2)
    with pytest.raises(ValueError, match="subscribed twice"):
        stream.subscribe("slow")
    batch = [Event(EventKind.SENT, float(i)) for i in range(5)]
    stream.publish(batch)  # never waits, however far behind a consumer is
    assert heard == [EventKind.SENT] * 5
    assert stream.published == 5
    assert stream.dropped == {"fast": 0, "slow": 3}
    assert [fast.receive_nowait().at for _ in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [slow.receive_nowait().at for _ in range(2)] == [0.0, 1.0]


async def test_a_failing_listener_or_consumer_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    stream = EventStream()

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    stream.listen(broken)
    receive = stream.subscribe("consumer")
    seen: list[float] = []

    async def consumer(event: Event) -> None:
        if event.at == 1.0:
            raise RuntimeError("consumer bug")
        seen.append(event.at)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(events.consume, receive, consumer, "consumer")
        stream.publish([Event(EventKind.SENT, 0.0), Event(EventKind.SENT, 1.0), Event(EventKind.SENT, 2.0)])
        stream.close()
    assert seen == [0.0, 2.0]
    assert "event listener failed on sent" in caplog.text
    assert "event consumer consumer failed on sent" in caplog.text


async def test_a_consumer_takes_what_is_queued_in_one_scheduler_pass() -> None:
    # A group commit publishes several events at once; a pass of trio's scheduler per event was
    # Python work on the event loop's thread for every send (issue 14).
    stream = EventStream()
    receive = stream.subscribe("consumer")
    seen: list[float] = []
    passes = 0

    class Passes(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            nonlocal passes
            passes += task.name == "the consumer"

    async def consumer(event: Event) -> None:
        seen.append(event.at)

    trio.lowlevel.add_instrument(Passes())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(events.consume, receive, consumer, "consumer", name="the consumer")
        await trio.testing.wait_all_tasks_blocked()
        before = passes
        stream.publish([Event(EventKind.SENT, float(i)) for i in range(100)])
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [float(i) for i in range(100)]
        assert passes - before <= 2  # woken once; at most one more pass to wait again
        stream.close()
    assert seen == [float(i) for i in range(100)]


def test_a_numbered_event_is_a_copy_with_its_row_id() -> None:
    import dataclasses

    event = Event(EventKind.BOUNCED, 5.0, events.Bounce("hard", "550"), mailbox_id="sales", enrollment_id=3)
    numbered = event.numbered(42)
    assert numbered.id == 42 and event.id is None  # the original is left as it was
    assert dataclasses.replace(numbered, id=None) == event
    with pytest.raises(dataclasses.FrozenInstanceError):
        numbered.id = 43  # type: ignore[misc]
