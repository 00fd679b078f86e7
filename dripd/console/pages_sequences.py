"""The sequences list (rollups, status, search, paging) and creating a sequence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dripd.console.api_client import ApiProblem
from dripd.console.web import PAGE_SIZE, checked_form, console_of, redirect, render, session_of

router = APIRouter()


async def _mailboxes(request: Request) -> list[dict[str, Any]]:
    found = await console_of(request).api.get("/api/mailboxes")
    return list(found["mailboxes"])


@router.get("/sequences")
async def sequences(request: Request, q: str = "", page: int = 1) -> Response:
    session_of(request)
    api = console_of(request).api
    listed = (await api.get("/api/sequences"))["sequences"]
    needle = q.strip().lower()
    if needle:
        listed = [s for s in listed if needle in str(s["name"]).lower()]
    listed.sort(key=lambda s: -int(s["id"]))  # newest first
    page = max(1, page)
    pages = max(1, -(-len(listed) // PAGE_SIZE))
    shown = listed[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return render(request, "sequences.html", title="Sequences", sequences=shown, q=q, page=min(page, pages),
                  pages=pages, total=len(listed), mailboxes=await _mailboxes(request), form={}, error=None)


@router.post("/sequences")
async def create(request: Request) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    body = {"name": str(form.get("name") or "").strip(), "mailboxId": str(form.get("mailboxId") or "")}
    try:
        created = await console_of(request).api.post("/api/sequences", body)
    except ApiProblem as problem:
        listed = (await console_of(request).api.get("/api/sequences"))["sequences"][:PAGE_SIZE]
        return render(request, "sequences.html", 422, title="Sequences", sequences=listed, q="", page=1, pages=1,
                      total=len(listed), mailboxes=await _mailboxes(request), form=body, error=problem.message)
    return redirect(f"/app/sequences/{created['id']}", session, f"Created the draft sequence “{created['name']}”.")
