"""The SQLite backend: the embedded default store (one file, WAL, one writer connection).

``Store`` implements every Protocol of ``dripd.store.api``; its operations are plain sqlite3
functions grouped by concern (sequences, contacts, enrollment, the send path, signals,
reports), group-committed (``connection``): brief send-path operations run on the event loop up
to their COMMIT, everything else and every COMMIT on the connection's thread. Schema
changes go through ``migrations``. SQLite-specific tuning stays in this package.
"""

from __future__ import annotations

from pathlib import Path

from dripd.events import EventSink
from dripd.store.api import FullStore
from dripd.store.sqlite.connection import (
    SqliteConnection,
    claim_operation,
    control_operation,
    read_operation,
    send_operation,
    thread_operation,
)
from dripd.store.sqlite.contacts import ContactOps
from dripd.store.sqlite.enrollment import EnrollmentOps
from dripd.store.sqlite.replies import ReplyOps
from dripd.store.sqlite.reports import ReportOps
from dripd.store.sqlite.runs import RunOps
from dripd.store.sqlite.sequences import SequenceOps
from dripd.store.sqlite.signals import SignalOps
from dripd.store.sqlite.webhooks import WebhookOps


class Store(SequenceOps, ContactOps, EnrollmentOps, RunOps, SignalOps, ReportOps, WebhookOps, ReplyOps, SqliteConnection):
    """SQLite store: one connection, one writer; every method runs over the trio-asyncio bridge."""


def as_full_store(store: Store) -> FullStore:
    """``Store`` satisfies every consumer's Protocol: mypy checks this return, so a method that
    drifts from ``dripd.store.api`` fails the type check, not a caller at run time."""
    return store


async def open_store(path: Path, events: EventSink | None = None) -> Store:
    """Open (creating or migrating) the database at ``path``; committed events go to ``events``."""
    store = Store(path, events)
    await store.open()
    return store


__all__ = ["Store", "as_full_store", "claim_operation", "control_operation", "open_store", "read_operation",
           "send_operation", "thread_operation"]
