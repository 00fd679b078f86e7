"""Real ``dripd`` processes as nodes of one cluster on the test PostgreSQL (used by
test_cluster_nodes.py): each node has its own state dir and control socket, all share the
database and the mailboxes' Maildirs (as nodes share an SMTP server, so a new holder can look
up what a dead one sent).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from dripd.store.postgres import open_postgres_store
from tests.integration.daemon_process import DripdProcess, fast_mailbox
from tests.integration.store_reader import SequenceOutcome, sequence_outcome
from tests.postgres_server import PASSWORD

LEASE_SECONDS = 2.0


def password_file(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "pg.password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def mailboxes(shared: Path, ids: list[str], **overrides: Any) -> list[dict[str, Any]]:
    return [fast_mailbox(shared, m, **overrides) for m in ids]


def make_node(root: Path, url: str, boxes: list[dict[str, Any]], *, lease_seconds: float = LEASE_SECONDS,
              node_id: str | None = None, poll_seconds: float = 1.0) -> DripdProcess:
    cluster: dict[str, Any] = {"lease_seconds": lease_seconds, "poll_seconds": poll_seconds}
    if node_id is not None:
        cluster["node_id"] = node_id
    return DripdProcess(root, mailboxes=boxes, daemon={"shutdown_grace_seconds": 2},
                        extra={"store": {"url": url, "password_file": str(password_file(root))}, "cluster": cluster})


def cluster_status(node: DripdProcess) -> dict[str, Any]:
    with node.client(timeout=10.0) as client:
        answer = client.get("/api/status")
        assert answer.status_code == 200, answer.text
        status = answer.json()["cluster"]
        assert status is not None, "not a cluster node"
        return dict(status)


def holders(node: DripdProcess) -> Counter[str | None]:
    """How many mailboxes each node holds, as the database says (None: free)."""
    return Counter(lease["holder"] for lease in cluster_status(node)["leases"])


def spread(node: DripdProcess) -> list[int]:
    counted = holders(node)
    return sorted(n for holder, n in counted.items() if holder is not None) if None not in counted else []


def log_times(node: DripdProcess, pattern: str) -> dict[str, float]:
    """mailbox id -> time (epoch) of the node's LAST log line matching ``pattern`` (one group: the id)."""
    found: dict[str, float] = {}
    for line in node.log().splitlines():
        match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ", line)
        hit = re.search(pattern, line)
        if match and hit:
            stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000
            found[hit.group(1)] = stamp
    return found


def outcomes(url: str, sequence_ids: list[int]) -> dict[int, SequenceOutcome]:
    """Each sequence's outcome, read through the store's public interface."""
    async def main() -> dict[int, SequenceOutcome]:
        store = await open_postgres_store(url, password=PASSWORD)
        try:
            return {s: await sequence_outcome(store, s) for s in sequence_ids}  # type: ignore[arg-type]
        finally:
            await store.close()

    return trio.run(main)
