"""The real daemon under systemd's protocols: socket activation and sd_notify."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.daemon_process import DRIPCTL, DRIPD, DripdProcess


def test_socket_activation_serves_dripctl_on_the_passed_socket(tmp_path: Path) -> None:
    process = DripdProcess(tmp_path)  # writes the config; systemd-socket-activate starts it
    activated = tmp_path / "activated.sock"
    proc = subprocess.Popen(
        ["systemd-socket-activate", "-l", str(activated), str(DRIPD), "-c", str(process.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        result = None
        while time.monotonic() < deadline:
            if activated.exists():
                result = subprocess.run([str(DRIPCTL), "-s", str(activated), "status"], capture_output=True,
                                        text=True, timeout=30)
                if result.returncode == 0:
                    break
            time.sleep(0.1)
        assert result is not None and result.returncode == 0, result and result.stderr
        assert "version" in result.stdout.lower()
        # The daemon served the socket it was handed and did not bind its configured path.
        assert not process.socket.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def _collect(sock: socket.socket, until: str, timeout: float, seen: list[str], after: int = 0) -> int:
    """Read datagrams into ``seen`` until a line at index >= ``after`` is ``until``; its index."""
    deadline = time.monotonic() + timeout
    while True:
        for index in range(after, len(seen)):
            if seen[index] == until:
                return index
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {until!r} within {timeout}s; saw {seen}")
        sock.settimeout(remaining)
        try:
            seen.extend(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            pass


def test_notify_ready_watchdog_reloading_stopping_in_order(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    process = DripdProcess(tmp_path, env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
    try:
        process.start()
        seen: list[str] = []
        ready = _collect(sock, "READY=1", 10, seen)
        watchdog = _collect(sock, "WATCHDOG=1", 5, seen, ready)
        process.signal(signal.SIGHUP)
        reloading = _collect(sock, "RELOADING=1", 10, seen, watchdog)
        assert seen[reloading + 1].startswith("MONOTONIC_USEC=")  # sent in the same datagram
        ready_again = _collect(sock, "READY=1", 10, seen, reloading)
        process.signal(signal.SIGTERM)
        stopping = _collect(sock, "STOPPING=1", 10, seen, ready_again)
        assert process.proc is not None and process.proc.wait(15) == 0
        assert ready < watchdog < reloading < ready_again < stopping
        assert any(line.startswith("STATUS=queue depth") for line in seen)
    finally:
        process.kill()
        sock.close()
