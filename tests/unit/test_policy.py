"""The pure rules of dripd.policy: each decision from plain values."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from dripd import policy
from dripd.errors import AlreadyEnrolled, Conflict, ReadOnly, Suppressed
from dripd.hookspecs import SendOutcome, SendResult
from dripd.model import EnrollmentStatus, SequenceSettings, SequenceStatus

RULES = policy.RetryRules(max_attempts=3, max_age_seconds=48 * 3600, base_seconds=60.0)


def decide(outcome: SendOutcome, *, attempts: int = 1, age: float = 0.0, jitter: float = 0.0,
           detail: str = "d", status: str | None = None) -> policy.SendDecision:
    return policy.send_decision(SendResult(outcome, detail, status=status), attempts=attempts,
                                first_attempt_at=1000.0 - age, now=1000.0, rules=RULES, jitter=jitter)


def test_accepted_is_sent() -> None:
    assert decide(SendOutcome.ACCEPTED) == policy.Sent()


def test_transient_backs_off_exponentially_with_jitter() -> None:
    assert decide(SendOutcome.TRANSIENT, attempts=1) == policy.RetryAt(1060.0, "d")
    assert decide(SendOutcome.TRANSIENT, attempts=2) == policy.RetryAt(1120.0, "d")
    assert decide(SendOutcome.TRANSIENT, attempts=2, jitter=0.5) == policy.RetryAt(1000 + 120 * 1.125, "d")


def test_transient_becomes_a_soft_bounce_when_retries_run_out() -> None:
    by_count = decide(SendOutcome.TRANSIENT, attempts=3)
    by_age = decide(SendOutcome.TRANSIENT, attempts=1, age=48 * 3600)
    for decision in (by_count, by_age):
        assert isinstance(decision, policy.Bounced)
        assert decision.bounce_class == "soft" and not decision.suppresses
    assert isinstance(by_count, policy.Bounced) and by_count.detail.startswith("retries exhausted after 3 attempts")


def test_permanent_is_a_hard_bounce_that_suppresses() -> None:
    decision = decide(SendOutcome.PERMANENT, detail="550 5.1.1 no such user", status="5.1.1")
    assert decision == policy.Bounced("hard", "550 5.1.1 no such user", "5.1.1")
    assert isinstance(decision, policy.Bounced) and decision.suppresses


def test_sender_blocked_and_uncertain() -> None:
    assert decide(SendOutcome.SENDER_BLOCKED, detail="5.7.1") == policy.SenderRefused("5.7.1")
    assert decide(SendOutcome.UNCERTAIN, detail="lost") == policy.Uncertain("lost")


def test_enrollment_status_of_bounced_and_failed() -> None:
    assert policy.enrollment_status_of(policy.Bounced("hard", "x")) is EnrollmentStatus.BOUNCED
    assert policy.enrollment_status_of(policy.Failed("x")) is EnrollmentStatus.FAILED


@pytest.mark.parametrize(("sequence", "latest", "suppressed", "expected"), [
    (SequenceStatus.ACTIVE, None, None, None),
    (SequenceStatus.DRAFT, None, None, None),
    (SequenceStatus.COMPLETED, None, None, policy.Refusal.SEQUENCE_COMPLETED),
    (SequenceStatus.ACTIVE, EnrollmentStatus.ACTIVE, None, policy.Refusal.ALREADY_ENROLLED),
    (SequenceStatus.ACTIVE, EnrollmentStatus.COMPLETED, None, None),
    (SequenceStatus.ACTIVE, EnrollmentStatus.CANCELLED, None, None),
    (SequenceStatus.ACTIVE, EnrollmentStatus.REPLIED, None, policy.Refusal.ENDED),
    (SequenceStatus.ACTIVE, EnrollmentStatus.BOUNCED, None, policy.Refusal.ENDED),
    (SequenceStatus.ACTIVE, EnrollmentStatus.FAILED, None, policy.Refusal.ENDED),
    (SequenceStatus.ACTIVE, None, "unsubscribed", policy.Refusal.SUPPRESSED),
    (SequenceStatus.PAUSED, EnrollmentStatus.COMPLETED, "bounced", policy.Refusal.SUPPRESSED),
])
def test_enrollment_refusal(sequence: SequenceStatus, latest: EnrollmentStatus | None, suppressed: str | None,
                            expected: policy.Refusal | None) -> None:
    assert policy.enrollment_refusal(sequence, latest, suppressed) is expected


def test_refusal_errors_carry_the_documented_codes() -> None:
    cases = {policy.Refusal.SEQUENCE_COMPLETED: ReadOnly, policy.Refusal.ALREADY_ENROLLED: AlreadyEnrolled,
             policy.Refusal.SUPPRESSED: Suppressed, policy.Refusal.ENDED: Conflict}
    for refusal, cls in cases.items():
        error = policy.refusal_error(refusal, "a@b.example", 7, {"email": "a@b.example"})
        assert type(error) is cls
        assert error.code == refusal.value
        assert error.message.startswith("a@b.example: ") and "sequence 7" in error.message


def test_suppression_end_status() -> None:
    assert policy.suppression_end_status("bounced") is EnrollmentStatus.BOUNCED
    for reason in ("unsubscribed", "complaint", "manual"):
        assert policy.suppression_end_status(reason) is EnrollmentStatus.UNSUBSCRIBED


def test_autocompletes_only_an_active_autocomplete_sequence_with_nobody_left() -> None:
    assert policy.autocompletes(SequenceStatus.ACTIVE, True, 0)
    assert not policy.autocompletes(SequenceStatus.ACTIVE, True, 1)
    assert not policy.autocompletes(SequenceStatus.ACTIVE, False, 0)
    assert not policy.autocompletes(SequenceStatus.PAUSED, True, 0)


def test_bounce_guard_waits_for_the_minimum_then_trips_at_the_threshold() -> None:
    guard = policy.BounceGuard(0.05)
    assert guard.trips(19, 19) is None  # under the minimum of 20 sends: says little
    assert guard.trips(0, 20) is None
    assert guard.trips(1, 21) is None  # 4.8 %
    reason = guard.trips(1, 20)  # exactly 5 % reaches 5 %
    assert reason == "auto-paused: 1 hard bounces in the last 20 sends (5.0% >= 5.0%)"
    assert policy.BounceGuard(0.02, min_sends=5).trips(1, 5) is not None
    assert policy.BounceGuard(0.02).trips(1, 50) is not None and policy.BounceGuard(0.02).trips(1, 51) is None


def test_the_shield_rests_after_a_manual_resume() -> None:
    assert not policy.shield_resting(None, 1000.0, 7)
    assert policy.shield_resting(0.0, 7 * 86400 - 1, 7)
    assert not policy.shield_resting(0.0, 7 * 86400, 7)


def test_colleague_domain() -> None:
    assert policy.colleague_domain("Ann@Acme.example", True, True) == "acme.example"
    assert policy.colleague_domain("ann@gmail.com", True, True) is None  # freemail says nothing of a company
    assert policy.colleague_domain("ann@acme.example", False, True) is None
    assert policy.colleague_domain("ann@acme.example", True, False) is None  # the reply did not stop her
    assert policy.colleague_domain(None, True, True) is None


def test_auto_reply_resume_the_day_after_the_return_date_in_the_sequence_zone() -> None:
    now = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc).timestamp()
    back = policy.auto_reply_resume_at(dt.date(2026, 3, 9), "Europe/Berlin", now, 3.0)
    assert back == dt.datetime(2026, 3, 9, 23, tzinfo=dt.timezone.utc).timestamp()  # 10 March, midnight in Berlin
    assert policy.auto_reply_resume_at(dt.date(2026, 3, 1), "UTC", now, 3.0) == now + 3 * 86400  # date passed
    assert policy.auto_reply_resume_at(None, "UTC", now, 1.5) == now + 1.5 * 86400


def test_rotation_gives_each_contact_the_mailbox_with_most_capacity_left() -> None:
    assert policy.assign_mailboxes(["a", "b", "c"], {"a": 5, "b": 2, "c": 5}, 4) == ["a", "c", "a", "c"]
    # ties go round-robin from the turn the caller keeps, so one-by-one enrollments spread too
    assert [policy.assign_mailboxes(["a", "b"], {"a": 9, "b": 9}, 1, turn)[0] for turn in range(4)] == ["a", "b"] * 2
    # a paused mailbox (no capacity entry) takes none; if all are paused, contacts wait on the first
    assert set(policy.assign_mailboxes(["a", "b"], {"b": 3}, 5)) == {"b"}
    assert policy.assign_mailboxes(["a", "b"], {}, 2) == ["a", "a"]


@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 50), min_size=1), st.integers(0, 300),
       st.integers(0, 10))
def test_rotation_never_puts_more_on_a_mailbox_than_it_can_send_while_others_have_room(
    capacity: dict[str, int], count: int, turn: int,
) -> None:
    pool = sorted(capacity)
    assigned = policy.assign_mailboxes(pool, capacity, count, turn)
    assert len(assigned) == count and set(assigned) <= set(pool)
    load = {m: assigned.count(m) for m in pool}
    if count <= sum(capacity.values()):
        assert all(load[m] <= capacity[m] for m in pool)  # caps hold across the pool
    # each member that got a contact had the most left when it got it: it ends at most one below any other
    left = {m: capacity[m] - load[m] for m in pool}
    for x in pool:
        if load[x]:
            assert all(left[x] >= left[y] - 1 for y in pool)


def test_auto_complete_is_off_by_default_and_its_rule_says_when_it_fires() -> None:
    assert SequenceSettings("drip", "sales").auto_complete is False  # seed 003: enroll as people come
    assert not policy.autocompletes(SequenceStatus.ACTIVE, False, 0)
    assert policy.autocompletes(SequenceStatus.ACTIVE, True, 0)
    assert not policy.autocompletes(SequenceStatus.ACTIVE, True, 1)
    assert policy.autocomplete_rule(SequenceStatus.ACTIVE, False, 0).startswith("off: the sequence stays open")
    assert "(3 active now)" in policy.autocomplete_rule(SequenceStatus.ACTIVE, True, 3)
    assert policy.autocomplete_rule(SequenceStatus.DRAFT, True, 2).startswith("on: once started")
    assert policy.autocomplete_rule(SequenceStatus.COMPLETED, True, 0).startswith("completed: no new enrollments")
