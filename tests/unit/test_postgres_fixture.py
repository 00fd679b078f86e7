"""The PostgreSQL fixture itself: a fresh database per call, reachable with the password only."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres_server import PASSWORD, PostgresServer


def test_fresh_databases_are_separate_and_need_the_password(postgres: PostgresServer) -> None:
    first, second = postgres.fresh_database(), postgres.fresh_database()
    assert first != second
    with psycopg.connect(first, password=PASSWORD) as conn:
        conn.execute("CREATE TABLE t (x int)")
    with psycopg.connect(second, password=PASSWORD) as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(first, password="wrong").close()
