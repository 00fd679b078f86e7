"""The backend contract suite: every test takes ``store`` (a backend opened on an empty database)
and talks to it only through the Protocols of ``dripd.store.api``.

The ``backend`` fixture names the backend: ``sqlite``, and ``postgresql`` (a fresh database per
test in the session's temporary cluster, its URL left under the test's ``tmp_path``); every
test runs against both. Tests of one backend's own machinery (SQLite's group
commit, PRAGMAs, migrations) live under ``tests/contract/<backend>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import trio_asyncio

from dripd.store import FullStore
from tests.contract.support import BACKENDS, PG_URL_FILE, RecordingSink, open_backend
from tests.postgres_server import PostgresServer


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    name: str = request.param
    if name == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        (tmp_path / PG_URL_FILE).write_text(server.fresh_database())
    return name


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def store(backend: str, tmp_path: Path, sink: RecordingSink) -> AsyncIterator[FullStore]:
    async with trio_asyncio.open_loop():
        opened = await open_backend(backend, tmp_path, sink)
        try:
            yield opened
        finally:
            await opened.close()
