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


def test_watchdog_pings_stop_when_the_scheduler_is_wedged(tmp_path: Path) -> None:
    """An SMTP server that accepts the connection and then never answers RCPT (with a long
    transport timeout) holds the mailbox's only worker; the next due send then blocks the lane's
    loop, and the pings must stop so that systemd restarts the service."""
    from tests.integration.servers import smtp_sink

    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    with smtp_sink({"rules": [{"on": "rcpt", "action": "stall"}]}) as sink:
        box = {"id": "sales", "address": "sales@example.com", "timezone": "UTC", "daily_cap": 1000,
               "hourly_cap": 1000, "burst": 100, "transport": "smtp", "smtp": sink.smtp_table(timeout_seconds=60)}
        process = DripdProcess(tmp_path, mailboxes=[box],
                               env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
        try:
            process.start()
            seen: list[str] = []
            _collect(sock, "WATCHDOG=1", 5, seen, _collect(sock, "READY=1", 10, seen))
            with process.client() as client:
                sequence_id = client.post("/api/sequences", json={
                    "name": "wedge", "mailboxId": "sales",
                    "steps": [{"type": "email", "subject": "s", "body": "b"}]}).json()["id"]
                csv = "email\n" + "".join(f"w{i}@example.org\n" for i in range(3))
                client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                            headers={"content-type": "text/csv"})
                client.post(f"/api/sequences/{sequence_id}/start")
            # Once wedged, a full second (five ping intervals) passes without a single ping.
            deadline = time.monotonic() + 15
            quiet_since = None
            while time.monotonic() < deadline:
                sock.settimeout(0.1)
                try:
                    got = sock.recv(4096).decode().split("\n")
                except socket.timeout:
                    got = []
                if "WATCHDOG=1" in got:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 1.0:
                    break
            assert quiet_since is not None and time.monotonic() - quiet_since > 1.0, "pings never stopped"
            assert "scheduler not making progress" in process.log()
        finally:
            process.kill()
            sock.close()
