"""The reply inbox: replies and auto-replies filtered by mailbox, sequence, category and read
state, paged; one reply (its new text, category, the rule that chose it, relabels, answers);
relabel, mark read or unread, and answer it from the contact's mailbox.

Every change is the API's (``/api/replies``): an unsubscribe-request label suppresses the
address there, and the answer goes out threaded under the reply through the mailbox's transport.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from dripd.console.api_client import ApiProblem
from dripd.console.web import PAGE_SIZE, checked_form, console_of, redirect, render, session_of
from dripd.inbox.categories import Category

router = APIRouter()
ReplyId = Path(ge=1, le=2**63 - 1)
CATEGORIES = tuple(c.value for c in Category)
READ_STATES = {"unread": "true", "read": "false"}  # the filter's choice -> the API's ``unread``
MAX_PAGE = 1_000_000


def _api_filters(filters: Mapping[str, str]) -> dict[str, Any]:
    """The API's query for the page's filters. Values go as typed: the API names a bad one."""
    out: dict[str, Any] = {}
    for name in ("mailbox", "sequence", "category"):
        if filters[name]:
            out[name] = filters[name]
    if filters["state"] in READ_STATES:
        out["unread"] = READ_STATES[filters["state"]]
    return out


def _page_url(filters: Mapping[str, str], page: int) -> str:
    query = {k: v for k, v in filters.items() if v}
    if page > 1:
        query["page"] = str(page)
    return "/app/inbox" + (f"?{urlencode(query)}" if query else "")


@router.get("/inbox")
async def inbox(request: Request, mailbox: str = "", sequence: str = "", category: str = "", state: str = "",
                page: int = 1) -> Response:
    session_of(request)
    api = console_of(request).api
    filters = {"mailbox": mailbox.strip(), "sequence": sequence.strip(), "category": category.strip(),
               "state": state if state in READ_STATES else ""}
    page = max(1, min(page, MAX_PAGE))
    listed = await api.get("/api/replies", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **_api_filters(filters))
    sequences = (await api.get("/api/sequences"))["sequences"]
    mailboxes = (await api.get("/api/mailboxes"))["mailboxes"]
    total = int(listed["total"])
    pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "inbox.html", title="Inbox", replies=listed["replies"], total=total, page=page, pages=pages,
                  filters=filters, categories=CATEGORIES, sequences=sorted(sequences, key=lambda s: str(s["name"])),
                  sequence_names={str(s["id"]): s["name"] for s in sequences}, mailboxes=mailboxes,
                  previous_url=_page_url(filters, page - 1) if page > 1 else None,
                  next_url=_page_url(filters, page + 1) if listed.get("nextOffset") is not None else None)


async def _reply_page(request: Request, reply_id: int, status: int = 200, **extra: Any) -> Response:
    api = console_of(request).api
    reply = await api.get(f"/api/replies/{reply_id}")
    sequence = None
    if reply.get("sequenceId"):
        try:
            sequence = await api.get(f"/api/sequences/{reply['sequenceId']}")
        except ApiProblem:
            sequence = None  # deleted since: the reply stays, without its link
    values: dict[str, Any] = {"label_error": None, "answer_error": None, "answer_text": ""}
    values.update(extra)
    return render(request, "reply.html", status, title=reply.get("subject") or "Reply", reply=reply,
                  sequence=sequence, categories=CATEGORIES, **values)


@router.get("/inbox/{reply_id}")
async def reply_page(request: Request, reply_id: int = ReplyId) -> Response:
    session_of(request)
    return await _reply_page(request, reply_id)


@router.post("/inbox/{reply_id}/label")
async def relabel(request: Request, reply_id: int = ReplyId) -> Response:
    """A person's category; reading the reply to judge it marks it read."""
    session = session_of(request)
    form = await checked_form(request, session)
    category = str(form.get("category") or "")
    try:
        await console_of(request).api.call("PATCH", f"/api/replies/{reply_id}", json={"category": category, "read": True})
    except ApiProblem as problem:
        return await _reply_page(request, reply_id, 422, label_error=problem.message)
    note = " The address is now suppressed." if category == Category.UNSUBSCRIBE_REQUEST.value else ""
    return redirect(f"/app/inbox/{reply_id}", session, f"Labelled {category}.{note}")


@router.post("/inbox/{reply_id}/read")
async def mark_read(request: Request, reply_id: int = ReplyId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    read = form.get("read") != "false"
    await console_of(request).api.call("PATCH", f"/api/replies/{reply_id}", json={"read": read})
    return redirect(f"/app/inbox/{reply_id}", session, "Marked read." if read else "Marked unread.")


@router.post("/inbox/{reply_id}/answer")
async def answer(request: Request, reply_id: int = ReplyId) -> Response:
    session = session_of(request)
    form = await checked_form(request, session)
    text = str(form.get("text") or "")
    api = console_of(request).api
    try:
        answered = await api.post(f"/api/replies/{reply_id}/answer", {"text": text})
        await api.call("PATCH", f"/api/replies/{reply_id}", json={"read": True})
    except ApiProblem as problem:
        return await _reply_page(request, reply_id, 422, answer_text=text, answer_error=problem.message)
    last = (answered.get("answers") or [{}])[-1]
    if last.get("status") == "accepted":
        note = f"Answer accepted: it goes out from {answered.get('mailboxId')}."
    else:  # an answer is tried once, never retried: say so, with the server's reason
        note = (f"Answer {last.get('status')}: {last.get('detail') or 'no detail'}. It was tried once and is "
                "kept below; check the mailbox's Sent folder before sending it again.")
    return redirect(f"/app/inbox/{reply_id}", session, note)
