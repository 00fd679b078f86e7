"""Storage faults on the real daemon: the database locked by another process, the disk full,
the file system read-only. dripd refuses work with a clear error, keeps what it had, and
carries on when the fault clears. (Runs as root: tmpfs mounts make a small, full or read-only
file system; CI runs as root too.)"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Iterator

import httpx

from tests.integration.daemon_process import MakeDripd, fast_mailbox


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def make_sequence(client: httpx.Client) -> int:
    created = client.post("/api/sequences", json={
        "name": "faults", "mailboxId": "sales", "autoComplete": False,
        "steps": [{"type": "email", "subject": "Hi {{firstName}}", "body": "<p>hi</p>"}]})
    assert created.status_code == 201, created.text
    sequence_id = int(created.json()["id"])
    assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
    return int(sequence_id)


def enroll(client: httpx.Client, sequence_id: int, email: str) -> httpx.Response:
    return client.post(f"/api/sequences/{sequence_id}/enroll", json={"contactEmail": email})


def test_database_locked_by_another_process(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    try:
        with process.client() as client:
            sequence_id = make_sequence(client)
            assert enroll(client, sequence_id, "a@example.org").status_code == 201
            process.wait_for_messages(1)
            other = sqlite3.connect(process.state_dir / "dripd.sqlite3", isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")
            refused = enroll(client, sequence_id, "b@example.org")
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "store_unavailable" and "locked by another process" in error["message"]
            other.execute("ROLLBACK")
            other.close()
            assert enroll(client, sequence_id, "b@example.org").status_code == 201
            process.wait_for_messages(2)
    finally:
        assert process.stop() == 0


def test_disk_full_then_freed(tmp_path: Path, dripd_process: MakeDripd) -> None:
    with tmpfs(tmp_path / "small", "4m") as root:
        process = dripd_process(root, mailboxes=[fast_mailbox(root)])
        process.start()
        try:
            with process.client() as client:
                sequence_id = make_sequence(client)
                for i in range(5):
                    assert enroll(client, sequence_id, f"c{i}@example.org").status_code == 201
                process.wait_for_messages(5)
                filler = root / "filler"
                # Outside the file too: a chunk cut short by the full disk is flushed again at close,
                # which fails the same way (how often depends on where the free space ends).
                with contextlib.suppress(OSError), filler.open("wb") as out:
                    while True:
                        out.write(b"\0" * 65536)
                        out.flush()
                        os.fsync(out.fileno())
                refused = [enroll(client, sequence_id, f"d{i}@example.org") for i in range(5)]
                codes = {r.status_code for r in refused}
                assert 503 in codes, [r.text for r in refused]
                messages = [r.json()["error"]["message"] for r in refused if r.status_code == 503]
                assert all("disk is full" in m for m in messages), messages
                assert client.get("/api/status").status_code == 200  # still answering
                filler.unlink()
                for i in range(5):
                    response = enroll(client, sequence_id, f"d{i}@example.org")
                    assert response.status_code in (201, 409), response.text  # 409: it had gone in
                process.wait_for_messages(10, timeout=90)
        finally:
            assert process.stop() == 0
        recipients = sorted(str(m["To"]) for m in process.messages())
        assert len(recipients) == 10 and len(set(recipients)) == 10


def test_read_only_database_refuses_to_start_then_carries_on(tmp_path: Path, dripd_process: MakeDripd) -> None:
    """A database on a read-only file system: dripd says so and exits non-zero, losing nothing;
    once writable again it starts with everything it had."""
    process = dripd_process(tmp_path)
    process.start()
    with process.client() as client:
        sequence_id = make_sequence(client)
        assert enroll(client, sequence_id, "r0@example.org").status_code == 201
        process.wait_for_messages(1)
    assert process.stop() == 0
    state = process.state_dir
    subprocess.run(["mount", "--bind", str(state), str(state)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
        try:
            process.start(timeout=10)
            started = True
        except RuntimeError as exc:
            started = False
            message = str(exc)
        assert not started
        # Found before the database is opened: the state_dir is unusable, a config error (78).
        assert "dripd exited with 78" in message and f"daemon.state_dir: {state} is not writable" in message
        assert "Traceback" not in message
    finally:
        subprocess.run(["umount", str(state)], check=False)
    process.start()
    try:
        with process.client() as client:
            contacts = client.get(f"/api/sequences/{sequence_id}/contacts").json()["contacts"]
            assert [c["email"] for c in contacts] == ["r0@example.org"]
            assert enroll(client, sequence_id, "r1@example.org").status_code == 201
            process.wait_for_messages(2)
    finally:
        assert process.stop() == 0
