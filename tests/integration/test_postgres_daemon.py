"""The real dripd on PostgreSQL (``[store] url``): a sequence runs through the Maildir transport,
kill -9 in the middle of the sends loses and duplicates nothing, and the password (from a file)
appears in no log line; a URL with the password inline is refused at load (exit 78, key named).
Several nodes on one database are the cluster's tests; this is one node."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import trio

from dripd.store.postgres import open_postgres_store
from tests.integration.daemon_process import DRIPD, DripdProcess, MakeDripd
from tests.integration.store_reader import SequenceOutcome, sequence_outcome
from tests.integration.waiting import wait_until
from tests.postgres_server import PASSWORD, PostgresServer

CONTACTS = 150
STEPS = 2


def on_postgres(tmp_path: Path, postgres: PostgresServer, dripd_process: MakeDripd) -> tuple[DripdProcess, str]:
    url = postgres.fresh_database()
    password_file = tmp_path / "pg.password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    return dripd_process(tmp_path, extra={"store": {"url": url, "password_file": str(password_file)}}), url


def read_outcome(url: str, sequence_id: int) -> SequenceOutcome:
    async def main() -> SequenceOutcome:
        store = await open_postgres_store(url, password=PASSWORD)
        try:
            return await sequence_outcome(store, sequence_id)
        finally:
            await store.close()

    return trio.run(main)


def test_kill_9_mid_send_on_postgresql_never_duplicates_nor_loses(
        tmp_path: Path, postgres: PostgresServer, dripd_process: MakeDripd) -> None:
    process, url = on_postgres(tmp_path, postgres, dripd_process)
    process.start()
    with process.client() as client:
        created = client.post("/api/sequences", json={
            "name": "pg-crash", "mailboxId": "sales", "autoComplete": True,
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
    wait_until(lambda: len(process.messages()) >= 60, timeout=60, interval=0.002, what=process.log)
    killed_at = len(process.messages())
    assert killed_at < total, "the run finished before the kill could land; make it longer"
    process.kill()
    process.start()

    def completed() -> bool:
        with process.client() as client:
            return bool(client.get(f"/api/sequences/{sequence_id}").json()["status"] == "completed")

    wait_until(completed, timeout=120, interval=0.1, what=process.log)
    assert process.stop() == 0

    keys = [(str(m["To"]), str(m["Subject"])) for m in process.messages()]
    assert len(keys) == len(set(keys)), "a (contact, step) was delivered twice"
    outcome = read_outcome(url, sequence_id)
    delivered = {(to.strip("<>").split("<")[-1].rstrip(">"), subject) for to, subject in keys}
    expected = {(f"c{i:04d}@example.org", f"Step {s}") for i in range(CONTACTS) for s in (1, 2)}
    assert delivered | outcome.uncertain == expected, "a step was lost"
    assert not (delivered & outcome.uncertain), "a delivered message was also reported uncertain"
    assert outcome.uncertain == set()  # the Maildir transport looks every interrupted send up
    assert dict(Counter(outcome.enrollment_statuses)) == {"completed": CONTACTS}
    assert PASSWORD not in process.log()
    print(f"postgresql crash test: kill -9 after {killed_at} sends, {len(keys)} delivered once each")


def test_a_password_inline_in_the_url_is_refused_with_78(
        tmp_path: Path, postgres: PostgresServer, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path, extra={"store": {"url": postgres.url("x", password=True)}})
    for args in (["--check-config"], []):
        result = subprocess.run([str(DRIPD), *args, "-c", str(process.config_path)], capture_output=True, text=True,
                                timeout=30, cwd=tmp_path)
        assert result.returncode == 78, result.stderr
        assert "store.url: must not carry a password" in result.stderr
        assert PASSWORD not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
