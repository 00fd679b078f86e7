"""The wait step: the contact waits this long (in real time) before the steps after it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dripd.errors import ValidationError
from dripd.model import Step, StepType
from dripd.steps._kind import Advance, Outcome, StepKind, Walk

# The seeds' duration fields, largest unit first (serialise picks the largest whole unit).
DURATION_KEYS = {"waitDays": 86400.0, "waitHours": 3600.0, "waitMinutes": 60.0, "delayMs": 0.001}


def parse(data: Mapping[str, Any], prefix: str) -> Step:
    """A wait step from exactly one of waitDays, waitHours, waitMinutes or delayMs (> 0)."""
    given = [k for k in DURATION_KEYS if data.get(k) is not None]
    if not given:
        raise ValidationError(
            f"{prefix}waitDays", "a wait step needs one of waitDays, waitHours, waitMinutes, delayMs"
        )
    if len(given) > 1:
        raise ValidationError(f"{prefix}{given[1]}", f"give only one duration (also got {given[0]})")
    value = data[given[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValidationError(f"{prefix}{given[0]}", "must be a positive number")
    return Step(StepType.WAIT, wait_seconds=float(value) * DURATION_KEYS[given[0]])


def serialise(step: Step) -> dict[str, Any]:
    """The duration in the largest unit that holds it whole, else in milliseconds."""
    key = next((k for k, unit in DURATION_KEYS.items() if step.wait_seconds % unit == 0), "delayMs")
    value = step.wait_seconds / DURATION_KEYS[key]
    return {"type": "wait", key: int(value) if value == int(value) else value}


def check(steps: Sequence[Step], index: int) -> None:
    """A wait has no rule about its place in the list: parse already refused a bad duration."""


def plan(step: Step, walk: Walk) -> Outcome:
    """Waits add up in real time from the anchor; the window only matters to the email after."""
    return Advance(walk.at + step.wait_seconds)


KIND = StepKind(StepType.WAIT, ("delay",), parse, serialise, check, plan)
