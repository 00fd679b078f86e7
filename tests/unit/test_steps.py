"""dripd.steps: each kind's parse/serialise round trip and error messages, the list rules, each
kind's part of the walk, and the registry (a kind defined here is registered and walked; an
unregistered kind is refused, never sent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest
from hypothesis import given, settings, strategies as st

from dripd import steps
from dripd.cadence import Finish, Plan, SendStep, Signals, Wake, plan, plan_with
from dripd.errors import ValidationError
from dripd.model import Condition, Step, StepType
from dripd.steps import (
    KINDS,
    Advance,
    Hold,
    Outcome,
    Registry,
    Send,
    StepKind,
    UnknownStepKind,
    Walk,
    check_step_list,
    kind_of,
    step_from_fields,
    step_list_warnings,
    step_to_fields,
)
from dripd.window import SendWindow

DAY = 86400.0
ALWAYS = SendWindow()
OFFICE = SendWindow("Europe/Berlin", True, 9, 17)
THURSDAY_10 = 1_796_288_400.0  # 2026-12-03 10:00 Europe/Berlin
EMAIL: dict[str, Any] = {"type": "email", "subject": "Hi", "body": "<p>b</p>"}


def refused(data: Mapping[str, Any], where: str = "steps[2]") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        step_from_fields(data, where=where)
    return caught.value


# -- email ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "email", "subject": "Hi {{firstName}}", "body": "<p>b</p>"},
        {"type": "email", "subject": "", "body": "<p>b</p>", "text": "plain", "thread": False},
    ],
)
def test_email_round_trip(fields: dict[str, Any]) -> None:
    step = step_from_fields(fields)
    assert step.type is StepType.EMAIL
    assert step_to_fields(step) == fields
    assert step_from_fields(step_to_fields(step)) == step


def test_email_seed_names_html_and_send_email() -> None:
    step = step_from_fields({"type": "send_email", "subject": "s", "html": "<p>x</p>"})
    assert step == Step(StepType.EMAIL, subject="s", body="<p>x</p>")
    assert step_to_fields(step) == {"type": "email", "subject": "s", "body": "<p>x</p>"}


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"subject": 3}, "steps[2].subject", "must be a string"),
        ({"subject": "a\r\nBcc: x"}, "steps[2].subject", "must not contain line breaks"),
        ({"body": "  "}, "steps[2].body", "an email step needs a non-empty HTML body"),
        ({"body": None}, "steps[2].body", "an email step needs a non-empty HTML body"),
        ({"text": 1}, "steps[2].text", "must be a string"),
        ({"thread": "yes"}, "steps[2].thread", "must be true or false"),
    ],
)
def test_email_errors_name_the_field(fields: dict[str, Any], field: str, rule: str) -> None:
    error = refused({**EMAIL, **fields})
    assert (error.field, error.rule) == (field, rule)


# -- wait -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "seconds"),
    [
        ({"type": "wait", "waitDays": 2}, 2 * DAY),
        ({"type": "wait", "waitHours": 36}, 36 * 3600.0),
        ({"type": "wait", "waitMinutes": 90}, 90 * 60.0),
        ({"type": "wait", "delayMs": 1500}, 1.5),
        ({"type": "wait", "delayMs": 0.5}, 0.0005),
    ],
)
def test_wait_round_trip_in_the_largest_whole_unit(fields: dict[str, Any], seconds: float) -> None:
    step = step_from_fields(fields)
    assert step == Step(StepType.WAIT, wait_seconds=seconds)
    assert step_to_fields(step) == fields
    assert step_from_fields(step_to_fields(step)) == step


def test_wait_is_answered_in_the_unit_it_was_given_in() -> None:
    assert step_to_fields(step_from_fields({"type": "delay", "waitHours": 48})) == {"type": "wait", "waitHours": 48}
    assert step_to_fields(step_from_fields({"type": "wait", "waitDays": 0.25})) == {"type": "wait", "waitDays": 0.25}
    # 0.0007 days is 60.47999999999999 s in binary: the echo must still read what was typed.
    assert step_to_fields(step_from_fields({"type": "wait", "waitDays": 0.0007})) == {"type": "wait", "waitDays": 0.0007}
    assert step_to_fields(step_from_fields({"type": "wait", "waitMinutes": 0.1})) == {"type": "wait", "waitMinutes": 0.1}


def test_wait_stored_without_its_unit_takes_the_largest_whole_one() -> None:
    assert step_to_fields(Step(StepType.WAIT, wait_seconds=48 * 3600.0)) == {"type": "wait", "waitDays": 2}
    assert step_to_fields(Step(StepType.WAIT, wait_seconds=0.0007 * DAY)) == {"type": "wait", "delayMs": 60480}


@pytest.mark.parametrize(("fields", "field"), [
    ({"type": "email", "subject": "Hi", "body": "<p>x</p>", "waitDays": 2}, "waitDays"),
    ({"type": "wait", "waitDays": 2, "subject": "Hi"}, "subject"),
    ({"type": "conditional", "condition": "if_opened", "delayMs": 5}, "delayMs"),
])
def test_a_field_of_another_kind_is_refused_by_name(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        step_from_fields(fields, where="steps[1]")
    assert caught.value.field == f"steps[1].{field}"
    assert "does not apply to a" in caught.value.rule


@pytest.mark.parametrize(("subject", "body", "field", "words"), [
    ("Hi {{firstName", "<p>x</p>", "subject", "unclosed merge tag"),
    ("Hi", "<p>Hello {{firstName|there</p>", "body", "unclosed merge tag"),
    ("x" * 100_000, "<p>x</p>", "subject", "at most 998 characters"),
])
def test_email_text_that_cannot_be_meant_is_refused(subject: str, body: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        step_from_fields({"type": "email", "subject": subject, "body": body})
    assert caught.value.field == field and words in caught.value.rule


def test_a_trailing_conditional_is_warned_about_not_refused() -> None:
    steps = [step_from_fields(EMAIL), step_from_fields({"type": "conditional", "condition": "if_replied"})]
    check_step_list(steps)
    assert [field for field, _ in step_list_warnings(steps)] == ["steps[1]"]
    assert step_list_warnings(steps + [step_from_fields(EMAIL)]) == []


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({}, "steps[2].waitDays", "a wait step needs one of waitDays, waitHours, waitMinutes, delayMs"),
        ({"waitDays": None}, "steps[2].waitDays",
         "a wait step needs one of waitDays, waitHours, waitMinutes, delayMs"),
        ({"waitDays": 1, "delayMs": 5}, "steps[2].delayMs", "give only one duration (also got waitDays)"),
        ({"waitHours": -1}, "steps[2].waitHours", "must be a positive number"),
        ({"waitMinutes": 0}, "steps[2].waitMinutes", "must be a positive number"),
        ({"waitDays": True}, "steps[2].waitDays", "must be a positive number"),
        ({"delayMs": "5"}, "steps[2].delayMs", "must be a positive number"),
    ],
)
def test_wait_errors_name_the_field(fields: dict[str, Any], field: str, rule: str) -> None:
    error = refused({"type": "wait", **fields})
    assert (error.field, error.rule) == (field, rule)


# -- conditional ----------------------------------------------------------------------------


@pytest.mark.parametrize("condition", list(Condition))
def test_conditional_round_trip(condition: Condition) -> None:
    fields = {"type": "conditional", "condition": condition.value}
    step = step_from_fields(fields)
    assert step == Step(StepType.CONDITIONAL, condition=condition)
    assert step_to_fields(step) == fields


@pytest.mark.parametrize("condition", [None, "if_bounced", 1, ["if_replied"]])
def test_conditional_errors_name_the_field(condition: object) -> None:
    error = refused({"type": "conditional", "condition": condition})
    assert (error.field, error.rule) == ("steps[2].condition", "must be one of if_replied, if_opened, if_clicked")


# -- type and the list rules ----------------------------------------------------------------


def test_unknown_or_missing_type_names_the_field() -> None:
    assert refused({"type": "sms"}).rule == "must be one of email, wait, conditional (or send_email, delay)"
    assert refused({}).rule == "must be one of email, wait, conditional"
    assert refused({"type": 5}, where="").field == "type"
    assert refused({"type": "sms"}).field == "steps[2].type"


def test_the_first_step_must_be_an_email() -> None:
    with pytest.raises(ValidationError) as caught:
        check_step_list([step_from_fields({"type": "wait", "waitDays": 1}), step_from_fields(EMAIL)])
    assert caught.value.field == "steps[0].type"
    check_step_list([])  # an empty sequence is allowed (steps come later)


def test_only_a_threaded_follow_up_may_leave_its_subject_empty() -> None:
    first = step_from_fields(EMAIL)
    blank_threaded = step_from_fields({"type": "email", "subject": "", "body": "x"})
    blank_unthreaded = step_from_fields({"type": "email", "subject": " ", "body": "x", "thread": False})
    check_step_list([first, blank_threaded])
    for bad, field in (([blank_threaded], "steps[0].subject"), ([first, first, blank_unthreaded], "steps[2].subject")):
        with pytest.raises(ValidationError) as caught:
            check_step_list(bad)
        assert caught.value.field == field


def test_a_conditional_built_in_code_needs_its_condition() -> None:
    with pytest.raises(ValidationError) as caught:
        check_step_list([step_from_fields(EMAIL), Step(StepType.CONDITIONAL)])
    assert caught.value.field == "steps[1].condition"


# -- each kind's part of the walk -----------------------------------------------------------


def walk(at: float, now: float, window: SendWindow = ALWAYS, signals: Signals = Signals()) -> Walk:
    return Walk(at, now, window, signals)


def test_email_plan_sends_inside_the_window_and_holds_outside() -> None:
    email = kind_of(StepType.EMAIL)
    step = step_from_fields(EMAIL)
    assert email.plan(step, walk(THURSDAY_10, THURSDAY_10, OFFICE)) == Send(THURSDAY_10)
    evening = THURSDAY_10 + 9 * 3600  # 19:00: held until Friday 09:00, anchored where it was
    assert email.plan(step, walk(evening, evening, OFFICE)) == Hold(THURSDAY_10 + 23 * 3600, evening)
    # Reached in the future: held until then even though the window is open now.
    assert email.plan(step, walk(THURSDAY_10 + 60, THURSDAY_10)) == Hold(THURSDAY_10 + 60, THURSDAY_10 + 60)


def test_wait_plan_moves_the_walk_on_in_real_time() -> None:
    step = step_from_fields({"type": "wait", "waitDays": 2})
    assert kind_of(StepType.WAIT).plan(step, walk(100.0, 0.0, OFFICE)) == Advance(100.0 + 2 * DAY)


def test_conditional_plan_holds_until_reached_then_skips_on_a_match() -> None:
    conditional = kind_of(StepType.CONDITIONAL)
    step = Step(StepType.CONDITIONAL, condition=Condition.IF_OPENED)
    assert conditional.plan(step, walk(50.0, 10.0)) == Hold(50.0, 50.0)
    assert conditional.plan(step, walk(50.0, 50.0)) == Advance(50.0, skip=0)
    assert conditional.plan(step, walk(50.0, 60.0, signals=Signals(opened=True))) == Advance(50.0, skip=1)


# -- the walk is exactly the one before the split -------------------------------------------


def reference_plan(steps_: Sequence[Step], cursor_ord: int, anchor_at: float, now: float, window: SendWindow,
                   signals: Signals) -> Plan:
    """cadence.plan as it was written before the step kinds had their modules (if/elif)."""
    ordered = sorted((s for s in steps_ if s.ord >= cursor_ord), key=lambda s: s.ord)
    at = anchor_at
    i = 0
    while i < len(ordered):
        step = ordered[i]
        if step.type is StepType.WAIT:
            at += step.wait_seconds
            i += 1
            continue
        if step.type is StepType.CONDITIONAL:
            if at > now:
                return Wake(step.ord, at, at)
            assert step.condition is not None
            i += 2 if signals.matches(step.condition) else 1
            continue
        send_at = window.next_open(max(at, now))
        if send_at > now:
            return Wake(step.ord, send_at, at)
        return SendStep(step, at)
    return Finish(ordered[-1].ord + 1 if ordered else cursor_ord)


STEP = st.one_of(
    st.builds(lambda: Step(StepType.EMAIL, subject="s", body="b")),
    st.builds(lambda s: Step(StepType.WAIT, wait_seconds=s), st.floats(1, 10 * DAY)),
    st.builds(lambda c: Step(StepType.CONDITIONAL, condition=c), st.sampled_from(list(Condition))),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(STEP, max_size=8),
    st.integers(0, 8),
    st.floats(0, 20 * DAY),
    st.floats(0, 40 * DAY),
    st.sampled_from([ALWAYS, OFFICE]),
    st.builds(Signals, st.booleans(), st.booleans(), st.booleans()),
)
def test_plan_matches_the_walk_before_the_split(
    kinds: list[Step], cursor: int, anchor: float, later: float, window: SendWindow, signals: Signals
) -> None:
    numbered = [Step(s.type, id=100 + i, ord=i, subject=s.subject, body=s.body, wait_seconds=s.wait_seconds,
                     condition=s.condition) for i, s in enumerate(kinds)]
    start = THURSDAY_10 + anchor
    now = start + later
    assert plan(numbered, cursor, start, now, window, signals) == reference_plan(numbered, cursor, start, now,
                                                                                window, signals)


# -- the registry -----------------------------------------------------------------------------


def test_every_step_type_has_its_kind() -> None:
    assert KINDS.types == tuple(StepType)
    assert all(kind_of(t).type is t for t in StepType)


def test_a_name_or_type_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        Registry([kind_of(StepType.EMAIL), kind_of(StepType.EMAIL)])
    wait = kind_of(StepType.WAIT)
    clash = StepKind(cast(StepType, "pause"), ("delay",), wait.parse, wait.serialise, wait.check, wait.plan)
    with pytest.raises(ValueError, match="'delay' is taken by wait"):
        Registry([wait, clash])


# A kind defined entirely here, as a new kind's module would define it: a wait counted in whole
# hours that may not end a sequence. A real kind adds HOURS to StepType (model.py); the string
# stands in for that member so this test needs no edit outside itself.
HOURS = cast(StepType, "hours")


def _hours_parse(data: Mapping[str, Any], prefix: str) -> Step:
    value = data.get("hours")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"{prefix}hours", "must be a positive whole number")
    return Step(HOURS, wait_seconds=value * 3600.0)


def _hours_serialise(step: Step) -> dict[str, Any]:
    return {"type": "hours", "hours": int(step.wait_seconds // 3600)}


def _hours_check(steps_: Sequence[Step], index: int) -> None:
    if index == len(steps_) - 1:
        raise ValidationError(f"steps[{index}].type", "an hours step cannot end a sequence")


def _hours_plan(step: Step, walk: Walk) -> Outcome:
    return Advance(walk.at + step.wait_seconds)


HOURS_KIND = StepKind(HOURS, ("pause_hours",), _hours_parse, _hours_serialise, _hours_check, _hours_plan)
WITH_HOURS = Registry([*(kind_of(t) for t in StepType), HOURS_KIND])


def test_a_kind_defined_in_one_place_is_parsed_checked_and_walked() -> None:
    fields: list[dict[str, Any]] = [EMAIL, {"type": "pause_hours", "hours": 3}, {**EMAIL, "subject": "Again"}]
    parsed = [WITH_HOURS.step_from_fields(f, where=f"steps[{i}]") for i, f in enumerate(fields)]
    assert WITH_HOURS.step_to_fields(parsed[1]) == {"type": "hours", "hours": 3}
    WITH_HOURS.check_step_list(parsed)
    with pytest.raises(ValidationError) as caught:
        WITH_HOURS.check_step_list(parsed[:2])
    assert caught.value.field == "steps[1].type"
    with pytest.raises(ValidationError) as caught:
        WITH_HOURS.step_from_fields({"type": "hours", "hours": 1.5}, where="steps[1]")
    assert caught.value.field == "steps[1].hours"
    numbered = [Step(s.type, id=i, ord=i, subject=s.subject, body=s.body, wait_seconds=s.wait_seconds)
                for i, s in enumerate(parsed)]
    start = THURSDAY_10
    # The email is reached three hours on and held until then (its anchor is that moment too).
    assert plan_with(WITH_HOURS, numbered, 1, start, start, ALWAYS) == Wake(2, start + 3 * 3600, start + 3 * 3600)
    later = start + 3 * 3600
    assert plan_with(WITH_HOURS, numbered, 1, start, later, ALWAYS) == SendStep(numbered[2], later)


def test_an_unregistered_kind_is_refused_never_sent() -> None:
    stray = Step(HOURS, id=7, ord=1, wait_seconds=3600.0)
    email = Step(StepType.EMAIL, id=8, ord=2, subject="s", body="b")
    with pytest.raises(UnknownStepKind) as caught:
        plan([stray, email], 1, THURSDAY_10, THURSDAY_10, ALWAYS)
    assert caught.value.details == {"type": "hours"} and caught.value.code == "unknown_step_kind"
    with pytest.raises(UnknownStepKind):
        step_to_fields(stray)
    with pytest.raises(UnknownStepKind):
        check_step_list([email, stray])
    with pytest.raises(ValidationError) as refusal:
        step_from_fields({"type": "hours", "hours": 1}, where="steps[1]")
    assert refusal.value.field == "steps[1].type"
    # A registry without the wait kind refuses a wait step instead of walking past it.
    no_wait = Registry([kind_of(StepType.EMAIL), kind_of(StepType.CONDITIONAL)])
    wait = Step(StepType.WAIT, id=9, ord=0, wait_seconds=DAY)
    with pytest.raises(UnknownStepKind):
        plan_with(no_wait, [wait, email], 0, THURSDAY_10, THURSDAY_10, ALWAYS)


def test_the_package_says_which_files_a_new_kind_touches() -> None:
    doc = steps.__doc__ or ""
    for part in ("dripd/steps/_<kind>.py", "StepType", "_kind_of", "tests/unit/test_steps.py"):
        assert part in doc
