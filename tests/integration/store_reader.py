"""Reading a daemon's database through the store's public interface, never raw SQL, so the
tests hold for any backend that keeps the ``Store`` methods.

``opened_store`` is for a test already inside a trio run (an in-process daemon that has
stopped); ``read_store`` for a synchronous test of a separate ``dripd`` process, which must be
stopped first (the reads see exactly what it left behind; the next start would resolve rows
left ``sending``). Both only read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, TypeVar

import trio
import trio_asyncio

from dripd.store import FullStore, Store, open_store

T = TypeVar("T")


@asynccontextmanager
async def opened_store(path: Path) -> AsyncIterator[Store]:
    """The store at ``path``, in its own trio-asyncio loop (the store's calls cross it)."""
    async with trio_asyncio.open_loop():
        store = await open_store(path)
        try:
            yield store
        finally:
            await store.close()


def read_store(path: Path, read: Callable[[Store], Awaitable[T]]) -> T:
    """``await read(store)`` on the database at ``path``, from synchronous code."""

    async def main() -> T:
        async with opened_store(path) as store:
            return await read(store)

    return trio.run(main)


@dataclass(frozen=True)
class SequenceOutcome:
    """Where a sequence's contacts ended and which of its sends are reported uncertain."""

    statuses: dict[str, str]  # contact email -> enrollment status (the latest enrollment)
    enrollment_statuses: list[str]  # the status of every enrollment, in enrollment order
    uncertain: set[tuple[str, str]]  # (contact email, subject) of each outbox row left uncertain


async def sequence_outcome(store: FullStore, sequence_id: int) -> SequenceOutcome:
    contacts = await store.sequence_contacts(sequence_id)
    statuses = {c.email: c.status for c in contacts}
    by_enrollment = {c.enrollment_id: c for c in contacts}
    uncertain = set()
    for row in await store.outbox_in_state("uncertain"):
        contact = by_enrollment.get(row.enrollment_id)
        if contact is None:
            continue  # another sequence's row
        history = await store.contact_history(sequence_id, contact.contact_id)
        subject = next(m["subject"] for m in history["messages"] if m["id"] == row.id)
        uncertain.add((contact.email, str(subject)))
    return SequenceOutcome(statuses, [c.status for c in contacts], uncertain)
