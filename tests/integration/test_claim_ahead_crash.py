"""kill -9 with claims made ahead of the wire: the wire journal tells recovery which rows left.

A mailbox with ``connections = 4`` (nothing else set) keeps 4 sends on the wire, hands the SMTP
transport 12 more that wait on its loop thread for a connection (dripd/parallelism.py), and
claims more ahead of those (dripd/send_slots.py). The scripted sink holds the first 4 messages at
their final dot, so the daemon is caught in a known state: every contact's row 'sending', 4 of
them in a transaction. After a kill -9 and a restart the others are sent (the wire journal proves
they never began a transaction, whether they waited in the transport or for their turn to be
handed over), the 4 stay uncertain (the sink may have them: SMTP cannot tell), and nobody gets
two messages.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dripd.parallelism import HANDED_PER_CONNECTION
from dripd.send_slots import claim_places
from dripd.wire_journal import CLAIMED, HANDED, Row, current_boot_id, read_journal
from tests.integration.daemon_process import MakeDripd, contact_addresses, smtp_mailbox, start_one_step_sequence
from tests.integration.servers import SmtpSink, smtp_sink
from tests.integration.waiting import wait_until

CONNECTIONS = 4
WITH_TRANSPORT = HANDED_PER_CONNECTION * CONNECTIONS  # handed over: on the wire or waiting for it
CONTACTS = WITH_TRANSPORT + 14
SENDING = min(CONTACTS, WITH_TRANSPORT + claim_places(WITH_TRANSPORT))  # every row the lane may claim
AHEAD = SENDING - CONNECTIONS  # claimed, and never in a transaction
assert WITH_TRANSPORT < CONTACTS, "some sends must wait in the transport and some for their turn to be handed"


def ledger(db_path: Path) -> dict[str, tuple[Row, str]]:
    """Contact email -> ((enrollment id, step id), status) of its one ledger row."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT c.email, o.enrollment_id, o.step_id, o.status FROM outbox o"
                          " JOIN enrollments e ON e.id = o.enrollment_id JOIN contacts c ON c.id = e.contact_id").fetchall()
    finally:
        db.close()
    return {str(address): ((int(enrollment), int(step)), str(status)) for address, enrollment, step, status in rows}


def accepted(sink: SmtpSink) -> list[str]:
    return [event["to"] for event in sink.events() if event["event"] == "accepted"]


def test_kill_9_with_claims_waiting_sends_the_never_handed_ones_once(tmp_path: Path,
                                                                  dripd_process: MakeDripd) -> None:
    hold = {"on": "dot", "action": "stall", "reply": "250 never said", "times": CONNECTIONS}
    with smtp_sink({"rules": [hold]}) as sink:
        # No concurrency: it follows the connections; the timeout outlasts the test's wait.
        box = smtp_mailbox(sink.smtp_table(connections=CONNECTIONS, timeout_seconds=120))
        process = dripd_process(tmp_path, mailboxes=[box])
        db_path = process.state_dir / "dripd.sqlite3"
        journal_path = process.state_dir / "wire.journal"
        process.start()
        sequence_id = start_one_step_sequence(process, "ahead", contact_addresses(CONTACTS))

        def caught() -> dict[str, tuple[Row, str]] | None:
            rows = ledger(db_path)
            on_the_sink = sum(1 for event in sink.events() if event["event"] == "dot")
            sending = {a: row for a, row in rows.items() if row[1] == "sending"}
            return sending if on_the_sink == CONNECTIONS and len(sending) == SENDING else None

        sending = wait_until(caught, timeout=60, interval=0.02,
                             what=lambda: f"{SENDING} rows 'sending', {CONNECTIONS} held at the sink:\n"
                                          f"{ledger(db_path)}\n{process.log()}")
        process.kill()

        # What the killed process left: its journal, written without fsync, is all there.
        said = read_journal(journal_path, current_boot_id())
        assert said is not None, journal_path.read_bytes()
        held = {address for address, (row, _) in sending.items() if said.get(row) == HANDED}
        waiting = {address for address, (row, _) in sending.items() if said.get(row) == CLAIMED}
        assert len(held) == CONNECTIONS and len(waiting) == AHEAD, (held, waiting)
        assert not waiting & set(accepted(sink)) and not held & set(accepted(sink))

        process.start()

        def completed() -> bool:
            with process.client() as client:
                return bool(client.get(f"/api/sequences/{sequence_id}").json()["status"] == "completed")

        wait_until(completed, timeout=60, interval=0.1, what=process.log)
        assert process.stop() == 0
        recipients = accepted(sink)
        log = process.log()

    final = ledger(db_path)
    uncertain = {address for address, (_, status) in final.items() if status == "uncertain"}
    assert uncertain == held, "only the rows handed to the transport are uncertain"
    assert len(recipients) == len(set(recipients)), "a contact was sent twice"
    everyone = set(contact_addresses(CONTACTS))
    assert set(recipients) == everyone - held  # the claimed-and-waiting ones were sent after the restart
    assert all(final[address][1] == "sent" for address in everyone - held)
    assert log.count("claimed, never handed to the transport (wire journal), before a crash; will send") == AHEAD
    # A claim never handed over was no attempt: each contact's row was tried once, and the caps
    # count one send per contact, not the claims the crash left behind as well.
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        assert db.execute("SELECT DISTINCT attempts FROM outbox").fetchall() == [(1,)]
        assert db.execute("SELECT COUNT(*) FROM send_log").fetchone() == (CONTACTS,)
    finally:
        db.close()
