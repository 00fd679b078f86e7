"""What every step kind provides, and the small vocabulary of the cadence walk it takes part in.

The walk itself (which steps, in which order, from which cursor) is ``dripd.cadence``; a kind
only says what happens when the walk reaches one of its steps: go on (maybe later, maybe
passing over steps), stop here until a moment, or send this step now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dripd.model import Condition, Step, StepType
from dripd.quick_init import quick_init


class Window(Protocol):
    """A send window: the first moment at or after ``t`` when sending is allowed."""

    def next_open(self, t: float) -> float: ...


class Engagement(Protocol):
    """What the contact has done so far (``cadence.Signals`` is the one the daemon uses)."""

    def matches(self, condition: Condition) -> bool: ...


@quick_init
@dataclass(frozen=True, slots=True)
class Walk:
    """Where the walk stands when it reaches a step."""

    at: float  # when the contact reaches the step: its anchor plus the waits before it
    now: float
    window: Window
    signals: Engagement


@dataclass(frozen=True, slots=True)
class Advance:
    """Go on with the next step, reached at ``at``, passing over the ``skip`` steps after this one."""

    at: float
    skip: int = 0


@dataclass(frozen=True, slots=True)
class Hold:
    """Nothing to do before ``at``; then walk again from this step, waits counting from ``anchor_at``."""

    at: float
    anchor_at: float


@quick_init
@dataclass(frozen=True, slots=True)
class Send:
    """Send this step now; the contact reached it at ``anchor_at``."""

    anchor_at: float


# Closed on purpose: cadence matches it exhaustively, so a kind cannot invent a fourth outcome
# that the walk would silently treat as one of these.
Outcome = Advance | Hold | Send


@dataclass(frozen=True, slots=True)
class StepKind:
    """One step kind: its name and aliases in the API/seed field shape, and its four functions.

    ``parse(fields, prefix)`` builds a step from fields, raising ``ValidationError`` naming
    ``prefix + field``; ``serialise`` is its inverse; ``check(steps, index)`` enforces the kind's
    rules on a step inside a list (fields named ``steps[index].x``); ``plan`` is the kind's part
    of the cadence walk.
    """

    type: StepType
    aliases: tuple[str, ...]
    parse: Callable[[Mapping[str, Any], str], Step]
    serialise: Callable[[Step], dict[str, Any]]
    check: Callable[[Sequence[Step], int], None]
    plan: Callable[[Step, Walk], Outcome]
    # The API keys (besides ``type``) a step of the kind takes: any other is refused by name
    # rather than dropped (a waitDays on an email step would otherwise vanish). None: unchecked.
    fields: frozenset[str] | None = None
