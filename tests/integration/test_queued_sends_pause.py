"""A pause stops what has not left, also the sends waiting inside the SMTP transport (issue 14).

The lane hands the SMTP transport more sends than it has connections (dripd/parallelism.py); they
wait on its loop thread for a connection. A real daemon process with ``connections = 1`` against
the scripted sink, which holds the first message at its final dot: the other sends handed over
wait behind it. The mailbox is paused through the API; when the held send ends (by its own
timeout, uncertain), none of the waiting ones may begin: each goes back to 'retry' with its
Message-ID and is sent once after the resume. A paused sequence withdraws them the same way:
the engine's watch of endings (dripd/endings.py) hears the pause, which the transport asks
about as each transaction would begin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dripd.parallelism import HANDED_PER_CONNECTION
from tests.integration.daemon_process import MakeDripd, contact_addresses, smtp_mailbox, start_one_step_sequence
from tests.integration.test_claim_ahead_crash import accepted, ledger
from tests.integration.waiting import wait_until

CONTACTS = HANDED_PER_CONNECTION + 8


@pytest.mark.parametrize("target", ["mailboxes/sales", "sequences/{sequence_id}"])
def test_a_pause_withdraws_the_sends_waiting_in_the_transport(tmp_path: Path, dripd_process: MakeDripd,
                                                              target: str) -> None:
    assert HANDED_PER_CONNECTION > 1, "no send would wait in the transport"
    hold = {"on": "dot", "action": "stall", "times": 1}
    from tests.integration.servers import smtp_sink

    with smtp_sink({"rules": [hold]}) as sink:
        box = smtp_mailbox(sink.smtp_table(connections=1, timeout_seconds=3))
        process = dripd_process(tmp_path, mailboxes=[box])
        db_path = process.state_dir / "dripd.sqlite3"
        process.start()
        sequence_id = start_one_step_sequence(process, "queued", contact_addresses(CONTACTS))

        def held() -> bool:
            rows = ledger(db_path)
            sending = sum(1 for _, status in rows.values() if status == "sending")
            return sink.count("dot") == 1 and sending >= HANDED_PER_CONNECTION
        wait_until(held, interval=0.02, what=lambda: f"{ledger(db_path)}\n{process.log()}")
        with process.client() as client:
            pause = f"/api/{target.format(sequence_id=sequence_id)}/pause"
            assert client.post(pause, json={"reason": "operator pause"}).status_code == 200

        def settled() -> bool:  # the held send timed out (uncertain) and nothing else is 'sending'
            statuses = [status for _, status in ledger(db_path).values()]
            return "sending" not in statuses and "uncertain" in statuses
        wait_until(settled, interval=0.05, what=lambda: f"{ledger(db_path)}\n{process.log()}")
        paused = ledger(db_path)
        assert sink.count("rcpt") == 1 and accepted(sink) == [], "a send began after the pause"
        retried = {address for address, (_, status) in paused.items() if status == "retry"}
        assert len(retried) >= HANDED_PER_CONNECTION - 1, paused  # at least the ones queued in the transport

        with process.client() as client:
            assert client.post(f"/api/{target.format(sequence_id=sequence_id)}/resume").status_code == 200

            def completed() -> bool:
                return bool(client.get(f"/api/sequences/{sequence_id}").json()["status"] == "completed")
            wait_until(completed, timeout=60, interval=0.1, what=process.log)
        assert process.stop() == 0
        recipients = accepted(sink)

    final = ledger(db_path)
    uncertain = {address for address, (_, status) in final.items() if status == "uncertain"}
    assert len(uncertain) == 1, "only the send held at the sink is uncertain"
    assert sorted(recipients) == sorted(set(contact_addresses(CONTACTS)) - uncertain), "each other contact once"
    assert retried <= set(recipients)
