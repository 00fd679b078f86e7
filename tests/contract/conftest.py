"""The backend contract suite: every test takes ``store`` (a backend opened on an empty database)
and talks to it only through the Protocols of ``dripd.store.api``.

The ``backend`` fixture names the backend; today only ``sqlite``. A PostgreSQL backend joins by
adding its name to ``BACKENDS`` and a branch to ``open_backend`` (a fresh database per test);
every test then runs against it too. Tests of one backend's own machinery (SQLite's group
commit, PRAGMAs, migrations) live under ``tests/contract/<backend>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import trio_asyncio

from dripd.store import FullStore
from tests.contract.support import BACKENDS, RecordingSink, open_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
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
