"""The PostgreSQL backend: several dripd nodes on one database, each mailbox leased to one node.

``PostgresStore`` implements every Protocol of ``dripd.store.api`` with the SQLite backend's
operation groups (sequences, contacts, enrollment, runs, journal, signals, replies, reports,
webhooks), each operation one transaction on a pooled psycopg connection (``connection``).
Schema changes go through ``migrations``. Durability is PostgreSQL's own COMMIT.
"""

from __future__ import annotations

from typing import Callable

import trio

from dripd.events import EventSink
from dripd.store.api import FullStore, LeaseFence
from dripd.store.postgres.connection import PgConnection
from dripd.store.postgres.contacts import ContactOps
from dripd.store.postgres.enrollment import EnrollmentOps
from dripd.store.postgres.listen import listen_due
from dripd.store.postgres.replies import ReplyOps
from dripd.store.postgres.reports import ReportOps
from dripd.store.postgres.runs import RunOps
from dripd.store.postgres.sequences import SequenceOps
from dripd.store.postgres.signals import SignalOps
from dripd.store.postgres.webhooks import WebhookOps


class PostgresStore(SequenceOps, ContactOps, EnrollmentOps, RunOps, SignalOps, ReportOps, WebhookOps, ReplyOps,
                    PgConnection):
    """PostgreSQL store: pooled sessions, one transaction per operation, fenced ledger writes."""

    async def listen_due(self, on_due: Callable[[str], None], *,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled: ``on_due(mailbox_id)`` whenever an enrollment of that mailbox became
        due sooner on any node (LISTEN dripd_due). The lanes' polling remains the fallback."""
        await listen_due(self.connect, on_due, task_status=task_status)


def as_full_store(store: PostgresStore) -> FullStore:
    """``PostgresStore`` satisfies every consumer's Protocol: mypy checks this return."""
    return store


async def open_postgres_store(url: str, *, password: str | None, events: EventSink | None = None,
                              fence: LeaseFence | None = None, node_id: str | None = None,
                              pool_size: int = 8) -> PostgresStore:
    """Open the database at ``url`` (creating or migrating its schema); committed events go to
    ``events``; with a ``fence``, every ledger write checks this node's lease on its mailbox."""
    store = PostgresStore(url, password=password, events=events, fence=fence, node_id=node_id, pool_size=pool_size)
    await store.open()
    return store


__all__ = ["PostgresStore", "as_full_store", "open_postgres_store"]
