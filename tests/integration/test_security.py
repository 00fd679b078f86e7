"""Security on the real daemon: the control socket refuses other users; no secret ever reaches
a log line, however the daemon is driven (bad tokens, failed logins, reloads)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx

from tests.integration.daemon_process import DRIPCTL, MakeDripd, free_port
from tests.integration.waiting import wait_until


def test_control_socket_refuses_another_user(tmp_path: Path, dripd_process: MakeDripd) -> None:
    # The socket's directory must be reachable by that user: only the socket's own mode refuses.
    run_dir = Path(tempfile.mkdtemp(prefix="dripd-perm-"))
    run_dir.chmod(0o755)
    try:
        process = dripd_process(tmp_path, daemon={"socket": str(run_dir / "dripd.sock")})
        process.socket = run_dir / "dripd.sock"
        process.start()
        try:
            assert (process.socket.stat().st_mode & 0o777) == 0o660
            as_nobody = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 str(DRIPCTL), "-s", str(process.socket), "status"],
                capture_output=True, text=True, timeout=30, env={**os.environ, "HOME": "/tmp"})
            assert as_nobody.returncode != 0
            assert "permission denied" in as_nobody.stderr.lower(), as_nobody.stderr
            assert "Traceback" not in as_nobody.stderr
            assert process.dripctl("status").returncode == 0  # the owner still gets in
        finally:
            assert process.stop() == 0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test_no_secret_in_any_log_line(tmp_path: Path, dripd_process: MakeDripd) -> None:
    token = "tok-" + "s3cr3t" * 5
    smtp_password = "pw-" + "hunter2" * 4
    (tmp_path / "smtp-password").write_text(smtp_password)
    port = free_port()
    process = dripd_process(
        tmp_path,
        api={"listen": f"127.0.0.1:{port}", "tokens": ["sha256:" + hashlib.sha256(token.encode()).hexdigest()]},
        daemon={"log_level": "debug"},
    )
    # A second mailbox on SMTP to a closed port: it fails to connect and logs about it.
    smtp_box = {key: value for key, value in process.mailboxes[0].items() if key != "maildir"}
    smtp_box.update(id="smtp", address="smtp@example.com", transport="smtp", smtp={
        "host": "127.0.0.1", "port": free_port(), "security": "none", "username": "smtp@example.com",
        "password_file": str(tmp_path / "smtp-password"), "timeout_seconds": 2})
    process.mailboxes.append(smtp_box)
    process.write_config({**process.config, "mailboxes": process.mailboxes})
    process.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/status").status_code == 401
        assert httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
        assert httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with process.client() as client:
            sequence = client.post("/api/sequences", json={
                "name": "s", "mailboxId": "smtp", "steps": [{"type": "email", "subject": "s", "body": "b"}]}).json()
            client.post(f"/api/sequences/{sequence['id']}/start")
            client.post(f"/api/sequences/{sequence['id']}/enroll", json={"contactEmail": "x@example.org"})
        process.signal(signal.SIGHUP)  # a reload re-reads the secrets' sources
        wait_until(lambda: "configuration reloaded" in process.log(), what=process.log)
    finally:
        assert process.stop() == 0
    log = process.log()
    assert "reloaded" in log  # the log did capture activity
    for secret in (token, smtp_password):
        assert secret not in log
