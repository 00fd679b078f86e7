"""Operations of the reply inbox: keep a reply once, list and read them, relabel, mark read;
the PostgreSQL twin of ``dripd.store.sqlite.replies``."""

from __future__ import annotations

from dripd.errors import NotFound
from dripd.errors import Conflict
from dripd.events import Answer, EventKind
from dripd.inbox.records import NewReply, Relabel, ReplyFilter, SentAnswer, StoredReply
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, PgRow, fetch_all, fetch_one
from dripd.store.postgres.journal import enrollment_event

_COLUMNS = ("r.id, r.mailbox_id, r.kind, c.id AS contact_id, r.contact_email, r.sequence_id, r.enrollment_id,"
            " r.step_id, r.outbox_id, r.from_header, r.subject, r.date_header AS date, r.message_id, r.text, r.folder,"
            " r.uidvalidity, r.uid, r.category, r.rule, r.labelled_by, r.received_at, r.read_at")
_FROM = " FROM replies r LEFT JOIN enrollments e ON e.id = r.enrollment_id LEFT JOIN contacts c ON c.id = e.contact_id"


def _reply(row: PgRow, relabels: tuple[Relabel, ...] = (), answers: tuple[SentAnswer, ...] = ()) -> StoredReply:
    return StoredReply(**dict(row), relabels=relabels, answers=answers)  # the columns are named as its fields


def _where(query: ReplyFilter) -> tuple[str, tuple[object, ...]]:
    clauses: list[str] = []
    params: list[object] = []
    if query.mailbox_id is not None:
        clauses.append("r.mailbox_id = %s")
        params.append(query.mailbox_id)
    if query.sequence_id is not None:
        clauses.append("r.sequence_id = %s")
        params.append(query.sequence_id)
    if query.category is not None:
        clauses.append("r.category = %s")
        params.append(query.category)
    if query.unread is not None:
        clauses.append("r.read_at IS NULL" if query.unread else "r.read_at IS NOT NULL")
    if query.since is not None:
        clauses.append("r.received_at >= %s")
        params.append(query.since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _load(db: Conn, reply_id: int) -> StoredReply:
    row = fetch_one(db, f"SELECT {_COLUMNS}{_FROM} WHERE r.id = %s", (reply_id,))
    if row is None:
        raise NotFound(f"reply {reply_id} not found", details={"replyId": reply_id})
    relabels = tuple(Relabel(r[0], r[1], r[2]) for r in fetch_all(
        db, "SELECT category, previous, at FROM reply_labels WHERE reply_id = %s ORDER BY id", (reply_id,)))
    answers = tuple(SentAnswer(**dict(r)) for r in fetch_all(
        db, "SELECT id, message_id, subject, text, status, detail, created_at FROM reply_answers WHERE reply_id = %s"
            " ORDER BY id", (reply_id,)))
    return _reply(row, relabels, answers)


class ReplyOps:
    """Mixin of the reply inbox's operations (``PgConnection`` runs them)."""

    @operation
    def keep_reply(self, db: Conn, reply: NewReply) -> tuple[int, bool]:
        """Keep a reply once: the same raw message seen again (a detector restarting) returns
        the row kept the first time. Returns (id, whether it is new). Per mailbox one at a time
        (an advisory lock): during a lease handover two nodes' detectors may read the same message."""
        db.execute("SELECT pg_advisory_xact_lock(hashtext('dripd.reply:' || %s))", (reply.mailbox_id,))
        if reply.folder is not None and reply.uid is not None:
            found = fetch_one(db, "SELECT id FROM replies WHERE mailbox_id = %s AND folder = %s"
                                  " AND uidvalidity IS NOT DISTINCT FROM %s AND uid = %s",
                              (reply.mailbox_id, reply.folder, reply.uidvalidity, reply.uid))
        else:
            found = fetch_one(db, "SELECT id FROM replies WHERE mailbox_id = %s AND message_id = %s AND message_id != ''",
                              (reply.mailbox_id, reply.message_id))
        if found is not None:
            return int(found[0]), False
        row = db.execute(
            "INSERT INTO replies (mailbox_id, kind, contact_email, sequence_id, enrollment_id, step_id, outbox_id,"
            " from_header, subject, date_header, message_id, text, folder, uidvalidity, uid, category, rule,"
            " labelled_by, received_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'rules',%s) RETURNING id",
            (reply.mailbox_id, reply.kind, reply.contact_email, reply.sequence_id, reply.enrollment_id,
             reply.step_id, reply.outbox_id, reply.from_header, reply.subject, reply.date, reply.message_id,
             reply.text, reply.folder, reply.uidvalidity, reply.uid, reply.category, reply.rule, reply.received_at)).fetchone()
        assert row is not None
        return int(row[0]), True

    @operation
    def list_replies(self, db: Conn, query: ReplyFilter) -> tuple[list[StoredReply], int]:
        """One page of replies, newest first, and how many match in all."""
        where, params = _where(query)
        total = int(fetch_one(db, f"SELECT COUNT(*){_FROM}{where}", params)[0])  # type: ignore[index]
        rows = fetch_all(db, f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY r.received_at DESC, r.id DESC LIMIT %s OFFSET %s",
                         params + (query.limit, query.offset))
        return [_reply(row) for row in rows], total

    @operation
    def get_reply(self, db: Conn, reply_id: int) -> StoredReply:
        return _load(db, reply_id)

    @operation
    def relabel_reply(self, db: Conn, reply_id: int, category: str, now: float) -> tuple[StoredReply, bool]:
        """A person's category for a reply; each change is kept. Returns the reply and whether it changed."""
        current = _load(db, reply_id)
        if current.category == category:
            return current, False
        db.execute("INSERT INTO reply_labels (reply_id, category, previous, at) VALUES (%s, %s, %s, %s)",
                   (reply_id, category, current.category, now))
        db.execute("UPDATE replies SET category = %s, labelled_by = 'person' WHERE id = %s", (category, reply_id))
        return _load(db, reply_id), True

    @operation
    def mark_reply_read(self, db: Conn, reply_id: int, read: bool, now: float) -> StoredReply:
        _load(db, reply_id)
        db.execute("UPDATE replies SET read_at = CASE WHEN %s THEN COALESCE(read_at, %s) ELSE NULL END WHERE id = %s",
                   (read, now, reply_id))
        return _load(db, reply_id)

    @operation
    def reply_thread(self, db: Conn, reply_id: int) -> list[str]:
        """The Message-IDs an answer's References carry: what dripd sent the contact in this
        enrollment, oldest first, then the reply itself."""
        reply = _load(db, reply_id)
        sent = [r[0] for r in fetch_all(db, "SELECT message_id FROM outbox WHERE enrollment_id = %s AND id <= %s"
                                            " AND status IN ('sent', 'uncertain') ORDER BY id",
                                        (reply.enrollment_id, reply.outbox_id))]
        return sent + ([reply.message_id] if reply.message_id else [])

    @operation
    def claim_answer(self, db: Conn, reply_id: int, message_id: str, subject: str, text: str, now: float) -> int:
        """The answer's row, committed before the transport is called (as the ledger's claim is),
        so a crash mid-send leaves it visible as "sending", never silently lost or sent twice.
        The reply's row is locked: two answers claimed at once from two nodes cannot both pass."""
        _load(db, reply_id)
        db.execute("SELECT 1 FROM replies WHERE id = %s FOR UPDATE", (reply_id,))
        busy = fetch_one(db, "SELECT id FROM reply_answers WHERE reply_id = %s AND status = 'sending'", (reply_id,))
        if busy is not None:
            raise Conflict(f"an answer to reply {reply_id} is being sent", details={"replyId": reply_id})
        row = db.execute("INSERT INTO reply_answers (reply_id, message_id, subject, text, status, created_at)"
                         " VALUES (%s, %s, %s, %s, 'sending', %s) RETURNING id", (reply_id, message_id, subject, text, now)
                         ).fetchone()
        assert row is not None
        return int(row[0])

    @operation
    def record_answer(self, db: Conn, answer_id: int, outcome: str, detail: str | None, now: float) -> None:
        """The transport's verdict on an answer, and the answer in the contact's log (an event)."""
        row = fetch_one(db, "SELECT a.reply_id, a.message_id, r.enrollment_id, r.step_id FROM reply_answers a"
                            " JOIN replies r ON r.id = a.reply_id WHERE a.id = %s", (answer_id,))
        if row is None:
            raise NotFound(f"answer {answer_id} not found", details={"answerId": answer_id})
        db.execute("UPDATE reply_answers SET status = %s, detail = %s, resolved_at = %s WHERE id = %s",
                   (outcome, detail, now, answer_id))
        enrollment_event(db, EventKind.ANSWERED, now, row["enrollment_id"],
                         Answer(row["reply_id"], row["message_id"], outcome, detail), step_id=row["step_id"])


def delete_replies_of(db: Conn, contact_id: int) -> None:
    """Forget what a deleted contact wrote (its replies and their relabels)."""
    chosen = "SELECT r.id FROM replies r JOIN enrollments e ON e.id = r.enrollment_id WHERE e.contact_id = %s"
    db.execute(f"DELETE FROM reply_labels WHERE reply_id IN ({chosen})", (contact_id,))
    db.execute(f"DELETE FROM reply_answers WHERE reply_id IN ({chosen})", (contact_id,))
    db.execute(f"DELETE FROM replies WHERE id IN ({chosen})", (contact_id,))
