"""kill -9 the real daemon in the middle of 600 sends, three times, and prove from the Maildir
that no (contact, step) was delivered twice and every one was delivered or reported uncertain."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from tests.integration.daemon_process import DripdProcess, MakeDripd
from tests.integration.store_reader import read_store, sequence_outcome
from tests.integration.waiting import wait_until

CONTACTS = 300
STEPS = 2  # two emails per contact, no wait: 600 sends in one run


def delivered_keys(process: DripdProcess) -> list[tuple[str, str]]:
    return [(str(m["To"]), str(m["Subject"])) for m in process.messages()]


def test_kill_9_during_sends_never_duplicates_nor_loses(tmp_path: Path, dripd_process: MakeDripd) -> None:
    rng = random.Random(20261125)
    process = dripd_process(tmp_path)
    process.start()
    with process.client() as client:
        created = client.post("/api/sequences", json={
            "name": "crash", "mailboxId": "sales", "autoComplete": True,
            "steps": [{"type": "email", "subject": "Step 1", "body": "<p>one</p>"},
                      {"type": "email", "subject": "Step 2", "body": "<p>two</p>", "thread": False}]})
        assert created.status_code == 201, created.text
        sequence_id = created.json()["id"]
        csv = "email,firstName\n" + "".join(f"c{i:04d}@example.org,N{i}\n" for i in range(CONTACTS))
        enrolled = client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                               headers={"content-type": "text/csv"})
        assert enrolled.status_code == 201, enrolled.text
        assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200

    total = CONTACTS * STEPS
    kills = 0
    for _ in range(3):  # kill -9 at a random moment while sends are under way, then restart
        target = min(len(process.messages()) + rng.randint(20, 120), total - 1)
        wait_until(lambda: len(process.messages()) >= target, interval=0.002, what=process.log)
        if len(process.messages()) >= total:
            break
        process.kill()
        kills += 1
        process.start()
    assert kills >= 1, "the run finished before a kill could land; make it longer"

    def completed() -> bool:
        with process.client() as client:
            return bool(client.get(f"/api/sequences/{sequence_id}").json()["status"] == "completed")

    wait_until(completed, timeout=120, interval=0.1, what=process.log)
    assert process.stop() == 0

    keys = delivered_keys(process)
    assert len(keys) == len(set(keys)), "a (contact, step) was delivered twice"
    outcome = read_store(process.state_dir / "dripd.sqlite3", lambda store: sequence_outcome(store, sequence_id))
    uncertain = outcome.uncertain
    statuses = dict(Counter(outcome.enrollment_statuses))
    delivered = {(to.strip("<>").split("<")[-1].rstrip(">"), subject) for to, subject in keys}
    expected = {(f"c{i:04d}@example.org", f"Step {s}") for i in range(CONTACTS) for s in (1, 2)}
    assert delivered | uncertain == expected, "a step was lost"
    assert not (delivered & uncertain), "a delivered message was also reported uncertain"
    # The Maildir transport can look every interrupted send up, so nothing stays uncertain.
    assert uncertain == set()
    assert statuses == {"completed": CONTACTS}
    print(f"crash test: {kills} kill -9, {len(keys)} delivered once each, {len(uncertain)} uncertain")
