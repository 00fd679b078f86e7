"""The heart of dripd, pure: given an enrollment's position, its steps, its signals and "now",
what happens next. No I/O, no clock: the engine passes ``now`` in.

Positions are step ``ord`` values, which never change once given: the next step to run is the
first live step whose ``ord`` is >= the cursor, so deleting a step moves nobody back and makes
nobody skip a step it had not reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence as Seq

from dripd.model import Condition, Step, StepType


class Window(Protocol):
    def next_open(self, t: float) -> float: ...


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


@dataclass(frozen=True)
class SendStep:
    """Send this email step now. The cursor stays on it until the send is recorded."""

    step: Step
    anchor_at: float


@dataclass(frozen=True)
class Wake:
    """Nothing to do before ``at``; then plan again from ``cursor_ord`` counting from ``anchor_at``."""

    cursor_ord: int
    at: float
    anchor_at: float


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
    the moment the walk reaches it in time, so signals that arrive before then count.
    """
    ordered = sorted((s for s in steps if s.ord >= cursor_ord), key=lambda s: s.ord)
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
            # Seed 000: a match skips the contact past the branched (next) step.
            i += 2 if signals.matches(step.condition) else 1
            continue
        # Re-checked against "now", not only the planned time: a step that fell due while the
        # window was open but is run after it closed (throttled, paused, daemon down) waits.
        send_at = window.next_open(max(at, now))
        if send_at > now:
            return Wake(step.ord, send_at, at)
        return SendStep(step, at)
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
