"""The unit files pass systemd's own checks (Debian's systemd-analyze, a real part)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIPD = Path(sys.executable).parent / "dripd"


def units(tmp_path: Path) -> list[Path]:
    """Copies of the units whose binary path points at this checkout's venv."""
    out = []
    for name in ("dripd.socket", "dripd.service"):
        text = (REPO / "systemd" / name).read_text().replace("/usr/bin/dripd", str(DRIPD))
        (tmp_path / name).write_text(text)
        out.append(tmp_path / name)
    return out


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", *map(str, units(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_security_exposure_is_low(tmp_path: Path) -> None:
    service = units(tmp_path)[1]
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(service)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for dripd.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5  # documented in docs/deployment.md: 1.2 "OK"


def test_units_declare_what_the_service_needs() -> None:
    service = (REPO / "systemd" / "dripd.service").read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "StateDirectory=dripd",
                 "RuntimeDirectory=dripd", "ConfigurationDirectory=dripd", "ProtectSystem=strict",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service",
                 "NoNewPrivileges=yes", "CapabilityBoundingSet="):
        assert line in service
    assert "SocketMode=0660" in (REPO / "systemd" / "dripd.socket").read_text()
