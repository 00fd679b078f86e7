"""The in-process daemon in simulated time with the scripted transport: what the engine,
analytics and cadence tests share (a mailbox, a running daemon, a sequence, contacts, and
moving the simulated clock to a moment)."""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import trio

from dripd.daemon import Daemon
from dripd.model import Sequence, SequenceSettings
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.conftest import make_config, running_daemon
from tests.scripted_transport import ScriptedPlugin

UTC = dt.timezone.utc
START = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday
TWO_STEPS: list[dict[str, Any]] = [
    {"type": "email", "subject": "One {{firstName|there}}", "body": "<p>one</p>"},
    {"type": "wait", "waitHours": 1},
    {"type": "email", "subject": "Two", "body": "<p>two</p>", "thread": False},
]


def mailbox(mailbox_id: str = "m", **overrides: Any) -> dict[str, Any]:
    """A scripted-transport mailbox whose caps do not get in the way unless a test sets them."""
    box: dict[str, Any] = {"id": mailbox_id, "address": f"{mailbox_id}@example.com", "transport": "scripted",
                           "scripted": {}, "daily_cap": 1000, "hourly_cap": 1000, "burst": 1000}
    box.update(overrides)
    return box


@asynccontextmanager
async def daemon_with(tmp_path: Path, *boxes: dict[str, Any], start: dt.datetime = START,
                      plugin: ScriptedPlugin | None = None, **daemon_opts: Any
                      ) -> AsyncIterator[tuple[Daemon, ScriptedPlugin]]:
    """A daemon on ``boxes`` (default: one scripted mailbox "m") whose clock reads ``start``."""
    plugin = plugin or ScriptedPlugin()
    config, plugins = make_config(tmp_path, list(boxes) or [mailbox()], extra_plugins=(plugin,), **daemon_opts)
    async with running_daemon(config, plugins, start) as daemon:
        yield daemon, plugin


async def sequence(daemon: Daemon, steps: list[dict[str, Any]] = TWO_STEPS, mailbox_id: str = "m",
                   **settings: Any) -> Sequence:
    return await daemon.control.create_sequence(
        SequenceSettings(settings.pop("name", "s"), mailbox_id, **settings), [step_from_fields(s) for s in steps])


def people(n: int, prefix: str = "p") -> list[ContactInput | int]:
    """``n`` new contacts (``Control.enroll`` also takes existing contact ids, hence the type)."""
    return [ContactInput(f"{prefix}{i:03d}@example.org", first_name=f"F{i}") for i in range(n)]


async def sleep_until(daemon: Daemon, when: dt.datetime) -> None:
    """Let simulated time run until the daemon's clock reads ``when`` (the one way tests
    move an in-process daemon forward)."""
    await trio.sleep_until(daemon.clock.to_trio(when.timestamp()))


def minutes(stamps: list[float], start: dt.datetime = START) -> list[float]:
    """Epoch stamps as minutes after ``start`` (exact simulated times read well this way)."""
    return [round((s - start.timestamp()) / 60, 3) for s in stamps]


async def status_of(daemon: Daemon, sequence_id: int) -> list[str]:
    return [c.status for c in await daemon.store.sequence_contacts(sequence_id)]
