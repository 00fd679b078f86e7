"""The real daemon under systemd's protocols: socket activation and sd_notify."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from dripd.parallelism import HANDED_PER_CONNECTION
from dripd.parallelism import workers_for
from tests.integration.daemon_process import DRIPCTL, DRIPD, MakeDripd
from tests.integration.waiting import wait_until


def test_socket_activation_serves_dripctl_on_the_passed_socket(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)  # writes the config; systemd-socket-activate starts it
    activated = tmp_path / "activated.sock"
    proc = subprocess.Popen(
        ["systemd-socket-activate", "-l", str(activated), str(DRIPD), "-c", str(process.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        def answered() -> subprocess.CompletedProcess[str] | None:
            if not activated.exists():
                return None
            result = subprocess.run([str(DRIPCTL), "-s", str(activated), "status"], capture_output=True,
                                    text=True, timeout=30)
            return result if result.returncode == 0 else None

        result = wait_until(answered, interval=0.1, what="dripctl status on the activated socket")
        assert result is not None and result.returncode == 0, result and result.stderr
        assert "version" in result.stdout.lower()
        # The daemon served the socket it was handed and did not bind its configured path.
        assert not process.socket.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def _collect(sock: socket.socket, until: str, seen: list[str], after: int = 0) -> int:
    """Read datagrams into ``seen`` until a line at index >= ``after`` is ``until``; its index."""

    def arrived() -> tuple[int] | None:
        for index in range(after, len(seen)):
            if seen[index] == until:
                return (index,)
        sock.settimeout(0.1)
        try:
            seen.extend(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            pass
        return None

    return wait_until(arrived, interval=0, what=lambda: f"{until!r}; saw {seen}")[0]


def _drain(sock: socket.socket) -> list[str]:
    """Every datagram already waiting, without blocking."""
    lines: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            lines.extend(sock.recv(4096).decode().split("\n"))
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return lines


def test_notify_ready_watchdog_reloading_stopping_in_order(tmp_path: Path, dripd_process: MakeDripd) -> None:
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    process = dripd_process(tmp_path, env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
    try:
        process.start()
        seen: list[str] = []
        ready = _collect(sock, "READY=1", seen)
        watchdog = _collect(sock, "WATCHDOG=1", seen, ready)
        process.signal(signal.SIGHUP)
        reloading = _collect(sock, "RELOADING=1", seen, watchdog)
        assert seen[reloading + 1].startswith("MONOTONIC_USEC=")  # sent in the same datagram
        ready_again = _collect(sock, "READY=1", seen, reloading)
        process.signal(signal.SIGTERM)
        stopping = _collect(sock, "STOPPING=1", seen, ready_again)
        assert process.proc is not None and process.proc.wait(15) == 0
        assert ready < watchdog < reloading < ready_again < stopping
        assert any(line.startswith("STATUS=queue depth") for line in seen)
    finally:
        process.kill()
        sock.close()


def test_watchdog_pings_stop_when_the_scheduler_is_wedged(tmp_path: Path, dripd_process: MakeDripd) -> None:
    """An SMTP server that accepts the connection and then never answers RCPT (with a long
    transport timeout) holds the mailbox's only connection; once every worker of the lane waits
    behind it, the next due send blocks the lane's loop, and the pings must stop so that systemd
    restarts the service."""
    from tests.integration.servers import smtp_sink

    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    with smtp_sink({"rules": [{"on": "rcpt", "action": "stall"}]}) as sink:
        box = {"id": "sales", "address": "sales@example.com", "timezone": "UTC", "daily_cap": 1000,
               "hourly_cap": 1000, "burst": 100, "transport": "smtp", "smtp": sink.smtp_table(timeout_seconds=60)}
        process = dripd_process(tmp_path, mailboxes=[box],
                               env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
        try:
            process.start()
            seen: list[str] = []
            _collect(sock, "WATCHDOG=1", seen, _collect(sock, "READY=1", seen))
            with process.client() as client:
                sequence_id = client.post("/api/sequences", json={
                    "name": "wedge", "mailboxId": "sales",
                    "steps": [{"type": "email", "subject": "s", "body": "b"}]}).json()["id"]
                # More contacts than the lane has workers (one send stalled, the others handed
                # to the transport behind it, claimed, or waiting their turn): the next dispatch
                # blocks the lane's loop. One connection; the SMTP transport is handed more.
                workers = workers_for(1, HANDED_PER_CONNECTION)
                csv = "email\n" + "".join(f"w{i}@example.org\n" for i in range(workers + 2))
                client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                            headers={"content-type": "text/csv"})
                client.post(f"/api/sequences/{sequence_id}/start")
            # Once wedged, each watchdog round (0.2 s here) logs that it withholds the ping. After
            # the first such round, five more go by and not one ping is sent meanwhile.
            wedged = "scheduler not making progress"
            wait_until(lambda: wedged in process.log(), what=process.log)
            _drain(sock)  # pings sent before the wedge was noticed
            rounds = process.log().count(wedged)
            wait_until(lambda: process.log().count(wedged) >= rounds + 5, what=process.log)
            assert "WATCHDOG=1" not in _drain(sock), "pings never stopped"
            assert "scheduler not making progress" in process.log()
        finally:
            process.kill()
            sock.close()
