"""Contact lists: all lists with their sizes, create one from pasted addresses, a list's members
(add, remove), delete; a list is enrolled from a sequence's Enroll tab."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from dripd.console.api_client import ApiProblem
from dripd.console.web import checked_form, console_of, redirect, render, session_of

router = APIRouter()
ListId = Path(ge=1, le=2**63 - 1)


def pasted_emails(text: str) -> list[str]:
    """One address per line (or separated by commas or spaces), as the API's ``emails``."""
    return [part for part in text.replace(",", " ").split() if part]


async def _lists_page(request: Request, status: int = 200, error: str | None = None,
                      form: dict[str, Any] | None = None) -> Response:
    listed = (await console_of(request).api.get("/api/lists"))["lists"]
    return render(request, "lists.html", status, title="Lists", lists=listed, error=error, form=form or {})


@router.get("/lists")
async def lists(request: Request) -> Response:
    session_of(request)
    return await _lists_page(request)


@router.post("/lists")
async def create(request: Request) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    body = {"name": str(form.get("name") or "").strip(), "emails": pasted_emails(str(form.get("emails") or ""))}
    try:
        made = await console_of(request).api.post("/api/lists", body)
    except ApiProblem as problem:
        return await _lists_page(request, 422, problem.message, {"name": body["name"], "emails": form.get("emails")})
    return redirect(f"/app/lists/{made['id']}", session, f"List “{made['name']}” created with {made['memberCount']} members.")


@router.get("/lists/{list_id}")
async def one_list(request: Request, list_id: int = ListId) -> Response:
    session_of(request)
    found = await console_of(request).api.get(f"/api/lists/{list_id}")
    return render(request, "list.html", title=found["name"], list=found, error=None)


@router.post("/lists/{list_id}/members")
async def add_members(request: Request, list_id: int = ListId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    api = console_of(request).api
    try:
        found = await api.post(f"/api/lists/{list_id}/members", {"emails": pasted_emails(str(form.get("emails") or ""))})
    except ApiProblem as problem:
        current = await api.get(f"/api/lists/{list_id}")
        return render(request, "list.html", 422, title=current["name"], list=current, error=problem.message)
    return redirect(f"/app/lists/{list_id}", session, f"The list has {found['memberCount']} members.")


@router.post("/lists/{list_id}/members/{contact_id}/remove")
async def remove_member(request: Request, list_id: int = ListId, contact_id: int = Path(ge=1, le=2**63 - 1)) -> Response:
    session = session_of(request)
    await checked_form(request, session)
    await console_of(request).api.call("DELETE", f"/api/lists/{list_id}/members/{contact_id}")
    return redirect(f"/app/lists/{list_id}", session, "Removed from the list (the contact stays).")


@router.post("/lists/{list_id}/delete")
async def delete(request: Request, list_id: int = ListId) -> Response:
    session = session_of(request)
    await checked_form(request, session)
    await console_of(request).api.call("DELETE", f"/api/lists/{list_id}")
    return redirect("/app/lists", session, "List deleted (its contacts stay).")
