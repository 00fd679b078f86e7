"""A set of step kinds keyed by ``StepType``, and the operations that dispatch to them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dripd.errors import DripdError, ValidationError
from dripd.model import Step, StepType
from dripd.steps._kind import StepKind


class UnknownStepKind(DripdError):
    """A step whose kind is not registered reached code that must run it: it is refused (never
    treated as some other kind). A daemon fault, not a bad request, hence the default 500."""

    code = "unknown_step_kind"


class Registry:
    """Step kinds by type and by every name (type and aliases) the API accepts for them."""

    __slots__ = ("_by_type", "_by_name")

    def __init__(self, kinds: Iterable[StepKind]) -> None:
        self._by_type: dict[StepType, StepKind] = {}
        self._by_name: dict[str, StepKind] = {}
        for kind in kinds:
            if kind.type in self._by_type:
                raise ValueError(f"step kind {kind.type!s} is registered twice")
            self._by_type[kind.type] = kind
            for name in (str(kind.type), *kind.aliases):
                if name in self._by_name:
                    raise ValueError(f"step kind name {name!r} is taken by {self._by_name[name].type!s}")
                self._by_name[name] = kind

    @property
    def types(self) -> tuple[StepType, ...]:
        return tuple(self._by_type)

    def kind(self, step_type: StepType) -> StepKind:
        """The kind of ``step_type``, or UnknownStepKind."""
        try:
            return self._by_type[step_type]
        except KeyError:
            raise UnknownStepKind(
                f"no step kind {step_type!s} is registered; the step is not run",
                details={"type": str(step_type)},
            ) from None

    def step_from_fields(self, data: Mapping[str, Any], *, where: str = "") -> Step:
        """Build a step from API-shaped fields (seed names), naming the field of any broken rule;
        ``where`` (e.g. ``steps[2]``) prefixes every field name."""
        prefix = f"{where}." if where else ""
        raw_type = data.get("type")
        kind = self._by_name.get(raw_type) if isinstance(raw_type, str) else None
        if kind is None:
            names = ", ".join(str(t) for t in self._by_type)
            aliases = ", ".join(a for k in self._by_type.values() for a in k.aliases)
            rule = f"must be one of {names}"
            if isinstance(raw_type, str) and aliases:
                rule += f" (or {aliases})"
            raise ValidationError(f"{prefix}type", rule)
        if kind.fields is not None:
            for key, value in data.items():
                if key != "type" and key not in kind.fields and value is not None:
                    article = "an" if str(kind.type)[0] in "aeiou" else "a"
                    raise ValidationError(f"{prefix}{key}", f"does not apply to {article} {kind.type} step "
                                                            f"(it takes {', '.join(sorted(kind.fields))})")
        return kind.parse(data, prefix)

    def step_to_fields(self, step: Step) -> dict[str, Any]:
        """The API shape of a step (the inverse of ``step_from_fields``)."""
        return self.kind(step.type).serialise(step)

    def check_step_list(self, steps: Sequence[Step]) -> None:
        """Rules on the whole list: the first step must be an email (both seeds), then each
        kind's own rules on its steps."""
        if steps and steps[0].type is not StepType.EMAIL:
            raise ValidationError("steps[0].type", "the first step must be an email")
        for index, step in enumerate(steps):
            self.kind(step.type).check(steps, index)
