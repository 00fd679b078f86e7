"""SIGHUP semantics in process: a good config changes caps and mailboxes without dropping
scheduled work; a bad one is refused and the running config stays."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import tomli_w
import trio
import trio_asyncio

from dripd.clock import Clock
from dripd.config import load_config
from dripd.daemon import Daemon
from dripd.model import Action, SequenceSettings
from dripd.steps import step_from_fields
from dripd.plugins import Plugins
from dripd.store import ContactInput

START = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone.utc)


def write(path: Path, tmp_path: Path, hourly_cap: int, extra_box: bool = False) -> None:
    boxes: list[dict[str, Any]] = [{"id": "m", "address": "m@example.com", "hourly_cap": hourly_cap, "burst": 1,
                                    "daily_cap": 1000, "maildir": {"path": str(tmp_path / "out-m")}}]
    if extra_box:
        boxes.append({"id": "n", "address": "n@example.com", "maildir": {"path": str(tmp_path / "out-n")}})
    path.write_text(tomli_w.dumps({"daemon": {"state_dir": str(tmp_path / "var")}, "mailboxes": boxes}))


async def test_reload_applies_new_caps_and_mailboxes_and_refuses_a_bad_file(
    tmp_path: Path, autojump_clock: Any, caplog: Any,
) -> None:
    path = tmp_path / "dripd.toml"
    write(path, tmp_path, hourly_cap=1)
    plugins = Plugins()
    config = load_config(path, plugins.config_sections(), plugins.transports)
    async with trio_asyncio.open_loop():
        daemon = Daemon(config, plugins, config_path=path, clock=Clock.starting_at(START), handle_signals=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.run)
            seq = await daemon.control.create_sequence(
                SequenceSettings("s", "m"), [step_from_fields({"type": "email", "subject": "x", "body": "y"})])
            await daemon.control.transition(seq.id, Action.START)
            await daemon.control.enroll(seq.id, [ContactInput(f"p{i}@example.org") for i in range(4)])
            await trio.sleep(60)
            assert len(list((tmp_path / "out-m" / "new").iterdir())) == 1  # 1/hour: the rest wait

            write(path, tmp_path, hourly_cap=60, extra_box=True)
            await daemon.reload()
            assert daemon.scheduler.lanes["m"].limiter.limits.hourly_cap == 60
            assert "n" in daemon.scheduler.lanes
            await trio.sleep(60 * 4)
            # Nothing scheduled was dropped: with 60/h (one a minute) the rest went.
            assert len(list((tmp_path / "out-m" / "new").iterdir())) == 4

            path.write_text("[daemon\n")
            with caplog.at_level(logging.ERROR):
                await daemon.reload()
            assert "reload refused" in caplog.text and "invalid TOML" in caplog.text
            assert daemon.config.mailbox("n") is not None and daemon.scheduler.lanes["m"].limiter.limits.hourly_cap == 60
            daemon.stop()
