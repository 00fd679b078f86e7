"""Several real ``dripd`` processes on one PostgreSQL database (issue 18), in real time with
2-second leases: mailboxes spread evenly over two and three nodes, any node's API and dripctl
serve the whole cluster, kill -9 of a node mid-send in 10 rounds loses and duplicates nothing
and no daily cap is exceeded, and a node cut off from the database stops sending before its
mailboxes move. Failover times are printed, not asserted tight.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections import Counter
from pathlib import Path
from typing import Any
import pytest

from tests.integration.cluster_nodes import (
    LEASE_SECONDS, cluster_status, holders, log_times, mailboxes, make_node, outcomes, spread)
from tests.integration.daemon_process import DripdProcess
from tests.integration.pg_proxy import PgProxy
from tests.integration.waiting import wait_until
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.slow


def create_sequence(node: DripdProcess, mailbox_id: str, contacts: list[str], steps: int = 2) -> int:
    with node.client() as client:
        created = client.post("/api/sequences", json={
            "name": f"seq-{mailbox_id}", "mailboxId": mailbox_id, "autoComplete": True,
            "steps": [{"type": "email", "subject": f"Step {k + 1}", "body": f"<p>{k + 1}</p>", "thread": False}
                      for k in range(steps)]})
        assert created.status_code == 201, created.text
        sequence_id = int(created.json()["id"])
        csv = "email\n" + "".join(f"{c}\n" for c in contacts)
        enrolled = client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                               headers={"content-type": "text/csv"})
        assert enrolled.status_code == 201, enrolled.text
        assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
    return sequence_id


def keys(node: DripdProcess, mailbox_id: str) -> list[tuple[str, str]]:
    return [(str(m["To"]).strip("<>"), str(m["Subject"])) for m in node.messages(mailbox_id)]


def stop_all(nodes: list[DripdProcess]) -> None:
    for node in nodes:
        try:
            node.stop()
        except Exception:
            node.kill()


def test_two_then_three_nodes_share_the_mailboxes_and_any_node_serves_the_cluster(
        postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.fresh_database()
    ids = [f"mb{i}" for i in range(6)]
    boxes = mailboxes(tmp_path, ids)
    # Polling once a minute: work created through one node reaches the others by NOTIFY.
    nodes = [make_node(tmp_path / f"n{k}", url, boxes, node_id=f"node-{k}", poll_seconds=60.0) for k in (1, 2, 3)]
    try:
        nodes[0].start()
        nodes[1].start()
        wait_until(lambda: spread(nodes[0]) == [3, 3], timeout=30, what=lambda: f"3 + 3: {holders(nodes[0])}")
        nodes[2].start()
        wait_until(lambda: spread(nodes[1]) == [2, 2, 2], timeout=30, what=lambda: f"2+2+2: {holders(nodes[1])}")
        status = cluster_status(nodes[2])
        assert status["node"] == "node-3"
        assert [(n["id"], n["alive"]) for n in status["nodes"]] == [("node-1", True), ("node-2", True), ("node-3", True)]
        assert all(lease["generation"] >= 1 for lease in status["leases"])
        by_lease = {lease["mailboxId"]: lease["holder"] for lease in status["leases"]}

        def listed() -> dict[str, Any] | None:
            # The mailbox list names each one's node as of the answering node's last heartbeat.
            with nodes[0].client() as client:
                found = {m["id"]: m for m in client.get("/api/mailboxes").json()["mailboxes"]}
            return found if {m: found[m]["node"] for m in ids} == by_lease else None

        shown_boxes = wait_until(listed, timeout=10, what="the mailbox list to name each mailbox's node")
        assert all(("sendsToday" in shown_boxes[m]) == (by_lease[m] == "node-1") for m in ids)

        shown = nodes[1].dripctl("status")
        assert shown.returncode == 0, shown.stderr
        for k in (1, 2, 3):
            assert f"node-{k}" in shown.stdout
        for mailbox_id in ids:
            assert mailbox_id in shown.stdout
        with nodes[2].client() as client:
            metrics = client.get("/metrics").text
        assert 'dripd_node_info{node="node-3"} 1.0' in metrics
        mine = [lease["mailboxId"] for lease in status["leases"] if lease["holder"] == "node-3"]
        for mailbox_id in mine:
            assert f'dripd_mailbox_lease_generation{{mailbox="{mailbox_id}"}}' in metrics
        assert "dripd_cluster_live_nodes 3.0" in metrics and "dripd_lease_renewal_failures 0.0" in metrics
        promtool = shutil.which("promtool")
        assert promtool is not None, "promtool missing: make deps-debian installs Debian's prometheus"
        checked = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True,
                                 timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # Sequences made through node 1's API send from whichever node holds each mailbox, woken
        # by NOTIFY (the lanes poll only once a minute here).
        started = time.monotonic()
        for mailbox_id in ids:
            create_sequence(nodes[0], mailbox_id, [f"{mailbox_id}-c{i}@example.org" for i in range(5)], steps=1)
        for mailbox_id in ids:
            nodes[0].wait_for_messages(5, mailbox_id, timeout=max(5.0, 45 - (time.monotonic() - started)))
        print(f"3 nodes: 30 sends over 6 mailboxes made via one node's API in {time.monotonic() - started:.2f}s")
        for mailbox_id in ids:
            assert len(set(keys(nodes[0], mailbox_id))) == len(keys(nodes[0], mailbox_id)) == 5
    finally:
        stop_all(nodes)
    # A graceful stop releases the leases: nothing is left held.
    assert "released its leases" in nodes[0].log()


def test_kill_9_a_node_mid_send_ten_times_loses_nothing_sends_nothing_twice_keeps_caps(
        postgres: PostgresServer, tmp_path: Path) -> None:
    rng = random.Random(20261203)
    url = postgres.fresh_database()
    uncapped = ["a", "b", "c", "d"]
    # 2.5 sends a second per mailbox: the run lasts long enough for ten kills to land mid-send.
    boxes = mailboxes(tmp_path, uncapped, hourly_cap=9000, burst=1)
    capped_cap = 25
    boxes.append(mailboxes(tmp_path, ["capped"], hourly_cap=3600, burst=1, daily_cap=capped_cap)[0])
    # Four nodes: a killed one restarts in the background (seconds on a busy machine) while
    # the next rounds kill the others; ids are hostname-pid, new at every start.
    nodes = [make_node(tmp_path / f"n{k}", url, boxes) for k in range(4)]
    contacts = 100
    expected_total = len(uncapped) * contacts * 2 + capped_cap
    started = time.monotonic()
    restarting: dict[int, Future[None]] = {}
    pool = ThreadPoolExecutor(max_workers=4)  # a restart takes seconds: the rounds go on meanwhile
    try:
        for node in nodes:
            node.start()
        wait_until(lambda: None not in holders(nodes[0]) and len(holders(nodes[0])) == 4, timeout=30,
                   what=lambda: f"every mailbox held by 4 nodes: {holders(nodes[0])}")
        sequences = {m: create_sequence(nodes[0], m, [f"{m}-c{i:02d}@example.org" for i in range(contacts)])
                     for m in [*uncapped, "capped"]}
        total = lambda: sum(len(n) for n in (nodes[0].messages(m) for m in [*uncapped, "capped"]))  # noqa: E731

        def running() -> list[int]:
            for k, restart in list(restarting.items()):
                if restart.done():
                    restart.result()  # a failed restart fails the test here
                    del restarting[k]
            return [k for k in range(len(nodes)) if k not in restarting]

        failovers: list[float] = []
        for round_ in range(10):
            target = min(total() + rng.randint(5, 12), expected_total - 1)
            wait_until(lambda: total() >= target, timeout=60, interval=0.01,
                       what=lambda: f"round {round_}: {total()} sent, want {target}")
            wait_until(lambda: len(running()) >= 2, timeout=60, what="a node to finish restarting")
            k = rng.choice(running())
            victim = nodes[k]
            survivor = nodes[next(j for j in running() if j != k)]
            victim_id = cluster_status(victim)["node"]
            held_by_victim = [lease for lease in cluster_status(survivor)["leases"] if lease["holder"] == victim_id]
            victim.kill()
            killed_at = time.monotonic()

            def moved() -> bool:
                leases = cluster_status(survivor)["leases"]
                return all(lease["holder"] not in (None, victim_id) for lease in leases)

            wait_until(moved, timeout=30, interval=0.05, what=lambda: f"the leases of {victim_id} to move")
            failover = time.monotonic() - killed_at
            if held_by_victim:
                failovers.append(failover)
            print(f"round {round_}: {total()} sent, killed a node holding {len(held_by_victim)} mailbox(es), "
                  f"moved after {failover:.2f}s, at {time.monotonic() - started:.1f}s")
            restarting[k] = pool.submit(victim.start)
        sent_by_then = total()
        print(f"10 kills done after {time.monotonic() - started:.1f}s, {sent_by_then} of {expected_total} sent")
        assert sent_by_then < expected_total, "every kill should land mid-send; make the run longer"
        assert len(failovers) >= 5, "most kills should hit a node holding mailboxes"

        def done() -> bool:
            with nodes[0].client() as client:
                return all(client.get(f"/api/sequences/{sequences[m]}").json()["status"] == "completed"
                           for m in uncapped)

        wait_until(done, timeout=90, interval=0.2, what=lambda: f"the sequences to complete: {total()} sent")
        wait_until(lambda: len(nodes[0].messages("capped")) >= capped_cap, timeout=30,
                   what="the capped mailbox to reach its cap")
    finally:
        pool.shutdown(wait=True)
        stop_all(nodes)

    found = outcomes(url, list(sequences.values()))
    uncertain_total = 0
    for mailbox_id in uncapped:
        sent = keys(nodes[0], mailbox_id)
        assert len(sent) == len(set(sent)), f"mailbox {mailbox_id}: a (contact, step) was delivered twice"
        expected = {(f"{mailbox_id}-c{i:02d}@example.org", f"Step {s}") for i in range(contacts) for s in (1, 2)}
        uncertain = found[sequences[mailbox_id]].uncertain
        uncertain_total += len(uncertain)
        assert set(sent) | uncertain == expected, f"mailbox {mailbox_id}: a step was lost"
        assert not set(sent) & uncertain, "a delivered message was also reported uncertain"
    capped = keys(nodes[0], "capped")
    assert len(capped) == len(set(capped))
    assert len(capped) == capped_cap, f"the daily cap of {capped_cap} was exceeded across the cluster: {len(capped)}"
    print(f"kill -9 x10 over 4 nodes: {sum(len(keys(nodes[0], m)) for m in uncapped)} delivered once each, "
          f"{uncertain_total} uncertain (reported), capped mailbox {len(capped)}/{capped_cap}; failover "
          f"{min(failovers):.2f}-{max(failovers):.2f}s (mean {sum(failovers) / len(failovers):.2f}s, "
          f"lease {LEASE_SECONDS:g}s)")


def test_a_node_cut_off_from_the_database_stops_sending_before_its_mailboxes_move(
        postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.fresh_database()
    proxy = PgProxy(postgres.socket_dir, tmp_path / "proxy")
    ids = ["p", "q", "r", "s"]
    boxes = mailboxes(tmp_path, ids, hourly_cap=18000, burst=1)
    cut = make_node(tmp_path / "cut", proxy.url(url, postgres.socket_dir), boxes, node_id="cut")
    survivor = make_node(tmp_path / "survivor", url, boxes, node_id="survivor")
    try:
        cut.start()
        survivor.start()
        wait_until(lambda: spread(survivor) == [2, 2], timeout=30, what=lambda: f"2 + 2: {holders(survivor)}")
        sequences = {m: create_sequence(survivor, m, [f"{m}-c{i:02d}@example.org" for i in range(40)], steps=1)
                     for m in ids}
        # 60 s, not 30: once in CI, at the end of a loaded suite, 30 s went by before every mailbox
        # had sent 3 (its cause not found yet; the message now says which mailboxes and holders).
        wait_until(lambda: all(len(cut.messages(m)) >= 3 for m in ids), timeout=60,
                   what=lambda: f"sends under way: {[len(cut.messages(m)) for m in ids]}, {holders(survivor)}")
        cut_held = {lease["mailboxId"] for lease in cluster_status(survivor)["leases"] if lease["holder"] == "cut"}
        proxy.freeze()
        frozen_at = time.time()
        wait_until(lambda: holders(survivor) == Counter({"survivor": 4}), timeout=30,
                   what=lambda: f"the survivor to hold every mailbox: {holders(survivor)}")
        stopped = log_times(cut, r"mailbox (\S+): stopping its lane on this node")
        taken = log_times(survivor, r"holds mailbox (\S+) \(generation")
        for mailbox_id in cut_held:
            assert mailbox_id in stopped, f"the cut node never stopped {mailbox_id}:\n{cut.log()}"
            assert stopped[mailbox_id] < taken[mailbox_id], f"{mailbox_id}: both nodes ran it at once"
        print(f"partition: the cut node stopped {max(stopped[m] for m in cut_held) - frozen_at:.2f}s after the "
              f"cut, the survivor took over after {max(taken[m] for m in cut_held) - frozen_at:.2f}s "
              f"(lease {LEASE_SECONDS:g}s)")
        proxy.thaw()

        def finished() -> bool:
            return all(len(cut.messages(m)) >= 40 for m in ids)

        wait_until(finished, timeout=60, what="every send after the partition healed")
    finally:
        stop_all([cut, survivor])
        proxy.close()
    found = outcomes(url, list(sequences.values()))
    for mailbox_id in ids:
        sent = keys(survivor, mailbox_id)
        assert len(sent) == len(set(sent)), f"mailbox {mailbox_id}: delivered twice"
        assert {k for k in sent} | found[sequences[mailbox_id]].uncertain == {
            (f"{mailbox_id}-c{i:02d}@example.org", "Step 1") for i in range(40)}
