"""The PostgreSQL backend's own tests (migrations, fencing, SKIP LOCKED claims, NOTIFY): each
gets a fresh database in the session's temporary cluster."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Awaitable

import psycopg
import pytest

from dripd.store.api import LeaseFence
from dripd.store.postgres import PostgresStore, open_postgres_store
from tests.contract.support import RecordingSink
from tests.postgres_server import PASSWORD, PostgresServer

Opener = Callable[..., Awaitable[PostgresStore]]


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.fresh_database()


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A plain session on the test's database (a second node, an operator's psql)."""
    return psycopg.connect(url, password=PASSWORD, autocommit=True, **kwargs)


@pytest.fixture
async def open_store(pg_url: str) -> AsyncIterator[Opener]:
    """Opens stores (nodes) on the test's database; closes them all at the end."""
    opened: list[PostgresStore] = []

    async def opener(*, fence: LeaseFence | None = None, sink: RecordingSink | None = None,
                     node_id: str | None = None) -> PostgresStore:
        store = await open_postgres_store(pg_url, password=PASSWORD, events=sink or RecordingSink(), fence=fence,
                                          node_id=node_id)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()
