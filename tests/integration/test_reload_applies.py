"""A reload applies what changed to the running services (in process, real SMTP sinks): a new
SMTP host takes the next send, a new concurrency changes the sends in flight, and a changed
listener is named in the log as needing a restart."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import trio_asyncio
import trio

from dripd.clock import Clock
from dripd.config import load_config
from dripd.daemon import Daemon
from dripd.model import Action, SequenceSettings
from dripd.plugins import Plugins
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.integration.servers import SmtpSink, smtp_sink
from tests.integration.waiting import wait_until_async


def write(path: Path, tmp_path: Path, sink: SmtpSink, *, concurrency: int = 1, metrics: str | None = None) -> None:
    box = {"id": "m", "address": "m@example.com", "timezone": "UTC", "hourly_cap": 10_000, "burst": 100,
           "daily_cap": 10_000, "transport": "smtp", "concurrency": concurrency,
           "smtp": sink.smtp_table(connections=concurrency)}
    data: dict[str, Any] = {"daemon": {"state_dir": str(tmp_path / "var")}, "mailboxes": [box]}
    if metrics is not None:
        data["metrics"] = {"listen": metrics}
    path.write_text(tomli_w.dumps(data))


async def test_reload_moves_sends_to_the_new_smtp_host_and_applies_concurrency(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "dripd.toml"
    with smtp_sink() as first, smtp_sink() as second:
        write(path, tmp_path, first)
        plugins = Plugins()
        config = load_config(path, plugins.config_sections(), plugins.transports)
        async with trio_asyncio.open_loop():
            daemon = Daemon(config, plugins, config_path=path, clock=Clock(), handle_signals=False)
            async with trio.open_nursery() as nursery:
                await nursery.start(daemon.run)
                sequence = await daemon.control.create_sequence(
                    SequenceSettings("s", "m", auto_complete=False), [step_from_fields({"type": "email", "subject": "x", "body": "y"})])
                await daemon.control.transition(sequence.id, Action.START)
                await daemon.control.enroll(sequence.id, [ContactInput("a@example.org")])
                await wait_until_async(_count(first, 1), what="the first message at the first host")

                write(path, tmp_path, second, concurrency=3, metrics="127.0.0.1:1")
                with caplog.at_level(logging.INFO, logger="dripd"):
                    await daemon.reload()
                lane = daemon.scheduler.lanes["m"]
                assert lane.concurrency == 3
                await daemon.control.enroll(sequence.id, [ContactInput(f"p{i}@example.org") for i in range(6)])
                await wait_until_async(_count(second, 6), what="the later messages at the new host")
                daemon.stop()
        assert first.count("dot") == 1  # nothing more went to the old host after the reload
    assert "[metrics] listen changed; it takes effect after a restart" in caplog.text
    assert "mailbox m uses its new transport settings from the next send" in caplog.text


def _count(sink: SmtpSink, n: int) -> Any:
    async def check() -> bool:
        return sink.count("dot") >= n
    return check
