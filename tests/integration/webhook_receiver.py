"""A real HTTP webhook receiver on loopback, run as its own process, for the webhook tests.

It records every request (headers and body) as a JSON line, and answers as its plan file says,
re-read on each request so a test can change its mind mid-run: ``{"statuses": [500, 500],
"then": 200, "hang_seconds": 0}`` answers the first requests from ``statuses`` in order, then
``then``; ``hang_seconds`` holds each answer back that long (bounded, so nothing can hang for
ever). Run ``python tests/integration/webhook_receiver.py PORT DIR`` to start one by hand.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

if __name__ != "__main__":
    from tests.integration.servers import free_port, stop_process, wait_for_port

MAX_HANG_SECONDS = 60.0


class WebhookReceiver:
    def __init__(self, port: int, root: Path, proc: subprocess.Popen[bytes] | None) -> None:
        self.port = port
        self.root = root
        self.proc = proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def set_plan(self, **plan: Any) -> None:
        tmp = self.root / "plan.json.tmp"
        tmp.write_text(json.dumps(plan))
        tmp.replace(self.root / "plan.json")  # atomic: a request never reads half a plan

    def requests(self) -> list[dict[str, Any]]:
        """Every request so far: {"headers": {lower-case name: value}, "body": text, "status": answered}."""
        path = self.root / "requests.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests()]


@contextlib.contextmanager
def webhook_receiver(root: Path, port: int | None = None, **plan: Any) -> Iterator[WebhookReceiver]:
    """Start a receiver process in ``root`` (its plan: ``plan``); stopped on the way out."""
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    receiver = WebhookReceiver(port, root, None)
    receiver.set_plan(**plan)
    receiver.proc = subprocess.Popen([sys.executable, __file__, str(port), str(root)])
    try:
        wait_for_port(port, receiver.proc)
        yield receiver
    finally:
        stop_process(receiver.proc)


def _serve(port: int, root: Path) -> None:
    lock = threading.Lock()
    seen = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                index = seen[0]
                seen[0] += 1
            try:
                plan = json.loads((root / "plan.json").read_text())
            except (OSError, ValueError):
                plan = {}
            statuses = plan.get("statuses", [])
            status = int(statuses[index] if index < len(statuses) else plan.get("then", 200))
            time.sleep(min(float(plan.get("hang_seconds", 0)), MAX_HANG_SECONDS))
            record = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode(),
                      "status": status, "path": self.path}
            with lock, (root / "requests.jsonl").open("a") as log:
                log.write(json.dumps(record) + "\n")
            try:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (its timeout): what a hanging receiver is for

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
