"""The conditional step: when the contact has replied, opened or clicked by the time the walk
reaches it, the next step (the branched one) is passed over (seed 000)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dripd.errors import ValidationError
from dripd.model import Condition, Step, StepType
from dripd.steps._kind import Advance, Hold, Outcome, StepKind, Walk

_NAMES = frozenset(c.value for c in Condition)
_RULE = "must be one of " + ", ".join(c.value for c in Condition)


def parse(data: Mapping[str, Any], prefix: str) -> Step:
    """A conditional step from ``condition`` (if_replied, if_opened or if_clicked)."""
    condition = data.get("condition")
    if not isinstance(condition, str) or condition not in _NAMES:
        raise ValidationError(f"{prefix}condition", _RULE)
    return Step(StepType.CONDITIONAL, condition=Condition(condition))


def serialise(step: Step) -> dict[str, Any]:
    """The API shape: the type and the condition's name."""
    return {"type": "conditional", "condition": step.condition.value if step.condition else None}


def check(steps: Sequence[Step], index: int) -> None:
    """A conditional built in code (not parsed) must still carry its condition."""
    if steps[index].condition is None:
        raise ValidationError(f"steps[{index}].condition", _RULE)


def lint(steps: Sequence[Step], index: int) -> str | None:
    """A warning, not a refusal: a conditional as the last step passes over nothing. Steps are
    added one at a time, so the step it is meant to guard may simply not be there yet."""
    if steps[index].type is StepType.CONDITIONAL and index == len(steps) - 1:
        return "is the last step: a conditional passes over the step after it, and there is none (it does nothing)"
    return None


def plan(step: Step, walk: Walk) -> Outcome:
    """Evaluated at the moment the walk reaches it in time, so signals that arrive before then
    count; a match passes over the next step."""
    if walk.at > walk.now:
        return Hold(walk.at, walk.at)
    if step.condition is None:
        raise ValidationError("condition", f"step {step.id} has no condition; {_RULE}")
    return Advance(walk.at, skip=1 if walk.signals.matches(step.condition) else 0)


KIND = StepKind(StepType.CONDITIONAL, (), parse, serialise, check, plan, fields=frozenset({"condition"}))
