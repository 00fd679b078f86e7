"""One knob, through the real process: `connections = 4` on an SMTP mailbox means four sends in
flight; a `concurrency` that cannot fully take effect is warned about at --check-config and start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import tomli_w

from tests.integration.daemon_process import DRIPD, MakeDripd
from tests.integration.servers import smtp_sink


def _box(port: int, **extra: object) -> dict[str, object]:
    return {"id": "sales", "address": "sales@example.com", "timezone": "UTC", "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "connections": 4}, **extra}


def test_connections_alone_sets_the_sends_in_flight(tmp_path: Path, dripd_process: MakeDripd) -> None:
    with smtp_sink() as sink:
        process = dripd_process(tmp_path, mailboxes=[_box(sink.port)])
        process.start()
        try:
            with process.client() as client:
                mailbox = client.get("/api/mailboxes").json()["mailboxes"][0]
            assert mailbox["concurrency"] == 4
            assert "concurrency" not in process.log()  # nothing to warn about
        finally:
            assert process.stop() == 0


def test_check_config_warns_about_a_concurrency_the_connections_cannot_carry(tmp_path: Path) -> None:
    for concurrency, phrase in ((16, "only 4 sends are on the wire at once"), (2, "keeps only 2 of smtp.connections = 4")):
        path = tmp_path / f"c{concurrency}.toml"
        path.write_text(tomli_w.dumps({"mailboxes": [_box(2525, concurrency=concurrency)]}))
        result = subprocess.run([str(DRIPD), "--check-config", "-c", str(path)], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stderr
        assert f"dripd: warning: mailboxes[0].concurrency = {concurrency}" in result.stderr
        assert phrase in result.stderr
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(tomli_w.dumps({"mailboxes": [_box(2525)]}))
    result = subprocess.run([str(DRIPD), "--check-config", "-c", str(quiet)], capture_output=True, text=True, timeout=30)
    assert (result.returncode, "warning" in result.stderr) == (0, False)


def test_start_logs_the_warning_and_runs_the_setting(tmp_path: Path, dripd_process: MakeDripd) -> None:
    with smtp_sink() as sink:
        process = dripd_process(tmp_path, mailboxes=[_box(sink.port, concurrency=8)])
        process.start()
        try:
            with process.client() as client:
                assert client.get("/api/mailboxes").json()["mailboxes"][0]["concurrency"] == 8
            assert "mailboxes[0].concurrency = 8 is more than smtp.connections = 4" in process.log()
        finally:
            assert process.stop() == 0
