"""The server's side of ``dripctl enroll --csv``: polls the import job (GET /api/imports/{id})
while the upload and the enrollment run, so the bar does not stop at "uploaded" for the minutes
a large file takes to check and enroll."""

from __future__ import annotations

import threading
import uuid
from typing import Any, TextIO

from dripd.ctl.client import Client, CtlError

POLL_SECONDS = 0.5


def new_import_id() -> str:
    return f"dripctl-{uuid.uuid4().hex[:16]}"


def describe(job: dict[str, Any]) -> str:
    """One line for a job: ``server: enrolling, 40000 row(s) checked, 12000 enrolled``."""
    return (f"server: {job['state']}, {job['rows']} row(s) checked, {job['invalid']} invalid, "
            f"{job['enrolled']} enrolled")


class ServerProgress:
    """A thread redrawing the job's line on ``out`` (when enabled) until ``stop``."""

    def __init__(self, client: Client, import_id: str, out: TextIO, enabled: bool) -> None:
        self._client = client
        self._path = f"/api/imports/{import_id}"
        self._out = out
        self._enabled = enabled
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="import-progress", daemon=True)
        self.last: dict[str, Any] | None = None

    def __enter__(self) -> "ServerProgress":
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            try:
                job = self._client.get(self._path)
            except CtlError:
                continue  # not started yet (waiting for an import slot), or the daemon is busy
            if job.get("state") in ("receiving", "enrolling") and not self._stopped.is_set():
                self.last = job
                print(f"\r{describe(job)}\033[K", end="", file=self._out, flush=True)
