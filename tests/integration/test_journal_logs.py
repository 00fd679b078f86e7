"""Under systemd (JOURNAL_STREAM set) every log line carries its journald priority prefix."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.daemon_process import MakeDripd


def test_log_lines_carry_priority_prefixes_under_journald(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path, env={"JOURNAL_STREAM": "8:12345"})
    process.start()
    with process.client() as client:
        assert client.get("/api/sequences/999").status_code == 404
    assert process.stop() == 0
    lines = [line for line in process.log().splitlines() if line]
    assert lines and all(re.match(r"^<[0-7]>", line) for line in lines), lines
    assert any(line.startswith("<6>dripd: dripd ready") for line in lines)


def test_plain_log_lines_without_journald(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    assert process.stop() == 0
    assert all(not line.startswith("<") for line in process.log().splitlines() if line)
