"""The TCP listener's Bearer tokens, and the control socket's life across starts and kills."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx

from tests.integration.daemon_process import DRIPD, MakeDripd, free_port, running_dripd

TOKEN = "s3cret-token-for-tests"
FILE_TOKEN = "another-token-from-a-credential-file"


def test_tcp_needs_the_right_bearer_token(tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(FILE_TOKEN + "\n")
    api = {"listen": f"127.0.0.1:{port}", "tokens": [f"sha256:{hashlib.sha256(TOKEN.encode()).hexdigest()}"],
           "token_files": [str(token_file)]}
    with running_dripd(tmp_path, api=api) as dripd, httpx.Client(base_url=f"http://127.0.0.1:{port}") as tcp:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": "Bearer"}):
            response = tcp.get("/api/status", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert tcp.post("/api/sequences", json={"name": "x", "mailboxId": "sales"}).status_code == 401
        ok = tcp.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["version"]
        assert tcp.get("/api/sequences", headers={"Authorization": f"Bearer {FILE_TOKEN}"}).status_code == 200
        # The Unix socket needs no token; the token never reaches the log.
        with dripd.client() as local:
            assert local.get("/api/status").status_code == 200
        dripd.stop()
        assert TOKEN not in dripd.log() and FILE_TOKEN not in dripd.log()


def test_stale_socket_is_replaced_and_a_live_one_is_not(tmp_path: Path, dripd_process: MakeDripd) -> None:
    dripd = dripd_process(tmp_path)
    dripd.start()
    try:
        dripd.kill()  # kill -9 leaves the socket file behind
        assert dripd.socket.exists()
        dripd.start()  # ... and the next start takes it over
        with dripd.client() as client:
            assert client.get("/api/status").status_code == 200
        # A second daemon on the same socket must not steal it from the live one.
        other_root = tmp_path / "other"
        other_root.mkdir()
        other = dripd_process(other_root)
        other.write_config({**other.config, "daemon": {**other.config["daemon"], "socket": str(dripd.socket)}})
        proc = subprocess.run([str(DRIPD), "-c", str(other.config_path)], capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and "in use" in proc.stderr
        with dripd.client() as client:
            assert client.get("/api/status").status_code == 200
        assert dripd.stop() == 0
        assert not dripd.socket.exists()  # a graceful stop removes its socket
    finally:
        dripd.kill()
