"""Cluster throughput: sends/s with 1, 2 and 3 dripd nodes on one PostgreSQL database over 50
mailboxes, and the PostgreSQL store's cost against SQLite's on the same workload (one node).

The workload: 50 mailboxes (Maildir transport, caps lifted), one one-step sequence per mailbox,
N enrollments spread evenly, all due. It is built once as a SQLite file (as the store writes
it), and each PostgreSQL run gets its own copy through ``dripd migrate`` (so the copy is
exercised too). The sequences start paused; once every node is READY (and, with several nodes,
the leases are spread over them) all 50 are resumed through node 1's API, and the clock runs
from the first resume to the N-th message file in the Maildirs. Real ``dripd`` processes, a
temporary PostgreSQL cluster (tests/postgres_server.py: fsync off, Unix socket).

    .venv/bin/python bench/bench_cluster.py [--full | --smoke]
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from dripd.store.sqlite.migrations import migrate  # noqa: E402
from tests.postgres_server import PASSWORD, PostgresServer, postgres_server  # noqa: E402

MAILBOXES = [f"m{i:02d}" for i in range(50)]


def build(path: Path, n: int) -> None:
    """The workload as a SQLite file at this dripd's schema version, its sequences paused."""
    now = c.epoch_now()
    c.build_db(path, mailboxes=MAILBOXES, sequences=len(MAILBOXES), enrollments=n,
               next_run_at=lambda i: now - 60 + i * 1e-6, now=now - 60, steps=c.ONE_STEP, sequence_status="paused")
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        migrate(db)
    finally:
        db.close()


def sent(root: Path) -> int:
    total = 0
    for box in MAILBOXES:
        with os.scandir(root / "outbox" / box / "new") as entries:
            total += sum(1 for _ in entries)
    return total


def node_config(root: Path, node: int, store: dict[str, Any] | None, lease_seconds: float) -> dict[str, Any]:
    home = root / f"node{node}"
    config: dict[str, Any] = {
        "daemon": c.daemon_section(home),
        "mailboxes": [c.open_mailbox(box, "maildir", {"path": str(root / "outbox" / box)}) for box in MAILBOXES],
    }
    if store is not None:
        config["store"] = store
        config["cluster"] = {"node_id": f"node-{node}", "lease_seconds": lease_seconds, "poll_seconds": 2.0}
    return config


def holders(server: PostgresServer, database: str) -> dict[str, int]:
    """node id -> mailboxes whose lease it holds now (by the database's clock)."""
    out = server.psql("SELECT holder, count(*) FROM mailbox_leases WHERE holder IS NOT NULL"
                      " AND expires_at > extract(epoch from clock_timestamp()) GROUP BY holder", database)
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.splitlines() if "|" in line}


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU seconds of each live process (from /proc; a gone one is left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def server_pids(server: PostgresServer) -> list[int]:
    """The postmaster and every process it forked (backends, walwriter, ...)."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return [postmaster, *children]


def used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise RuntimeError(f"not reached within {timeout:.0f} s: {what}")


def run(root: Path, source: Path, n: int, nodes: int, server: PostgresServer | None,
        lease_seconds: float) -> dict[str, Any]:
    """One measurement: ``nodes`` real dripd processes on a fresh copy of the workload."""
    root.mkdir(parents=True)
    for box in MAILBOXES:
        (root / "outbox" / box / "new").mkdir(parents=True)
    store: dict[str, Any] | None = None
    database = ""
    migrate_s = 0.0
    env: dict[str, str] = {}
    if server is None:
        (root / "node1" / "var").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / "node1" / "var" / "dripd.sqlite3")
    else:
        url = server.fresh_database()
        database = url.split("?")[0].rsplit("/", 1)[1]
        started = time.perf_counter()
        copied = subprocess.run([str(c.BIN / "dripd"), "migrate", "--from", f"sqlite:{source}", "--to", url],
                                capture_output=True, text=True, timeout=600, env={**os.environ, "PGPASSWORD": PASSWORD})
        migrate_s = time.perf_counter() - started
        if copied.returncode != 0:
            raise RuntimeError(f"dripd migrate failed: {copied.stderr}")
        store = {"url": url}
        env = {"PGPASSWORD": PASSWORD}
    for k in range(1, nodes + 1):
        (root / f"node{k}").mkdir(exist_ok=True)
    daemons = [c.Daemon(root / f"node{k}", node_config(root, k, store, lease_seconds), env=env)
               for k in range(1, nodes + 1)]
    with ExitStack() as stack:
        for daemon in daemons:
            daemon.start()
            stack.callback(daemon.kill)
        if server is not None:
            # Several nodes share the mailboxes once the leases are spread: each holds 50/N of them.
            fair = len(MAILBOXES) // nodes

            def spread() -> bool:
                held = holders(server, database)
                return len(held) == nodes and sum(held.values()) == len(MAILBOXES) and min(held.values()) >= fair

            wait_for(spread, 120, f"the 50 leases spread over {nodes} node(s): {holders(server, database)}")
        shares = holders(server, database) if server is not None else {"node-1": len(MAILBOXES)}
        node_pids = [daemon.pid for daemon in daemons]
        pg_before = cpu_seconds(server_pids(server)) if server is not None else {}
        nodes_before = cpu_seconds(node_pids)
        with daemons[0].client() as client:
            started = time.perf_counter()
            for sequence_id in range(1, len(MAILBOXES) + 1):
                answer = client.post(f"/api/sequences/{sequence_id}/resume")
                if answer.status_code != 200:
                    raise RuntimeError(f"resume {sequence_id}: {answer.status_code} {answer.text}")
            resumed = time.perf_counter()
            wait_for(lambda: sent(root) >= n, 600, f"{n} messages (found {sent(root)})")
            finished = time.perf_counter()
        nodes_cpu = used(nodes_before, cpu_seconds(node_pids))
        pg_cpu = used(pg_before, cpu_seconds(server_pids(server))) if server is not None else 0.0
        for daemon in daemons:
            daemon.stop()
    shutil.rmtree(root, ignore_errors=True)
    return {"nodes": nodes, "rate": n / (finished - started), "seconds": finished - started,
            "resume_s": resumed - started, "migrate_s": migrate_s, "shares": sorted(shares.values()),
            "node_ms": nodes_cpu * 1000 / n, "pg_ms": pg_cpu * 1000 / n}


def main() -> None:
    args = c.arguments("Cluster: sends/s with 1, 2, 3 nodes on PostgreSQL, and against SQLite (one node)")
    n = c.pick(args, 100, 2_000, 20_000)
    lease_seconds = c.pick(args, 2.0, 6.0, 6.0)
    # --smoke only checks the script runs (beside every other benchmark at once): 1 and 2 nodes.
    node_counts = c.pick(args, (1, 2), (1, 2, 3), (1, 2, 3))
    with c.workdir(args, "dripd-bench-cluster-") as root, postgres_server() as server:
        version = server.psql("SHOW server_version")
        source = root / "workload.sqlite3"
        build(source, n)
        reference = run(root / "sqlite", source, n, 1, None, lease_seconds)
        results = [run(root / f"pg{k}", source, n, k, server, lease_seconds) for k in node_counts]
    table = c.Table(f"Cluster: {c.fnum(n)} one-step sends over 50 mailboxes (Maildir, caps lifted)")
    pg1 = results[0]
    table.row("PostgreSQL, 1 node: sends/s", f"{pg1['rate']:,.0f}/s", f"{reference['rate']:,.0f}/s (SQLite, 1 node)",
              c.ratio(pg1["rate"], reference["rate"]),
              f"the store's cost: {pg1['seconds']:.1f} s against {reference['seconds']:.1f} s for the same sends")
    for result in results[1:]:
        table.row(f"PostgreSQL, {result['nodes']} nodes: sends/s", f"{result['rate']:,.0f}/s",
                  f"{pg1['rate']:,.0f}/s (PostgreSQL, 1 node)", c.ratio(result["rate"], pg1["rate"]),
                  f"mailboxes per node {'/'.join(str(s) for s in result['shares'])}; {result['seconds']:.1f} s")
    for result in results:
        table.row(f"PostgreSQL, {result['nodes']} node(s): CPU per send (all nodes + PostgreSQL)",
                  f"{result['node_ms'] + result['pg_ms']:.1f} ms", f"{reference['node_ms']:.1f} ms (SQLite, 1 node)",
                  c.ratio(result["node_ms"] + result["pg_ms"], reference["node_ms"]),
                  f"dripd nodes {result['node_ms']:.1f} ms, PostgreSQL server {result['pg_ms']:.1f} ms")
    table.notes.append(f"dripd migrate copied the workload ({c.fnum(n)} contacts, enrollments and events, counts "
                       f"verified) into PostgreSQL in {pg1['migrate_s']:.2f} s")
    table.notes.append("each node is a real dripd process; the clock runs from the first of 50 resume calls (node "
                       "1's API) to the last message file; other nodes learn of the resumes by NOTIFY (poll 2 s)")
    table.notes.append(f"all nodes and PostgreSQL share this machine's {os.cpu_count()} CPU(s): more nodes than "
                       "cores adds contention, not capacity; spread over machines, each node brings its own")
    table.notes.append(f"PostgreSQL {version} with fsync off (tests/postgres_server.py); SQLite in WAL, "
                       f"its claims fsynced; lease_seconds {lease_seconds:g}")
    table.print()


if __name__ == "__main__":
    main()
