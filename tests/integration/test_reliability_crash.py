"""The crash suite (RELIABILITY.md): kill -9 the real daemon at random moments while it sends
over SMTP to a counting sink (Postfix smtp-sink) and replies arrive over IMAP (Dovecot).

After the last restart every (contact, step) was delivered exactly once or is reported
uncertain, and every reply was applied. `make test` runs a short round; `make soak` sets
DRIPD_SOAK=1 for the issue's full size (20 kills, 2,000 messages)."""

from __future__ import annotations

import email
import email.policy
import os
import random
import threading
import time
from pathlib import Path

from tests.integration.daemon_process import MakeDripd
from tests.integration.mail_samples import reply
from tests.integration.servers import dovecot, postfix_sink
from tests.integration.store_reader import read_store, sequence_outcome
from tests.integration.waiting import wait_until

SOAK = os.environ.get("DRIPD_SOAK") == "1"
CONTACTS = 1000 if SOAK else 150
KILLS = 20 if SOAK else 4


def sink_messages(sink) -> list[email.message.EmailMessage]:  # type: ignore[no-untyped-def]
    out = []
    for raw in sink.messages():
        # smtp-sink dumps the envelope first; the message starts at its first header line.
        start = raw.find(b"\nFrom:") if not raw.startswith(b"From:") else -1
        out.append(email.message_from_bytes(raw[start + 1:] if start >= 0 else raw, policy=email.policy.default))
    return out


def test_kill_9_rounds_over_smtp_with_replies_over_imap(tmp_path: Path, dripd_process: MakeDripd) -> None:
    rng = random.Random(20261125)
    with dovecot() as imap, postfix_sink() as sink:
        user = imap.new_user("sales")
        box = {"id": "sales", "address": user, "name": "Sales", "timezone": "UTC", "daily_cap": 100000,
               "hourly_cap": 100000, "burst": 1000, "concurrency": 4, "transport": "smtp",
               "smtp": sink.smtp_table(connections=4, timeout_seconds=5), "imap": imap.imap_table(user)}
        process = dripd_process(tmp_path, mailboxes=[box], daemon={"shutdown_grace_seconds": 5})
        process.start()
        with process.client() as client:
            created = client.post("/api/sequences", json={
                "name": "crash", "mailboxId": "sales", "autoComplete": True,
                "steps": [{"type": "email", "subject": "Step 1", "body": "<p>one</p>"},
                          {"type": "wait", "delayMs": 4000},
                          {"type": "email", "subject": "Step 2", "body": "<p>two</p>", "thread": False}]})
            assert created.status_code == 201, created.text
            sequence_id = created.json()["id"]
            csv = "email\n" + "".join(f"c{i:04d}@example.org\n" for i in range(CONTACTS))
            assert client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                               headers={"content-type": "text/csv"}).status_code == 201
            assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200

        # Replies: every tenth contact answers its first email as soon as it is seen in the sink.
        repliers = {f"c{i:04d}@example.org" for i in range(0, CONTACTS, 10)}
        replied: set[str] = set()
        stop = threading.Event()

        def answer() -> None:
            while not stop.is_set():
                for message in sink_messages(sink):
                    to = str(message["To"]).strip("<>")
                    if to in repliers and to not in replied and str(message["Subject"]) == "Step 1":
                        imap.deliver(user, reply(user, to, str(message["Message-ID"]), n=len(replied)))
                        replied.add(to)
                time.sleep(0.2)

        answerer = threading.Thread(target=answer, daemon=True)
        answerer.start()
        kills = 0
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.5))
            process.kill()
            kills += 1
            process.start()

        def settled() -> bool:
            with process.client() as client:
                counts = client.get(f"/api/sequences/{sequence_id}").json()
            return counts["status"] == "completed" and replied >= repliers

        wait_until(settled, timeout=600 if SOAK else 180, interval=0.5, what=process.log)
        stop.set()
        answerer.join(5)
        assert process.stop() == 0
        delivered = [(str(m["To"]).strip("<>"), str(m["Subject"])) for m in sink_messages(sink)]

    outcome = read_store(process.state_dir / "dripd.sqlite3", lambda store: sequence_outcome(store, sequence_id))
    uncertain, status = outcome.uncertain, outcome.statuses
    assert len(delivered) == len(set(delivered)), "a (contact, step) was delivered twice"
    got = set(delivered) | uncertain
    for i in range(CONTACTS):
        address = f"c{i:04d}@example.org"
        assert (address, "Step 1") in got, f"{address}: step 1 lost"
        if address in repliers:
            assert status[address] == "replied", f"{address}: its reply was not applied"
        else:
            assert status[address] == "completed" and (address, "Step 2") in got, f"{address}: step 2 lost"
    print(f"crash suite: {kills} kill -9, {len(delivered)} delivered once each, {len(uncertain)} uncertain, "
          f"{len(replied)} replies applied")
