"""The watch of endings heard by claimed sends (dripd/endings.py): which events mark a run."""

from __future__ import annotations

from dripd.endings import EndingWatch
from dripd.events import END_KIND, PAYLOAD_OF, Bounce, Event, EventKind, Payload


def _event(kind: EventKind, enrollment_id: int | None = None, sequence_id: int | None = 1) -> Event:
    cls = PAYLOAD_OF[kind]
    payload: Payload = Bounce("hard") if cls is Bounce else cls()
    return Event(kind, 0.0, payload, sequence_id=sequence_id, enrollment_id=enrollment_id)


def test_every_ending_marks_a_watched_run_and_only_it() -> None:
    for kind in END_KIND.values():
        watch = EndingWatch()
        watch.watch(7, 1)
        watch.watch(8, 1)
        watch.on_event(_event(kind, enrollment_id=7))
        watch.on_event(_event(kind, enrollment_id=9))  # not watched: nothing kept of it
        assert (watch.ended(7), watch.ended(8), watch.ended(9)) == (True, False, False), kind
        assert watch.watched() == 2


def test_what_does_not_end_an_enrollment_marks_nothing() -> None:
    watch = EndingWatch()
    watch.watch(7, 1)
    for kind in (EventKind.SENT, EventKind.OPENED, EventKind.CLICKED, EventKind.DELIVERED, EventKind.RETRY,
                 EventKind.AUTO_REPLIED, EventKind.MAILBOX_PAUSED, EventKind.SEQUENCE_COMPLETED):
        watch.on_event(_event(kind, enrollment_id=7))
    assert not watch.ended(7)


def test_a_paused_sequence_marks_its_runs() -> None:
    watch = EndingWatch()
    watch.watch(7, 1)
    watch.watch(8, 2)
    watch.watch(9, 1)
    watch.on_event(_event(EventKind.SEQUENCE_PAUSED, sequence_id=1))
    assert (watch.ended(7), watch.ended(8), watch.ended(9)) == (True, False, True)


def test_clear_and_forget_drop_the_mark() -> None:
    watch = EndingWatch()
    watch.watch(7, 1)
    watch.on_event(_event(EventKind.REPLIED, enrollment_id=7))
    watch.clear(7)  # the engine's answer to a false alarm: still watched, unmarked
    assert not watch.ended(7) and watch.watched() == 1
    watch.on_event(_event(EventKind.CANCELLED, enrollment_id=7))
    watch.forget(7)
    assert not watch.ended(7) and watch.watched() == 0
    watch.on_event(_event(EventKind.CANCELLED, enrollment_id=7))  # after the wire: nothing to stop
    assert not watch.ended(7)


def test_two_overlapping_runs_of_one_enrollment_keep_the_watch_until_both_end() -> None:
    watch = EndingWatch()
    watch.watch(7, 1)
    watch.watch(7, 1)  # a second run of the same enrollment (moved to another mailbox)
    watch.forget(7)  # the second ends first
    watch.on_event(_event(EventKind.REPLIED, enrollment_id=7))
    assert watch.ended(7), "the first run is still watched"
    watch.forget(7)
    assert not watch.ended(7) and watch.watched() == 0
