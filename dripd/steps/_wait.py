"""The wait step: the contact waits this long (in real time) before the steps after it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dripd.errors import ValidationError
from dripd.model import Step, StepType
from dripd.steps._kind import Advance, Outcome, StepKind, Walk

# The seeds' duration fields, largest unit first (serialise picks the largest whole unit).
DURATION_KEYS = {"waitDays": 86400.0, "waitHours": 3600.0, "waitMinutes": 60.0, "delayMs": 0.001}

# Ten years: a longer wait is a mistake, and an unbounded one overflows the clock (waitHours 1e20
# was stored, then every due time computed from it failed to print). Bounding the sum of a
# sequence's waits, not only each, keeps every due time a date: now + 10 years.
MAX_WAIT_DAYS = 3650
_MAX_SECONDS = MAX_WAIT_DAYS * 86400.0


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
    if value * DURATION_KEYS[given[0]] > _MAX_SECONDS:
        raise ValidationError(f"{prefix}{given[0]}", f"must be at most {MAX_WAIT_DAYS} days")
    return Step(StepType.WAIT, wait_seconds=float(value) * DURATION_KEYS[given[0]], wait_unit=given[0])


def _in(seconds: float, key: str) -> float:
    """``seconds`` in the unit of ``key``, without the binary noise of the conversion there and
    back (0.0007 days is 60.47999999999999 s; divided again it must read 0.0007, not
    0.0007000000000000001): 12 significant digits are more than any duration given by hand."""
    return float(f"{seconds / DURATION_KEYS[key]:.12g}")


def serialise(step: Step) -> dict[str, Any]:
    """The duration in the unit it was given in (the echo matches the input); a step stored
    without its unit in the largest unit that holds it whole, else in milliseconds."""
    key = step.wait_unit if step.wait_unit in DURATION_KEYS else next(
        (k for k in DURATION_KEYS if _in(step.wait_seconds, k).is_integer()), "delayMs")
    value = _in(step.wait_seconds, key)
    return {"type": "wait", key: int(value) if value.is_integer() else value}


def check(steps: Sequence[Step], index: int) -> None:
    """The waits up to and including this one add up to at most MAX_WAIT_DAYS."""
    total = sum(s.wait_seconds for s in steps[:index + 1] if s.type is StepType.WAIT)
    if total > _MAX_SECONDS:
        step = steps[index]
        key = step.wait_unit if step.wait_unit in DURATION_KEYS else "waitDays"
        raise ValidationError(f"steps[{index}].{key}", f"the waits of a sequence add up to at most "
                                                       f"{MAX_WAIT_DAYS} days (this one makes {total / 86400:g})")


def plan(step: Step, walk: Walk) -> Outcome:
    """Waits add up in real time from the anchor; the window only matters to the email after."""
    return Advance(walk.at + step.wait_seconds)


KIND = StepKind(StepType.WAIT, ("delay",), parse, serialise, check, plan, fields=frozenset(DURATION_KEYS))
