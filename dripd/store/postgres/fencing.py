"""Fencing: a ledger write of a node that lost a mailbox's lease is refused inside its own
transaction, so a node cut off from the database (or paused past its lease) cannot send past it."""

from __future__ import annotations

from dripd.errors import FencedOut
from dripd.store.api import LeaseFence
from dripd.store.postgres.sql import Conn, fetch_one


def check_fence(db: Conn, fence: LeaseFence | None, mailbox_id: str) -> None:
    """Inside a ledger write's transaction: this node must hold the mailbox's lease, by the
    database's clock, at the generation it was given; else FencedOut (and a rollback). The lease
    row is key-share-locked until COMMIT, so a takeover (which updates it) waits for this write and
    never overlaps it. No fence (one node): no check. ``fence.token`` is called on the worker
    thread running the transaction: it must be a plain read of what the node holds.

    KEY SHARE, not SHARE: the holder's renewal (a plain UPDATE of ``expires_at``) takes FOR NO
    KEY UPDATE, which a KEY SHARE lock does not block. Under SHARE it did, and PostgreSQL lets a
    new share locker join the ones holding the row ahead of an updater already waiting, so a
    steady stream of sends kept the renewal waiting past its timeout and the node stopped its
    own lanes (seen in CI, after a restart's catch-up). A takeover locks the row FOR UPDATE
    first (``LeaseTable.acquire``), which does wait for every write in flight."""
    if fence is None:
        return
    token = fence.token(mailbox_id)
    if token is None:
        raise FencedOut(f"this node holds no lease on mailbox {mailbox_id!r}: not writing its ledger",
                        details={"mailboxId": mailbox_id})
    holder, generation = token
    row = fetch_one(db, "SELECT 1 FROM mailbox_leases WHERE mailbox_id = %s AND holder = %s AND generation = %s"
                        " AND expires_at > extract(epoch from clock_timestamp()) FOR KEY SHARE",
                    (mailbox_id, holder, generation))
    if row is None:
        raise FencedOut(f"the lease on mailbox {mailbox_id!r} (generation {generation}) expired or moved:"
                        " not writing its ledger",
                        details={"mailboxId": mailbox_id, "node": holder, "generation": generation})
