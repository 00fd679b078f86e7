"""The only room that touches the database. ``Store`` is the SQLite backend's full interface."""

from __future__ import annotations

from pathlib import Path

from dripd.store.analytics import AnalyticsOps, MessageFacts, TrackedMessage
from dripd.store.catalog import CatalogOps, ContactInput, ContactProgress, EnrollResult
from dripd.store.runs import Claim, DueRow, OutboxRow, RunContext, RunOps
from dripd.store.signals import SentRef, SignalOps
from dripd.store.sqlite import SqliteConnection


class Store(CatalogOps, RunOps, SignalOps, AnalyticsOps, SqliteConnection):
    """SQLite store: one connection, one writer; every method runs over the trio-asyncio bridge."""


async def open_store(path: Path) -> Store:
    store = Store(path)
    await store.open()
    return store


__all__ = ["Claim", "ContactInput", "ContactProgress", "DueRow", "EnrollResult", "MessageFacts", "OutboxRow", "RunContext", "SentRef",
           "Store", "TrackedMessage", "open_store"]
