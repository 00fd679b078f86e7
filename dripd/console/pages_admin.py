"""Mailboxes (caps, sends today, warm-up, next send, health, pause/resume), contacts (search,
paging) and suppressions (with re-verify)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dripd.console.api_client import ApiProblem
from dripd.console.web import PAGE_SIZE, checked_form, console_of, redirect, render, session_of

router = APIRouter()


@router.get("/mailboxes")
async def mailboxes(request: Request) -> Response:
    session_of(request)
    listed = (await console_of(request).api.get("/api/mailboxes"))["mailboxes"]
    return render(request, "mailboxes.html", title="Mailboxes", mailboxes=listed)


@router.post("/mailboxes/{mailbox_id}/{action}")
async def mailbox_action(request: Request, mailbox_id: str, action: str) -> Response:
    session = session_of(request)
    await checked_form(request, session)
    if action not in ("pause", "resume"):
        return render(request, "error.html", 404, title="Not found", message=f"no action {action!r}")
    await console_of(request).api.post(f"/api/mailboxes/{quote(mailbox_id, safe='')}/{action}")
    return redirect("/app/mailboxes", session, f"Mailbox {mailbox_id} {action}d.")


@router.get("/contacts")
async def contacts(request: Request, q: str = "", page: int = 1) -> Response:
    session_of(request)
    page = max(1, min(page, 100_000))
    # One more than a page tells whether a next page exists without counting every contact.
    found = (await console_of(request).api.get("/api/contacts", email=q, limit=PAGE_SIZE + 1,
                                                offset=(page - 1) * PAGE_SIZE))["contacts"]
    return render(request, "people.html", title="Contacts", contacts=found[:PAGE_SIZE], more=len(found) > PAGE_SIZE,
                  q=q, page=page)


@router.get("/suppressions")
async def suppressions(request: Request) -> Response:
    session_of(request)
    listed = (await console_of(request).api.get("/api/suppressions"))["suppressions"]
    return render(request, "suppressions.html", title="Suppressions", suppressions=listed, verified=None, error=None)


@router.post("/suppressions/verify")
async def verify(request: Request) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    body = {"email": str(form.get("email") or ""), "lift": form.get("lift") == "on"}
    verified, error = None, None
    try:
        verified = await console_of(request).api.post("/api/contacts/verify", body)
    except ApiProblem as problem:
        error = problem.message
    listed = (await console_of(request).api.get("/api/suppressions"))["suppressions"]
    return render(request, "suppressions.html", 422 if error else 200, title="Suppressions", suppressions=listed,
                  verified=verified, error=error)
