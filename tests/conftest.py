"""Shared fixtures: an in-process daemon on a temp state dir, driven by the one clock."""

from __future__ import annotations

import datetime as dt
import math
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
import trio
import trio.testing
import trio_asyncio

from dripd.clock import Clock, offloaded
from dripd.config import Config, parse_config
from dripd.daemon import Daemon
from dripd.plugins import Plugins
from tests.postgres_server import PostgresServer, postgres_server


class SimulatedClock(trio.abc.Clock):
    """Autojump simulated time that does not jump while dripd has work off the trio thread.

    The store runs SQLite on aiosqlite's thread and the Maildir transport writes files in a
    worker thread; trio cannot see either, so ``MockClock``'s autojump would skip to the next
    deadline while a query is still running (a whole weekend could pass mid-send). This clock
    jumps to the next deadline as soon as trio is idle, like ``autojump_threshold=0``, but only
    when dripd's ``clock.offloaded`` counter says no thread work is in flight.
    """

    def __init__(self) -> None:
        self._now = 0.0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        if deadline <= self._now:
            return 0.0
        if offloaded.count or deadline == math.inf:
            return 0.0005 if offloaded.count else 999_999_999.0  # wait in real time for the thread
        self._now = deadline
        return 0.0


@pytest.fixture
def autojump_clock() -> trio.abc.Clock:
    """Overrides pytest-trio's autojump clock with one aware of dripd's threads (see above)."""
    return SimulatedClock()


def make_config(
    tmp_path: Path, mailboxes: list[dict[str, Any]], *, extra_plugins: tuple[object, ...] = (), **daemon: Any
) -> tuple[Config, Plugins]:
    plugins = Plugins(extra_plugins)
    data = {
        "daemon": {"state_dir": str(tmp_path / "var"), "socket": str(tmp_path / "var" / "dripd.sock"), **daemon},
        "mailboxes": mailboxes,
    }
    return parse_config(data, plugins.config_sections(), plugins.transports), plugins


def maildir_mailbox(tmp_path: Path, mailbox_id: str, **overrides: Any) -> dict[str, Any]:
    box = {
        "id": mailbox_id,
        "address": f"{mailbox_id}@example.com",
        "name": mailbox_id.title(),
        "timezone": "Europe/Berlin",
        "daily_cap": 50,
        "hourly_cap": 10,
        "transport": "maildir",
        "maildir": {"path": str(tmp_path / "outbox" / mailbox_id)},
    }
    box.update(overrides)
    return box


@asynccontextmanager
async def running_daemon(config: Config, plugins: Plugins, start: dt.datetime) -> AsyncIterator[Daemon]:
    """A daemon in this trio run, its clock pinned so that now == ``start``."""
    async with trio_asyncio.open_loop():
        daemon = Daemon(config, plugins, clock=Clock.starting_at(start), handle_signals=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.run)
            try:
                yield daemon
            finally:
                daemon.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One temporary PostgreSQL cluster per test run; ``postgres.fresh_database()`` per test."""
    with postgres_server() as server:
        yield server
