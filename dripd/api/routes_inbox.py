"""The reply inbox: every reply and auto-reply, filtered and paged; one reply; a person's
relabel or read mark; and answering a reply from its contact's mailbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from dripd.api.deps import MAX_ID, ServicesDep
from dripd.api.schemas import Text, _Body
from dripd.clock import iso
from dripd.inbox.records import ReplyFilter, StoredReply

router = APIRouter(prefix="/api/replies", tags=["replies"])
ReplyId = Annotated[int, Path(ge=1, le=MAX_ID, description="a reply id")]

# The values of dripd.inbox.categories.Category (a unit test keeps the two equal): a Literal,
# because the bodies are validated strictly and an enum would refuse its own JSON spelling.
CategoryName = Literal["interested", "not_interested", "out_of_office", "unsubscribe_request", "wrong_person", "other"]


class ReplyPatch(_Body):
    """A person's verdict: a new category (kept with the ones before it) and/or a read mark."""

    category: CategoryName | None = None
    read: bool | None = None


class AnswerBody(_Body):
    """A person's answer, plain text (its HTML part is made from it, escaped)."""

    text: Text


def reply_json(reply: StoredReply, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": reply.id, "kind": reply.kind, "mailboxId": reply.mailbox_id, "contactId": reply.contact_id,
        "contactEmail": reply.contact_email, "sequenceId": reply.sequence_id, "enrollmentId": reply.enrollment_id,
        "stepId": reply.step_id, "from": reply.from_header, "subject": reply.subject, "date": reply.date,
        "messageId": reply.message_id, "category": reply.category, "categoryBy": reply.labelled_by,
        "receivedAt": iso(reply.received_at), "unread": reply.read_at is None,
        "raw": {"folder": reply.folder, "uidvalidity": reply.uidvalidity, "uid": reply.uid},
    }
    if full:
        out["text"] = reply.text
        out["rule"] = reply.rule
        out["readAt"] = iso(reply.read_at)
        out["relabels"] = [{"category": r.category, "previous": r.previous, "at": iso(r.at)} for r in reply.relabels]
        out["answers"] = [{"id": a.id, "messageId": a.message_id, "subject": a.subject, "text": a.text,
                           "status": a.status, "detail": a.detail, "sentAt": iso(a.created_at)} for a in reply.answers]
    else:
        out["snippet"] = " ".join(reply.text.split())[:160]
    return out


@router.get("", summary="Replies and auto-replies, newest first (filters: mailbox, sequence, category, "
                        "unread, since; paging with limit and offset)")
async def list_replies(
    services: ServicesDep,
    mailbox: str | None = Query(None, description="a mailbox id"),
    sequence: int | None = Query(None, ge=1, le=MAX_ID, description="a sequence id"),
    category: CategoryName | None = Query(None),
    unread: bool | None = Query(None, description="true: unread only; false: read only"),
    since: dt.datetime | None = Query(None, description="received at or after (ISO 8601; UTC if no offset)"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
) -> dict[str, Any]:
    after = None
    if since is not None:
        after = (since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)).timestamp()
    replies, total = await services.inbox.list(ReplyFilter(
        mailbox_id=mailbox, sequence_id=sequence, category=category, unread=unread, since=after,
        limit=limit, offset=offset))
    following = offset + len(replies)
    return {"replies": [reply_json(r, full=False) for r in replies], "total": total, "limit": limit,
            "offset": offset, "nextOffset": following if following < total else None}


@router.get("/{reply_id}", summary="One reply: its new text, category, rule, relabels and raw message's place")
async def get_reply(reply_id: ReplyId, services: ServicesDep) -> dict[str, Any]:
    return reply_json(await services.inbox.get(reply_id), full=True)


@router.patch("/{reply_id}", summary="Relabel a reply (an unsubscribe request suppresses the address) "
                                     "or mark it read or unread")
async def patch_reply(reply_id: ReplyId, body: ReplyPatch, services: ServicesDep) -> dict[str, Any]:
    reply = await services.inbox.get(reply_id)
    if body.category is not None:
        reply = await services.inbox.relabel(reply_id, body.category)
    if body.read is not None:
        reply = await services.inbox.mark_read(reply_id, body.read)
    return reply_json(reply, full=True)



@router.post("/{reply_id}/answer", summary="Answer a reply through the contact's mailbox, threaded under it "
                                          "(not a sequence step: the sequence is untouched)")
async def answer_reply(reply_id: ReplyId, body: AnswerBody, services: ServicesDep) -> dict[str, Any]:
    return reply_json(await services.inbox.answer(reply_id, body.text), full=True)
