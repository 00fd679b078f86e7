"""cadence.plan: the pure heart. Exact cases, then properties (hypothesis)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from dripd.cadence import Finish, SendStep, Signals, Wake, after_send, live_index, plan
from dripd.model import Condition, Step, StepType
from dripd.window import SendWindow

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400.0
ALWAYS = SendWindow()
OFFICE = SendWindow("Europe/Berlin", True, 9, 17)


def t(day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=BERLIN).timestamp()


def email(ord_: int, subject: str = "s") -> Step:
    return Step(StepType.EMAIL, id=ord_ + 100, ord=ord_, subject=subject, body="<p>b</p>")


def wait(ord_: int, seconds: float) -> Step:
    return Step(StepType.WAIT, id=ord_ + 100, ord=ord_, wait_seconds=seconds)


def cond(ord_: int, condition: Condition) -> Step:
    return Step(StepType.CONDITIONAL, id=ord_ + 100, ord=ord_, condition=condition)


SEED = [email(0), wait(1, 2 * DAY), cond(2, Condition.IF_REPLIED), email(3), wait(4, 5 * DAY), email(5)]


def test_first_email_goes_at_once_inside_the_window() -> None:
    assert plan(SEED, 0, t(3, 10), t(3, 10), OFFICE) == SendStep(SEED[0], t(3, 10))


def test_first_email_waits_for_the_window() -> None:
    assert plan(SEED, 0, t(3, 8), t(3, 8), OFFICE) == Wake(0, t(3, 9), t(3, 8))


def test_wait_then_conditional_wakes_at_the_conditional_time_not_the_window() -> None:
    # Thursday 10:00 + 2 days = Saturday 10:00; the conditional is evaluated then.
    assert plan(SEED, after_send(SEED[0]), t(3, 10), t(3, 10), OFFICE) == Wake(2, t(5, 10), t(5, 10))


def test_conditional_not_matched_rolls_the_email_to_monday() -> None:
    assert plan(SEED, 2, t(5, 10), t(5, 10), OFFICE, Signals()) == Wake(3, t(7, 9), t(5, 10))


def test_conditional_matched_skips_the_next_step() -> None:
    # Replied: the follow-up is skipped and the 5-day wait counts from Saturday -> Thursday 10:00.
    assert plan(SEED, 2, t(5, 10), t(5, 10), OFFICE, Signals(replied=True)) == Wake(5, t(10, 10), t(10, 10))


def test_each_condition_reads_its_own_signal() -> None:
    for condition, signals in ((Condition.IF_OPENED, Signals(opened=True)), (Condition.IF_CLICKED, Signals(clicked=True))):
        steps = [email(0), cond(1, condition), email(2), email(3)]
        assert plan(steps, 1, t(3, 10), t(3, 10), ALWAYS, signals) == SendStep(steps[3], t(3, 10))
        assert plan(steps, 1, t(3, 10), t(3, 10), ALWAYS, Signals()) == SendStep(steps[2], t(3, 10))


def test_due_but_run_after_the_window_closed_waits_for_the_next_opening() -> None:
    # Planned for Friday 16:50; the mailbox was throttled until 17:10: next is Monday 09:00.
    assert plan(SEED, 3, t(4, 16, 50), t(4, 17, 10), OFFICE) == Wake(3, t(7, 9), t(4, 16, 50))


def test_finish_after_the_last_step() -> None:
    assert plan(SEED, 6, t(3), t(3), ALWAYS) == Finish(6)


def test_deleted_step_moves_nobody_back_and_skips_nothing_unreached() -> None:
    # The contact's cursor points at step ord 3 (follow-up). Deleting ord 3 means the next
    # step is the wait at ord 4; deleting ord 1 (already passed) changes nothing.
    without_followup = [s for s in SEED if s.ord != 3]
    assert plan(without_followup, 3, t(7, 10), t(7, 10), ALWAYS) == Wake(5, t(12, 10), t(12, 10))
    without_first_wait = [s for s in SEED if s.ord != 1]
    assert plan(without_first_wait, 3, t(7, 10), t(7, 10), ALWAYS) == SendStep(SEED[3], t(7, 10))


def test_live_index_is_the_seed_step_index() -> None:
    assert live_index(SEED, 0) == 0
    assert live_index([s for s in SEED if s.ord != 1], 3) == 2
    assert live_index(SEED, 6) is None


windows = st.builds(
    lambda zone, weekdays, start, length: SendWindow(zone, weekdays, start, min(24, start + length)),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]),
    st.booleans(), st.integers(0, 23), st.integers(1, 24),
)
step_lists = st.lists(
    st.one_of(
        st.just("email"), st.floats(60, 10 * DAY).map(lambda s: ("wait", s)),
        st.sampled_from(list(Condition)).map(lambda c: ("cond", c)),
    ),
    min_size=1, max_size=8,
)


def build(kinds: list[Any]) -> list[Step]:
    steps = [email(0)]
    for i, kind in enumerate(kinds, start=1):
        if kind == "email":
            steps.append(email(i))
        elif kind[0] == "wait":
            steps.append(wait(i, kind[1]))
        else:
            steps.append(cond(i, kind[1]))
    return steps


@settings(max_examples=300, deadline=None)
@given(windows, step_lists, st.floats(t(1), t(28)), st.floats(0, 30 * DAY),
       st.booleans(), st.booleans(), st.booleans())
def test_property_a_send_is_only_ever_decided_inside_the_window(
    window: SendWindow, kinds: list[Any], anchor: float, lateness: float, replied: bool, opened: bool, clicked: bool,
) -> None:
    steps = build(kinds)
    now = anchor + lateness
    result = plan(steps, 0, anchor, now, window, Signals(replied, opened, clicked))
    if isinstance(result, SendStep):
        assert window.is_open(now)
    if isinstance(result, Wake):
        assert result.at > now


@settings(max_examples=200, deadline=None)
@given(windows, step_lists, st.floats(t(1), t(5)), st.lists(st.tuples(st.floats(0, 5 * DAY), st.floats(0, 9 * DAY)), max_size=6))
def test_property_pause_and_resume_never_sends_a_step_twice(
    window: SendWindow, kinds: list[Any], start: float, pauses: list[tuple[float, float]],
) -> None:
    """Simulate a contact walking the cadence as the engine does (plan, send, record), with the
    sequence paused for random stretches; every email step goes at most once, in order."""
    steps = build(kinds)
    cursor, anchor, now = 0, start, start
    pauses = sorted((start + a, start + a + b) for a, b in pauses)
    sent: list[int] = []
    for _ in range(200):
        for begin, end in pauses:
            if begin <= now < end:
                now = end  # held while paused: the next run happens on resume
        result = plan(steps, cursor, anchor, now, window)
        if isinstance(result, Finish):
            break
        if isinstance(result, Wake):
            cursor, anchor, now = result.cursor_ord, result.anchor_at, max(now, result.at)
            continue
        assert window.is_open(now)
        sent.append(result.step.ord)
        cursor, anchor = after_send(result.step), now
    assert len(sent) == len(set(sent)) and sent == sorted(sent)
    assert sent == [s.ord for s in steps if s.type is StepType.EMAIL and s.ord <= (sent[-1] if sent else -1)]


def test_sequence_settings_refuse_a_bad_window() -> None:
    import pytest

    from dripd.errors import ValidationError
    from dripd.model import SequenceSettings

    with pytest.raises(ValidationError) as info:
        SequenceSettings("s", "m", start_hour=17, end_hour=9)
    assert info.value.field == "sendWindowEndHour"
    with pytest.raises(ValidationError) as info:
        SequenceSettings("s", "m", timezone="Nowhere/Land")
    assert info.value.field == "timezone"
