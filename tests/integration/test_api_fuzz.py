"""The control API fuzzed from its own OpenAPI document (schemathesis, a real part) against the
real daemon over TCP with a Bearer token: no request may get a 5xx."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.integration.daemon_process import MakeDripd, free_port

ST = Path(sys.executable).parent / "st"


def test_no_server_errors_from_the_openapi_document(tmp_path: Path, dripd_process: MakeDripd) -> None:
    port, token = free_port(), "fuzz-" + "t" * 20
    process = dripd_process(tmp_path, api={"listen": f"127.0.0.1:{port}",
                                          "tokens": ["sha256:" + hashlib.sha256(token.encode()).hexdigest()]})
    process.start()
    try:
        result = subprocess.run(
            [str(ST), "run", f"http://127.0.0.1:{port}/api/openapi.json", "--checks", "not_a_server_error",
             "-H", f"Authorization: Bearer {token}", "--max-examples", "15", "--workers", "1",
             "--seed", "20261125"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        assert process.stop() == 0
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert "Server error" not in summary, summary
    assert "ERROR dripd.api" not in process.log(), process.log()[-3000:]
    print(summary.splitlines()[-1])
