"""PostgreSQL migrations: versioned and recorded, idempotent, safe when nodes start at once,
and a database from a newer dripd is refused untouched."""

from __future__ import annotations

import threading

import pytest

from dripd.errors import StoreError
from dripd.store.postgres.migrations import LATEST, migrate
from tests.contract.postgres.conftest import Opener, connect


def _versions(url: str) -> list[int]:
    with connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


async def test_opening_twice_applies_each_migration_once(pg_url: str, open_store: Opener) -> None:
    await open_store()
    await open_store()
    assert _versions(pg_url) == list(range(1, LATEST + 1))
    with connect(pg_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"sequences", "outbox", "events", "webhook_deliveries", "replies", "cluster_nodes",
            "mailbox_leases"} <= tables


def test_nodes_migrating_at_once_apply_it_once(pg_url: str) -> None:
    """Eight sessions migrate an empty database at the same moment: the advisory lock lines them
    up, one applies, the others find it done; none fails."""
    start = threading.Barrier(8)
    found: list[int] = []
    errors: list[BaseException] = []

    def node() -> None:
        try:
            with connect(pg_url) as conn:
                start.wait(timeout=30)
                found.append(migrate(conn, 0.0))
        except BaseException as exc:  # reported below, with the others'
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a migrating session did not finish within 60 s"
    assert errors == []
    assert sorted(found) == [0] + [LATEST] * 7  # the first saw an empty database, the rest a migrated one
    assert _versions(pg_url) == list(range(1, LATEST + 1))


async def test_a_newer_schema_is_refused_and_left_alone(pg_url: str, open_store: Opener) -> None:
    await open_store()
    with connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, 0)", (LATEST + 1,))
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1} is newer"):
        await open_store()
    assert _versions(pg_url) == list(range(1, LATEST + 2))


async def test_a_password_refused_is_said_in_words(pg_url: str) -> None:
    from dripd.store.postgres import open_postgres_store
    with pytest.raises(StoreError, match="password was refused") as caught:
        await open_postgres_store(pg_url, password="not-the-password")
    assert "not-the-password" not in str(caught.value.to_dict())
