"""Sequences and their steps (seed 000's paths), start/pause/resume/complete and clone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query

from dripd.api.advice import name_warnings, steps_warnings, with_warnings
from dripd.api.deps import ServicesDep, SequenceId, StepIndex
from dripd.api.schemas import CloneBody, SequenceBody, SettingsPatch, StepBody, StepPatch, sequence_json, step_json
from dripd.errors import NotFound
from dripd.model import Action, Step
from dripd.steps import check_step_list, step_from_fields, step_to_fields

if TYPE_CHECKING:
    from dripd.root import Services

router = APIRouter(prefix="/api/sequences", tags=["sequences"])


async def _full(services: "Services", sequence_id: int) -> dict[str, Any]:
    sequence, steps = await services.store.get_sequence(sequence_id)
    counts = (await services.store.rollups([sequence_id])).get(sequence_id, {})
    return sequence_json(sequence, counts, steps)


@router.get("", summary="List sequences with rollup counts per enrollment status")
async def list_sequences(services: ServicesDep, name: str | None = Query(None, description="only sequences with this name")) -> dict[str, Any]:
    sequences = await services.store.list_sequences(name)
    counts = await services.store.rollups()
    step_counts = await services.store.step_counts()
    return {"sequences": [sequence_json(s, counts.get(s.id, {}), step_count=step_counts.get(s.id, 0))
                          for s in sequences]}


@router.post("", status_code=201, summary="Create a sequence (draft), optionally with its steps")
async def create_sequence(body: SequenceBody, services: ServicesDep) -> dict[str, Any]:
    steps = [step_from_fields(s.fields(), where=f"steps[{i}]") for i, s in enumerate(body.steps)]
    check_step_list(steps)
    sequence = await services.control.create_sequence(body.settings(), steps)
    warnings = await name_warnings(services, sequence.id, sequence.settings.name) + steps_warnings(steps)
    return with_warnings(await _full(services, sequence.id), sequence.id, warnings)


@router.get("/{sequence_id}", summary="A sequence with its steps and contact rollup")
async def get_sequence(sequence_id: SequenceId, services: ServicesDep) -> dict[str, Any]:
    return await _full(services, sequence_id)


@router.patch("/{sequence_id}", summary="Update sequence metadata (name, send window, flags)")
async def update_sequence(sequence_id: SequenceId, body: SettingsPatch, services: ServicesDep) -> dict[str, Any]:
    await services.control.update_sequence(sequence_id, body.changes())
    warnings = await name_warnings(services, sequence_id, body.name) if body.name is not None else []
    return with_warnings(await _full(services, sequence_id), sequence_id, warnings)


@router.post("/{sequence_id}/steps", status_code=201, summary="Append a step")
async def add_step(sequence_id: SequenceId, body: StepBody, services: ServicesDep) -> dict[str, Any]:
    steps = await services.control.add_step(sequence_id, step_from_fields(body.fields()))
    return with_warnings(step_json(len(steps) - 1, steps[-1]), sequence_id, steps_warnings(steps))


@router.patch("/{sequence_id}/steps/{index}", summary="Update a step in place (future runs only): a body with type replaces the step, without type it merges")
async def edit_step(sequence_id: SequenceId, index: StepIndex, body: StepPatch, services: ServicesDep) -> dict[str, Any]:
    _, steps = await services.store.get_sequence(sequence_id)
    if not 0 <= index < len(steps):
        raise NotFound(f"sequence {sequence_id} has no step {index} (it has {len(steps)})",
                       details={"sequenceId": sequence_id, "stepIndex": index})
    merged = _merge(steps[index], body.fields())
    steps = await services.control.replace_step(sequence_id, index, step_from_fields(merged))
    return with_warnings(step_json(index, steps[index]), sequence_id, steps_warnings(steps))


def _merge(current: Step, changes: dict[str, Any]) -> dict[str, Any]:
    """A body with ``type`` is a whole step and replaces it; without, the other fields are kept
    (a new duration replaces the old one, whatever its unit)."""
    if "type" in changes:
        return changes
    base = step_to_fields(current)
    if any(k in changes for k in ("waitDays", "waitHours", "waitMinutes", "delayMs")):
        base = {k: v for k, v in base.items() if k not in ("waitDays", "waitHours", "waitMinutes", "delayMs")}
    if "html" in changes:
        base.pop("body", None)
    return {**base, **changes}


@router.delete("/{sequence_id}/steps/{index}", summary="Remove a step (later steps re-index)")
async def delete_step(sequence_id: SequenceId, index: StepIndex, services: ServicesDep) -> dict[str, Any]:
    steps = await services.control.delete_step(sequence_id, index)
    return with_warnings({"steps": [step_json(i, s) for i, s in enumerate(steps)]}, sequence_id,
                         steps_warnings(steps))


async def _transition(services: "Services", sequence_id: int, action: Action) -> dict[str, Any]:
    await services.control.transition(sequence_id, action)
    return await _full(services, sequence_id)


@router.post("/{sequence_id}/start", summary="draft / paused -> active: the engine begins sending")
async def start(sequence_id: SequenceId, services: ServicesDep) -> dict[str, Any]:
    return await _transition(services, sequence_id, Action.START)


@router.post("/{sequence_id}/pause", summary="Halt sends; each contact keeps its place")
async def pause(sequence_id: SequenceId, services: ServicesDep) -> dict[str, Any]:
    return await _transition(services, sequence_id, Action.PAUSE)


@router.post("/{sequence_id}/resume", summary="paused -> active, from where each contact was")
async def resume(sequence_id: SequenceId, services: ServicesDep) -> dict[str, Any]:
    return await _transition(services, sequence_id, Action.RESUME)


@router.post("/{sequence_id}/complete", summary="Cancel every active enrollment; irreversible")
async def complete(sequence_id: SequenceId, services: ServicesDep) -> dict[str, Any]:
    return await _transition(services, sequence_id, Action.COMPLETE)


@router.post("/{sequence_id}/clone", status_code=201, summary="Copy settings and steps into a new draft")
async def clone(sequence_id: SequenceId, services: ServicesDep, body: CloneBody | None = None) -> dict[str, Any]:
    sequence = await services.control.clone_sequence(sequence_id, body.name if body else None)
    warnings = await name_warnings(services, sequence.id, sequence.settings.name)
    return with_warnings(await _full(services, sequence.id), sequence.id, warnings)
