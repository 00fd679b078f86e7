"""The real ``dripd`` process on a temp config, for end-to-end tests.

``DripdProcess`` writes a config (Maildir transport, state under a temp dir), starts
``.venv/bin/dripd -c CONFIG``, and waits until its control socket answers. Tests talk to it
over the real Unix socket (``client()``), read what it "sent" from the Maildir (``messages()``),
and can signal it, kill -9 it and start it again on the same state.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import tomli_w

from tests.integration.servers import free_port as free_port  # re-exported for the tests
from tests.integration.waiting import wait_until

DRIPD = Path(sys.executable).parent / "dripd"
DRIPCTL = Path(sys.executable).parent / "dripctl"


def fast_mailbox(root: Path, mailbox_id: str = "sales", **overrides: Any) -> dict[str, Any]:
    """A Maildir mailbox whose caps do not slow a real-time test down."""
    box: dict[str, Any] = {
        "id": mailbox_id, "address": f"{mailbox_id}@example.com", "name": mailbox_id.title(),
        "timezone": "UTC", "daily_cap": 100000, "hourly_cap": 100000, "burst": 1000,
        "transport": "maildir", "maildir": {"path": str(root / "outbox" / mailbox_id)},
    }
    box.update(overrides)
    return box


def smtp_mailbox(smtp: dict[str, Any], mailbox_id: str = "sales") -> dict[str, Any]:
    """An SMTP mailbox (``smtp``: the server's table) whose caps do not slow a test down."""
    return {"id": mailbox_id, "address": f"{mailbox_id}@sender.example", "name": mailbox_id.title(),
            "timezone": "UTC", "daily_cap": 100000, "hourly_cap": 100000, "burst": 1000, "transport": "smtp",
            "smtp": smtp}


def contact_addresses(count: int) -> list[str]:
    return [f"c{i:04d}@example.org" for i in range(count)]


def start_one_step_sequence(process: "DripdProcess", name: str, addresses: list[str], mailbox_id: str = "sales") -> int:
    """Create an auto-completing sequence of one email step on ``mailbox_id``, enroll
    ``addresses`` by CSV and start it; returns its id."""
    with process.client() as client:
        created = client.post("/api/sequences", json={
            "name": name, "mailboxId": mailbox_id, "autoComplete": True,
            "steps": [{"type": "email", "subject": "Hello {{firstName}}", "body": "<p>one</p>"}]})
        assert created.status_code == 201, created.text
        sequence_id = int(created.json()["id"])
        csv = "email,firstName\n" + "".join(f"{address},N{i}\n" for i, address in enumerate(addresses))
        enrolled = client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                               headers={"content-type": "text/csv"})
        assert enrolled.status_code == 201, enrolled.text
        started = client.post(f"/api/sequences/{sequence_id}/start")
        assert started.status_code == 200, started.text
    return sequence_id


class DripdProcess:
    def __init__(self, root: Path, *, mailboxes: list[dict[str, Any]] | None = None,
                 daemon: dict[str, Any] | None = None, api: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.state_dir = root / "var"
        self.socket = root / "run" / "dripd.sock"
        # dripd refuses a socket in a missing directory (as RuntimeDirectory= makes /run/dripd).
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "dripd.toml"
        self.log_path = root / "dripd.log"
        self.mailboxes = mailboxes if mailboxes is not None else [fast_mailbox(root)]
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        config: dict[str, Any] = {
            "daemon": {"state_dir": str(self.state_dir), "socket": str(self.socket), "log_level": "info",
                       "shutdown_grace_seconds": 5, **(daemon or {})},
            "mailboxes": self.mailboxes,
        }
        if api:
            config["api"] = api
        config.update(extra or {})
        self.write_config(config)

    def write_config(self, config: dict[str, Any]) -> None:
        self.config = config
        self.config_path.write_text(tomli_w.dumps(config))

    def maildir(self, mailbox_id: str | None = None) -> Path:
        box = next(m for m in self.mailboxes if mailbox_id is None or m["id"] == mailbox_id)
        return Path(box["maildir"]["path"])

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([str(DRIPD), "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env}, cwd=self.root)
        log.close()
        proc = self.proc

        def answering() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"dripd exited with {proc.returncode}:\n{self.log()}")
            if self.socket.exists():
                try:
                    with self.client(timeout=2.0) as client:
                        return client.get("/api/status").status_code == 200
                except httpx.TransportError:
                    pass
            return False

        try:
            wait_until(answering, timeout=timeout, what=lambda: f"dripd answering on {self.socket}:\n{self.log()}")
        except AssertionError as exc:
            self.kill()
            raise RuntimeError(str(exc)) from None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9: no graceful stop, the socket file stays behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- talking to it -------------------------------------------------------------------

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://dripd",
                            timeout=timeout)

    def dripctl(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DRIPCTL), "-s", str(self.socket), *args], capture_output=True, text=True,
                              input=input.decode() if input is not None else None, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def messages(self, mailbox_id: str | None = None) -> list[EmailMessage]:
        new = self.maildir(mailbox_id) / "new"
        if not new.exists():
            return []
        paths = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]

    def wait_for_messages(self, count: int, mailbox_id: str | None = None, timeout: float = 60.0) -> list[EmailMessage]:
        """Until the Maildir holds ``count`` messages or more; all of them, oldest first."""

        def enough() -> list[EmailMessage] | None:
            found = self.messages(mailbox_id)
            return found if len(found) >= count else None

        return wait_until(enough, timeout=timeout, what=lambda: f"{count} message(s), found "
                                                                f"{len(self.messages(mailbox_id))}:\n{self.log()}")


@contextmanager
def running_dripd(root: Path, **kwargs: Any) -> Iterator[DripdProcess]:
    """Start the real daemon; always stop it (kill it if it will not stop) on the way out."""
    process = DripdProcess(root, **kwargs)
    process.start()
    try:
        yield process
    finally:
        try:
            process.stop()
        except subprocess.TimeoutExpired:
            process.kill()


MakeDripd = Callable[..., DripdProcess]
"""``DripdProcess``'s signature: what the ``dripd_process`` fixture hands a test."""
