"""Enrollment (JSON and CSV), per-contact progress, cancelling one contact, and preview."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from dripd.api.body import limited
from dripd.api.deps import MAX_ID, ContactId, ServicesDep, SequenceId
from dripd.api.imports import run_import
from dripd.api.preview import preview
from dripd.api.progress import progress_rows
from dripd.api.routes_imports import IMPORT_ID_PATTERN, ImportJobsDep
from dripd.api.schemas import EnrollBody, PreviewBody
from dripd.clock import iso
from dripd.errors import NotFound, ValidationError
from dripd.model import EnrollmentStatus, normalize_email
from dripd.store import ContactInput

router = APIRouter(prefix="/api/sequences", tags=["enrollment"])

@router.post("/{sequence_id}/enroll", status_code=201,
             summary="Enroll contacts: {listId}, {contactIds} or {contactEmail, mergeFields}")
async def enroll(sequence_id: SequenceId, body: EnrollBody, services: ServicesDep) -> dict[str, Any]:
    given = [name for name, value in (("listId", body.list_id), ("contactIds", body.contact_ids),
                                      ("contactEmail", body.contact_email)) if value is not None]
    if len(given) != 1:
        raise ValidationError("body", "give exactly one of listId, contactIds, contactEmail"
                              + (f" (got {', '.join(given)})" if given else ""))
    name_problem = body.name_problem()
    if name_problem is not None:
        raise ValidationError(*name_problem)
    merge = dict(body.merge_fields or {})
    contacts: list[ContactInput | int]
    if body.list_id is not None:
        contacts = list(await services.store.list_ids(body.list_id))
    elif body.contact_ids is not None:
        contacts = list(body.contact_ids)
    else:
        email = normalize_email(body.contact_email, field_name="contactEmail")
        contacts = [ContactInput(email, merge.get("firstName", ""), merge.get("lastName", ""), merge.get("company", ""))]
    result = await services.control.enroll(sequence_id, contacts, [merge] * len(contacts) if merge else None,
                                         strict=not body.skip_invalid)
    return {"enrolled": len(result.enrolled), "enrollmentIds": result.enrolled, "skipped": result.skipped}


@router.post("/{sequence_id}/enroll/csv", status_code=201,
             summary="Bulk enrollment from CSV (`,`, `;` or tab, sniffed); all-or-nothing unless skipInvalid",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def enroll_csv(sequence_id: SequenceId, request: Request, services: ServicesDep, jobs: ImportJobsDep,
                     skip_invalid: bool = Query(False, alias="skipInvalid"),
                     import_id: str | None = Query(None, alias="importId", pattern=IMPORT_ID_PATTERN,
                                                   description="a name for the import job, to watch it at "
                                                               "/api/imports/{importId} while it runs")) -> Any:
    await services.store.get_sequence(sequence_id)  # 404 before reading a large body
    job = jobs.create(sequence_id, import_id, services.clock.now())
    try:
        limits = services.config.api.limits
        answer = await run_import(services, job, limited(request.stream(), limits.csv_body_bytes,
                                                         limits.body_idle_seconds), limits, skip_invalid=skip_invalid)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is left to read it; the job says "failed"
    return JSONResponse(answer, status_code=201)


@router.get("/{sequence_id}/contacts", summary="Enrolled contacts: step, last event, the real next run and what holds it (window, caps, warm-up, paused mailbox); stuck ones as state stuck")
async def sequence_contacts(sequence_id: SequenceId, services: ServicesDep, status: EnrollmentStatus | None = None,
                            limit: int | None = Query(None, ge=1, le=MAX_ID), offset: int = Query(0, ge=0, le=MAX_ID)) -> dict[str, Any]:
    sequence, steps = await services.store.get_sequence(sequence_id)
    progress = await services.store.sequence_contacts(sequence_id)
    if status is not None:
        progress = [p for p in progress if p.status == status.value]
    window = progress[offset:offset + limit if limit else None]
    return {"contacts": progress_rows(services, sequence, steps, window), "total": len(progress),
            "now": iso(services.clock.now())}  # the daemon's clock: clients show times relative to it


@router.post("/{sequence_id}/contacts/{contact_id}/cancel", summary="Cancel one contact's active enrollment")
async def cancel(sequence_id: SequenceId, contact_id: ContactId, services: ServicesDep) -> dict[str, Any]:
    await services.control.cancel_enrollment(sequence_id, contact_id)
    return {"sequenceId": sequence_id, "contactId": contact_id, "status": "cancelled"}


@router.post("/{sequence_id}/preview", summary="Render a step against a real contact before sending")
async def preview_step(sequence_id: SequenceId, body: PreviewBody, services: ServicesDep) -> dict[str, Any]:
    if (body.contact_id is None) == (body.contact_email is None):
        raise ValidationError("contactId", "give contactId or contactEmail")
    if body.contact_id is not None:
        contact = await services.store.get_contact(body.contact_id)
    else:
        email = normalize_email(body.contact_email, field_name="contactEmail")
        found = await services.store.find_contact(email)
        if found is None:
            raise NotFound(f"no contact with email {email}", details={"email": email})
        contact = found
    return await preview(services, sequence_id, body.step_index, contact, body.variant)
