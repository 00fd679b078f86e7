"""The heart of dripd, pure: given an enrollment's position, its steps, its signals and "now",
what happens next. No I/O, no clock: the engine passes ``now`` in.

Positions are step ``ord`` values, which never change once given: the next step to run is the
first live step whose ``ord`` is >= the cursor, so deleting a step moves nobody back and makes
nobody skip a step it had not reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence as Seq, assert_never

from dripd.model import Condition, Step
from dripd.quick_init import quick_init
from dripd.steps import KINDS, Advance, Hold, Registry, Send, Walk
from dripd.steps import Window as Window  # the walk's window; re-exported for cadence's callers


@quick_init
@dataclass(frozen=True)
class Signals:
    """Engagement seen for one enrollment so far (flagged scanner hits excluded)."""

    replied: bool = False
    opened: bool = False
    clicked: bool = False

    def matches(self, condition: Condition) -> bool:
        return {
            Condition.IF_REPLIED: self.replied,
            Condition.IF_OPENED: self.opened,
            Condition.IF_CLICKED: self.clicked,
        }[condition]


@quick_init
@dataclass(frozen=True)
class SendStep:
    """Send this email step now. The cursor stays on it until the send is recorded."""

    step: Step
    anchor_at: float


@quick_init
@dataclass(frozen=True)
class Wake:
    """Nothing to do before ``at``; then plan again from ``cursor_ord`` counting from ``anchor_at``."""

    cursor_ord: int
    at: float
    anchor_at: float


@quick_init
@dataclass(frozen=True)
class Finish:
    """No steps left: the enrollment is completed."""

    cursor_ord: int


Plan = SendStep | Wake | Finish


def plan(
    steps: Seq[Step],
    cursor_ord: int,
    anchor_at: float,
    now: float,
    window: Window,
    signals: Signals = Signals(),
) -> Plan:
    """Walk the live steps from the cursor and say what is due.

    Waits add up in real time from ``anchor_at`` (when the contact reached the cursor); an
    email then rolls forward to the window's next open moment. A conditional is evaluated at
    the moment the walk reaches it in time, so signals that arrive before then count. What
    each kind does when the walk reaches it is that kind's ``plan`` in ``dripd.steps``.
    """
    return plan_with(KINDS, steps, cursor_ord, anchor_at, now, window, signals)


def plan_with(
    kinds: Registry,
    steps: Seq[Step],
    cursor_ord: int,
    anchor_at: float,
    now: float,
    window: Window,
    signals: Signals = Signals(),
) -> Plan:
    """``plan`` with the step kinds of ``kinds`` (the daemon's are ``dripd.steps.KINDS``).

    Each step's kind says what the walk does there; a step of a kind ``kinds`` does not hold
    raises ``UnknownStepKind`` (never sent as if it were an email).
    """
    ordered = sorted((s for s in steps if s.ord >= cursor_ord), key=lambda s: s.ord)
    at = anchor_at
    i = 0
    while i < len(ordered):
        step = ordered[i]
        outcome = kinds.kind(step.type).plan(step, Walk(at, now, window, signals))
        match outcome:
            case Advance():
                at = outcome.at
                i += 1 + outcome.skip
            case Hold():
                return Wake(step.ord, outcome.at, outcome.anchor_at)
            case Send():
                return SendStep(step, outcome.anchor_at)
            case _:
                assert_never(outcome)
    return Finish(ordered[-1].ord + 1 if ordered else cursor_ord)


def after_send(step: Step) -> int:
    """The cursor once ``step`` has been sent: the first step after it."""
    return step.ord + 1


def live_index(steps: Seq[Step], cursor_ord: int) -> int | None:
    """The seed's ``stepIndex`` of a cursor: the index of the next live step, None past the end."""
    ordered = sorted(s.ord for s in steps)
    for index, ord_ in enumerate(ordered):
        if ord_ >= cursor_ord:
            return index
    return None
