"""Load (RELIABILITY.md): concurrent API clients enroll contacts over the Unix socket while the
daemon sends. No error responses, memory flat, every enrolled contact's email sent.
`make test` runs 20 clients for 5 s; `make soak` (DRIPD_SOAK=1) 100 clients for 5 minutes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tests.integration.daemon_process import DripdProcess

SOAK = os.environ.get("DRIPD_SOAK") == "1"
CLIENTS = 100 if SOAK else 20
SECONDS = 300 if SOAK else 5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_concurrent_api_clients_while_sending(tmp_path: Path) -> None:
    process = DripdProcess(tmp_path)
    process.start()
    assert process.proc is not None
    with process.client() as client:
        sequence_id = client.post("/api/sequences", json={
            "name": "load", "mailboxId": "sales", "autoComplete": False,
            "steps": [{"type": "email", "subject": "Hi {{firstName}}", "body": "<p>hi</p>"}]}).json()["id"]
        assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
    rss_start = rss_mb(process.proc.pid)
    errors: list[str] = []
    latencies: list[float] = []
    enrolled = [0] * CLIENTS
    stop_at = time.monotonic() + SECONDS

    def worker(number: int) -> None:
        with process.client(timeout=30) as client:
            i = 0
            while time.monotonic() < stop_at:
                started = time.monotonic()
                response = client.post(f"/api/sequences/{sequence_id}/enroll",
                                       json={"contactEmail": f"w{number}-{i}@example.org",
                                             "mergeFields": {"firstName": f"W{number}"}})
                latencies.append(time.monotonic() - started)
                if response.status_code != 201:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                else:
                    enrolled[number] += 1
                i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(enrolled)
    rss_loaded = rss_mb(process.proc.pid)
    process.wait_for_messages(total, timeout=60)
    rss_end = rss_mb(process.proc.pid)
    assert process.stop() == 0
    assert errors == []
    assert len({str(m["To"]) for m in process.messages()}) == total
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"load: {CLIENTS} clients x {SECONDS}s: {total} enrollments ({total / SECONDS:.0f}/s), p50 {p50 * 1000:.0f} ms,"
          f" p99 {p99 * 1000:.0f} ms, 0 errors; RSS {rss_start:.0f} -> {rss_loaded:.0f} -> {rss_end:.0f} MB")
    assert rss_end - rss_start < 100  # flat: no growth with the number of requests beyond caches
