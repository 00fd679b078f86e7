"""Step kinds: one module per kind, each holding that kind's parse (API/seed fields -> Step,
naming the field of any broken rule), serialise (Step -> fields), check (its rules inside a step
list) and plan (what the cadence walk does when it reaches a step of the kind). Pure, no I/O.

The modules are private (``_email``, ``_wait``, ``_conditional``); this package re-exports what
the rest of dripd uses: ``step_from_fields``, ``step_to_fields``, ``check_step_list``, the
registry ``KINDS`` (keyed by ``StepType``) and ``kind_of``. ``dripd.cadence`` dispatches to
``kind_of(step.type).plan`` and matches the outcome exhaustively (``typing.assert_never``); a
step whose kind is not registered raises ``UnknownStepKind``, so it can never fall through to
"send an email".

Adding a step kind touches:

- ``dripd/steps/_<kind>.py``: its parse, serialise, check and plan, and ``KIND = StepKind(...)``;
- its tests (``tests/unit/test_steps.py`` shows a kind defined in a test, registered and walked);
- one member in ``StepType`` (``dripd/model.py``) and one ``case`` in ``_kind_of`` below,
  which registers it. mypy --strict fails on ``_kind_of`` until that case exists, so a kind
  cannot be named without being registered.

Nothing else as long as the kind's data fits the fields ``Step`` already has (subject, body,
text, wait_seconds, condition, thread): storage keeps all of them whatever the kind, and the
engine sends what the walk says to send. A kind that needs new data also adds the field to
``Step`` (model.py), to its storage (``store/rows.py``: ``step_data``/``step_from_row``) and,
for a new JSON key, to the API's ``StepBody`` (``api/schemas.py``, which refuses unknown keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, assert_never

from dripd.model import Step, StepType
from dripd.steps import _conditional, _email, _wait
from dripd.steps._kind import Advance, Engagement, Hold, Outcome, Send, StepKind, Walk, Window
from dripd.steps._email import with_variant
from dripd.steps._registry import Registry, UnknownStepKind
from dripd.steps._wait import MAX_WAIT_DAYS

__all__ = [
    "KINDS",
    "MAX_WAIT_DAYS",
    "Advance",
    "Engagement",
    "Hold",
    "Outcome",
    "Registry",
    "Send",
    "StepKind",
    "UnknownStepKind",
    "Walk",
    "Window",
    "check_step_list",
    "kind_of",
    "step_list_warnings",
    "step_from_fields",
    "step_to_fields",
    "with_variant",
]


def _kind_of(step_type: StepType) -> StepKind:
    # Exhaustive over StepType: a member without a case here is a mypy error (assert_never).
    match step_type:
        case StepType.EMAIL:
            return _email.KIND
        case StepType.WAIT:
            return _wait.KIND
        case StepType.CONDITIONAL:
            return _conditional.KIND
        case _:
            assert_never(step_type)


KINDS = Registry(_kind_of(step_type) for step_type in StepType)


def kind_of(step_type: StepType) -> StepKind:
    """The registered kind of ``step_type``, or UnknownStepKind."""
    return KINDS.kind(step_type)


def step_from_fields(data: Mapping[str, Any], *, where: str = "") -> Step:
    """Build a step from API-shaped fields (seed names), naming the field of any broken rule."""
    return KINDS.step_from_fields(data, where=where)


def step_to_fields(step: Step) -> dict[str, Any]:
    """The API shape of a step (inverse of step_from_fields, durations in the largest whole unit)."""
    return KINDS.step_to_fields(step)


def check_step_list(steps: Sequence[Step]) -> None:
    """Rules on the whole list: the first step must be an email (both seeds), and each kind's
    own (only a threaded follow-up may leave its subject empty)."""
    KINDS.check_step_list(steps)


def step_list_warnings(steps: Sequence[Step]) -> list[tuple[str, str]]:
    """(field, message) of what is allowed but almost certainly a mistake in the list, for the
    API to answer alongside a saved sequence (a trailing conditional)."""
    found = []
    for index in range(len(steps)):
        message = _conditional.lint(steps, index)
        if message is not None:
            found.append((f"steps[{index}]", message))
    return found


def step_label(steps: Sequence[Step], step_id: int) -> str:
    """A step as the API names it, for logs: "step 2" by its index in ``steps`` (the sequence's
    live steps); the id is internal and means nothing to the user. A step since deleted is
    named by its id, as nothing else is left to name it by."""
    index = next((i for i, s in enumerate(steps) if s.id == step_id), None)
    return f"step {index}" if index is not None else f"a deleted step (id {step_id})"
