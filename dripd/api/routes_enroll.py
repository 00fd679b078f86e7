"""Enrollment (JSON and CSV), per-contact progress, cancelling one contact, and preview."""

from __future__ import annotations

from typing import Any, Iterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from dripd.api.csv_import import CsvRows, RecordSplitter
from dripd.api.deps import MAX_ID, ContactId, ServicesDep, SequenceId
from dripd.api.preview import preview
from dripd.api.progress import progress_rows
from dripd.api.schemas import EnrollBody, PreviewBody
from dripd.clock import iso
from dripd.errors import DripdError, NotFound, ValidationError
from dripd.model import EnrollmentStatus, normalize_email
from dripd.store import ContactInput

router = APIRouter(prefix="/api/sequences", tags=["enrollment"])

MAX_CSV_BYTES = 256 * 1024 * 1024


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
             summary="Bulk enrollment from CSV; all-or-nothing unless skipInvalid",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def enroll_csv(sequence_id: SequenceId, request: Request, services: ServicesDep,
                     skip_invalid: bool = Query(False, alias="skipInvalid")) -> Any:
    await services.store.get_sequence(sequence_id)  # 404 before reading a large body
    rows = CsvRows()
    splitter = RecordSplitter()
    size = 0
    first = True

    def take(records: Iterator[tuple[int, str]]) -> None:
        nonlocal first
        for line, record in records:
            if first:
                rows.header(line, record)
                first = False
            else:
                rows.row(line, record)

    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CSV_BYTES:
            raise ValidationError("csv", f"is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB; split the file")
        take(splitter.feed(chunk))
    take(splitter.feed(b"", final=True))
    if first:
        raise ValidationError("csv", "the file is empty (a header row is required)")
    if rows.invalid_count and not skip_invalid:
        bad = rows.invalid[0]
        more = f" (and {rows.invalid_count - 1} more)" if rows.invalid_count > 1 else ""
        error = ValidationError("csv", f"line {bad['line']}: {bad['field']}: {bad['rule']}{more}; nothing was enrolled")
        error.details.update(line=bad["line"], invalid=rows.invalid, invalidCount=rows.invalid_count)
        raise error
    try:
        result = await services.control.bulk_enroll(sequence_id, rows.valid, strict=not skip_invalid)
    except DripdError as exc:
        for refused in exc.details.get("refused", []):
            refused["line"] = rows.lines.get(refused.pop("pos"))
        raise
    skipped = [{"line": rows.lines.get(s["pos"]), "email": s["email"], "reason": s["reason"], "message": s["message"]}
               for s in result.skipped]
    return JSONResponse({"rows": rows.total, "enrolled": result.enrolled, "skipped": skipped,
                         "invalid": rows.invalid, "invalidCount": rows.invalid_count}, status_code=201)


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
