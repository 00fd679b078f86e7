"""A sequence's contacts: enroll (CSV upload or pasted addresses, with a per-row report), the
contacts with their progress, the per-contact log, the metrics tab and preview."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from dripd.console.api_client import ApiProblem
from dripd.console.pages_sequence import SequenceId, step_summary
from dripd.console.web import PAGE_SIZE, checked_form, console_of, render, session_of

router = APIRouter()
MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # larger files belong to `dripctl enroll --csv` or the API
STATUSES = ("active", "completed", "replied", "bounced", "unsubscribed", "cancelled", "failed")
FUNNEL = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed")


def pasted_csv(text: str) -> bytes:
    """Pasted addresses, one per line (``email`` or ``email, first name``), as the CSV the API takes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "firstName"])
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",", 1)]
        if parts[0]:
            writer.writerow([parts[0], parts[1] if len(parts) > 1 else ""])
    return out.getvalue().encode()


async def _lists(request: Request) -> list[dict[str, Any]]:
    return list((await console_of(request).api.get("/api/lists"))["lists"])


async def _sequence(request: Request, sequence_id: int) -> dict[str, Any]:
    return await console_of(request).api.get(f"/api/sequences/{sequence_id}")  # type: ignore[no-any-return]


@router.get("/sequences/{sequence_id}/enroll")
async def enroll_form(request: Request, sequence_id: int = SequenceId) -> Response:
    session_of(request)
    return render(request, "enroll.html", title="Enroll", sequence=await _sequence(request, sequence_id), tab="enroll",
                  lists=await _lists(request), result=None, error=None, pasted="")


@router.post("/sequences/{sequence_id}/enroll")
async def enroll(request: Request, sequence_id: int = SequenceId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    sequence = await _sequence(request, sequence_id)
    upload = form.get("file")
    pasted = str(form.get("addresses") or "")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            return render(request, "enroll.html", 413, title="Enroll", sequence=sequence, tab="enroll",
                          lists=await _lists(request), result=None,
                          pasted=pasted, error=f"file: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; "
                                            "use `dripctl enroll --csv` for big files")
    elif pasted.strip():
        data = pasted_csv(pasted)
    else:
        return render(request, "enroll.html", 422, title="Enroll", sequence=sequence, tab="enroll",
                      lists=await _lists(request), result=None,
                      pasted=pasted, error="file: choose a CSV file or paste addresses")
    skip = form.get("skipInvalid") == "on"
    try:
        result = await console_of(request).api.call(
            "POST", f"/api/sequences/{sequence_id}/enroll/csv", content=data,
            params={"skipInvalid": "true" if skip else "false"}, headers={"content-type": "text/csv"})
    except ApiProblem as problem:
        invalid = problem.details.get("invalid") or problem.details.get("refused") or []
        return render(request, "enroll.html", 422, title="Enroll", sequence=sequence, tab="enroll",
                      lists=await _lists(request), result={"rows": None, "enrolled": 0, "skipped": [], "invalid": invalid},
                      pasted=pasted, error=problem.message)
    return render(request, "enroll.html", title="Enroll", sequence=sequence, tab="enroll", lists=await _lists(request),
                  result=result, error=None, pasted="")


@router.post("/sequences/{sequence_id}/enroll-list")
async def enroll_list(request: Request, sequence_id: int = SequenceId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    sequence = await _sequence(request, sequence_id)
    raw = str(form.get("listId") or "")
    try:
        result = await console_of(request).api.post(f"/api/sequences/{sequence_id}/enroll",
                                                     {"listId": int(raw) if raw.isdigit() else raw})
    except ApiProblem as problem:
        return render(request, "enroll.html", 422, title="Enroll", sequence=sequence, tab="enroll",
                      lists=await _lists(request), result=None, pasted="", error=problem.message)
    skipped = [{"email": s.get("email", ""), "message": s.get("message", s.get("reason", ""))}
               for s in result.get("skipped", [])]
    return render(request, "enroll.html", title="Enroll", sequence=sequence, tab="enroll", lists=await _lists(request),
                  result={"rows": result["enrolled"] + len(skipped), "enrolled": result["enrolled"],
                          "skipped": skipped, "invalid": []}, error=None, pasted="")


@router.get("/sequences/{sequence_id}/contacts")
async def contacts(request: Request, sequence_id: int = SequenceId, status: str = "", page: int = 1) -> Response:
    session_of(request)
    sequence = await _sequence(request, sequence_id)
    page = max(1, page)
    listed = await console_of(request).api.get(
        f"/api/sequences/{sequence_id}/contacts", status=status if status in STATUSES else None,
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-int(listed["total"]) // PAGE_SIZE))
    return render(request, "contacts.html", title="Contacts", sequence=sequence, tab="contacts",
                  contacts=listed["contacts"], total=listed["total"], page=page, pages=pages, status=status,
                  statuses=STATUSES)


@router.get("/sequences/{sequence_id}/contacts/{contact_id}")
async def contact_log(request: Request, sequence_id: int = SequenceId, contact_id: int = Path(ge=1, le=2**63 - 1)) -> Response:
    session_of(request)
    sequence = await _sequence(request, sequence_id)
    log = await console_of(request).api.get(f"/api/sequences/{sequence_id}/contacts/{contact_id}")
    return render(request, "contact_log.html", title=log["email"], sequence=sequence, tab="contacts", log=log)


@router.get("/sequences/{sequence_id}/metrics")
async def metrics(request: Request, sequence_id: int = SequenceId) -> Response:
    session_of(request)
    sequence = await _sequence(request, sequence_id)
    stats = await console_of(request).api.get(f"/api/sequences/{sequence_id}/stats")
    return render(request, "metrics.html", title="Metrics", sequence=sequence, tab="metrics", stats=stats,
                  funnel=FUNNEL)


@router.get("/sequences/{sequence_id}/preview")
async def preview(request: Request, sequence_id: int = SequenceId, contact: str = "", step: int = 0,
                  variant: str = "") -> Response:
    """Any email step for any contact: the contact's own A/B variant, or the one asked for."""
    session_of(request)
    sequence = await _sequence(request, sequence_id)
    emails = [s for s in sequence["steps"] if s["type"] == "email"]
    rendered, error = None, None
    if contact.strip():
        body: dict[str, Any] = {"contactEmail": contact.strip(), "stepIndex": step}
        if variant:
            body["variant"] = variant
        try:
            rendered = await console_of(request).api.post(f"/api/sequences/{sequence_id}/preview", body)
        except ApiProblem as problem:
            error = problem.message
    chosen = sequence["steps"][step] if 0 <= step < len(sequence["steps"]) else {}
    return render(request, "preview.html", 422 if error else 200, title="Preview", sequence=sequence, tab="preview",
                  contact=contact, step=step, variant=variant, rendered=rendered, error=error, emails=emails,
                  variant_names=[str(v.get("name", "")) for v in chosen.get("variants") or []],
                  summaries=[step_summary(s) for s in sequence["steps"]])
