"""One sequence: its settings, the steps editor (add, edit, delete, reorder) and its lifecycle
(start, pause, resume, complete with confirmation, clone)."""

from __future__ import annotations

from typing import Any, Mapping

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from dripd.console.api_client import ApiProblem
from dripd.console.step_form import email_extras, form_values, stored_values
from dripd.console.web import checked_form, console_of, redirect, render, session_of

router = APIRouter()
SequenceId = Path(ge=1, le=2**63 - 1)
WAIT_UNITS = {"days": "waitDays", "hours": "waitHours", "minutes": "waitMinutes"}
ACTIONS = {"start": "Started", "pause": "Paused", "resume": "Resumed"}


def step_summary(step: Mapping[str, Any]) -> str:
    """How the steps table names a step: the subject, the wait, or the condition."""
    if step["type"] == "email":
        subject = str(step.get("subject") or "") or "(threaded: Re: the first subject)"
        names = [str(v.get("name", "")) for v in step.get("variants") or []]
        return f"{subject} · A/B: {', '.join(names)}" if names else subject
    if step["type"] == "wait":
        for unit, key in WAIT_UNITS.items():
            if key in step:
                value = step[key]
                return f"wait {value:g} {unit[:-1] if value == 1 else unit}"
        return f"wait {step.get('delayMs', 0)} ms"
    return f"if {step.get('condition')}: skip the next step"


def step_body(form: Mapping[str, Any]) -> dict[str, Any]:
    """The API body of the step a form describes (the API checks every field and names it)."""
    kind = str(form.get("type") or "email")
    if kind == "wait":
        unit = str(form.get("unit") or "days")
        raw = str(form.get("wait") or "").strip()
        try:
            amount: Any = float(raw) if raw else None
        except ValueError:
            amount = raw  # the API answers with the field and the rule
        return {"type": "wait", WAIT_UNITS.get(unit, "waitDays"): amount}
    if kind == "conditional":
        return {"type": "conditional", "condition": str(form.get("condition") or "")}
    return {"type": "email", "subject": str(form.get("subject") or ""), "body": str(form.get("body") or ""),
            **email_extras(form)}


async def _page(request: Request, sequence_id: int, status: int = 200, **extra: Any) -> Response:
    api = console_of(request).api
    sequence = await api.get(f"/api/sequences/{sequence_id}")
    values: dict[str, Any] = {"step_form": form_values({}), "step_error": None, "settings_error": None}
    values.update(extra)
    return render(request, "sequence.html", status, title=sequence["name"], sequence=sequence, tab="steps",
                  summaries=[step_summary(s) for s in sequence["steps"]], **values)


@router.get("/sequences/{sequence_id}")
async def sequence_page(request: Request, sequence_id: int = SequenceId) -> Response:
    session_of(request)
    return await _page(request, sequence_id)


@router.post("/sequences/{sequence_id}/steps")
async def add_step(request: Request, sequence_id: int = SequenceId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    try:
        await console_of(request).api.post(f"/api/sequences/{sequence_id}/steps", step_body(form))
    except ApiProblem as problem:
        return await _page(request, sequence_id, 422, step_form=form_values(form), step_error=problem.message)
    return redirect(f"/app/sequences/{sequence_id}", session, "Step added.")


@router.get("/sequences/{sequence_id}/steps/{index}")
async def edit_step_form(request: Request, sequence_id: int = SequenceId, index: int = Path(ge=0, le=10_000)) -> Response:
    session_of(request)
    sequence = await console_of(request).api.get(f"/api/sequences/{sequence_id}")
    if index >= len(sequence["steps"]):
        return render(request, "error.html", 404, title="Not found", message=f"sequence {sequence_id} has no step {index}")
    step = sequence["steps"][index]
    form = stored_values(step)
    for unit, key in WAIT_UNITS.items():
        if key in step:
            form.update(unit=unit, wait=f"{step[key]:g}")
    return render(request, "step.html", title=f"Step {index + 1}", sequence=sequence, index=index, form=form,
                  error=None)


@router.post("/sequences/{sequence_id}/steps/{index}")
async def edit_step(request: Request, sequence_id: int = SequenceId, index: int = Path(ge=0, le=10_000)) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    api = console_of(request).api
    try:
        await api.call("PATCH", f"/api/sequences/{sequence_id}/steps/{index}", json=step_body(form))
    except ApiProblem as problem:
        sequence = await api.get(f"/api/sequences/{sequence_id}")
        return render(request, "step.html", 422, title=f"Step {index + 1}", sequence=sequence, index=index,
                      form=form_values(form), error=problem.message)
    return redirect(f"/app/sequences/{sequence_id}", session, f"Step {index + 1} saved.")


@router.post("/sequences/{sequence_id}/steps/{index}/delete")
async def delete_step(request: Request, sequence_id: int = SequenceId, index: int = Path(ge=0, le=10_000)) -> Response:
    session = session_of(request)
    await checked_form(request, session)
    await console_of(request).api.call("DELETE", f"/api/sequences/{sequence_id}/steps/{index}")
    return redirect(f"/app/sequences/{sequence_id}", session, f"Step {index + 1} removed; later steps moved up.")


@router.post("/sequences/{sequence_id}/steps/{index}/move")
async def move_step(request: Request, sequence_id: int = SequenceId, index: int = Path(ge=0, le=10_000)) -> Response:
    """Swap a step with its neighbour: two in-place edits through the API, the first undone if
    the second is refused, so a refused order leaves the steps as they were."""
    session = session_of(request)
    form = await checked_form(request, session)
    api = console_of(request).api
    steps = (await api.get(f"/api/sequences/{sequence_id}"))["steps"]
    other = index - 1 if form.get("direction") == "up" else index + 1
    if not (0 <= index < len(steps) and 0 <= other < len(steps)):
        return redirect(f"/app/sequences/{sequence_id}", session, "That step cannot move further.")

    def whole(step: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in step.items() if k not in ("index", "id")}

    path = f"/api/sequences/{sequence_id}/steps"
    try:
        await api.call("PATCH", f"{path}/{index}", json=whole(steps[other]))
        try:
            await api.call("PATCH", f"{path}/{other}", json=whole(steps[index]))
        except ApiProblem:
            await api.call("PATCH", f"{path}/{index}", json=whole(steps[index]))
            raise
    except ApiProblem as problem:
        return redirect(f"/app/sequences/{sequence_id}", session, f"Not moved: {problem.message}")
    return redirect(f"/app/sequences/{sequence_id}", session, f"Step {index + 1} moved {form.get('direction')}.")


@router.post("/sequences/{sequence_id}/settings")
async def settings(request: Request, sequence_id: int = SequenceId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    body: dict[str, Any] = {"name": str(form.get("name") or "").strip(), "timezone": str(form.get("timezone") or ""),
                            "weekdaysOnly": form.get("weekdaysOnly") == "on",
                            "trackOpens": form.get("trackOpens") == "on", "trackClicks": form.get("trackClicks") == "on"}
    for field in ("sendWindowStartHour", "sendWindowEndHour"):
        raw = str(form.get(field) or "").strip()
        body[field] = int(raw) if raw.isdigit() else raw  # the API names a bad hour
    try:
        await console_of(request).api.call("PATCH", f"/api/sequences/{sequence_id}", json=body)
    except ApiProblem as problem:
        return await _page(request, sequence_id, 422, settings_error=problem.message)
    return redirect(f"/app/sequences/{sequence_id}", session, "Settings saved.")


@router.post("/sequences/{sequence_id}/{action}")
async def transition(request: Request, action: str, sequence_id: int = SequenceId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    api = console_of(request).api
    if action == "clone":
        name = str(form.get("name") or "").strip() or None
        copy = await api.post(f"/api/sequences/{sequence_id}/clone", {"name": name} if name else {})
        return redirect(f"/app/sequences/{copy['id']}", session, f"Cloned into the draft “{copy['name']}”.")
    if action == "complete":
        if form.get("confirm") != "yes":
            return redirect(f"/app/sequences/{sequence_id}/complete", session)
        await api.post(f"/api/sequences/{sequence_id}/complete")
        return redirect(f"/app/sequences/{sequence_id}", session, "Completed: every active contact was cancelled.")
    if action not in ACTIONS:
        return render(request, "error.html", 404, title="Not found", message=f"no action {action!r}")
    try:
        await api.post(f"/api/sequences/{sequence_id}/{action}")
    except ApiProblem as problem:
        return redirect(f"/app/sequences/{sequence_id}", session, f"Not {action}ed: {problem.message}")
    return redirect(f"/app/sequences/{sequence_id}", session, f"{ACTIONS[action]}.")


@router.get("/sequences/{sequence_id}/complete")
async def confirm_complete(request: Request, sequence_id: int = SequenceId) -> Response:
    session_of(request)
    sequence = await console_of(request).api.get(f"/api/sequences/{sequence_id}")
    return render(request, "complete.html", title=f"Complete {sequence['name']}?", sequence=sequence)
