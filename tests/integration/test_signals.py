"""Signals on the real process: SIGTERM mid-batch stops cleanly (exit 0, nothing in flight,
nothing lost or doubled after a restart); SIGHUP reloads; a bad config exits 78."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.integration.daemon_process import DRIPD, MakeDripd
from tests.integration.store_reader import read_store
from tests.integration.waiting import wait_until

CONTACTS = 300


def test_sigterm_mid_batch_exits_0_and_a_restart_finishes_the_rest(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    with process.client() as client:
        sequence_id = client.post("/api/sequences", json={
            "name": "batch", "mailboxId": "sales",
            "steps": [{"type": "email", "subject": "Hello {{firstName}}", "body": "<p>hi</p>"}]}).json()["id"]
        csv = "email,firstName\n" + "".join(f"c{i:04d}@example.org,N{i}\n" for i in range(CONTACTS))
        assert client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                           headers={"content-type": "text/csv"}).status_code == 201
        assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
    wait_until(lambda: len(process.messages()) >= 50, interval=0.002, what=process.log)
    process.signal(signal.SIGTERM)
    assert process.proc is not None and process.proc.wait(15) == 0
    assert "stopping: letting in-flight sends finish" in process.log()
    in_flight = read_store(process.state_dir / "dripd.sqlite3", lambda store: store.count_outbox("sending"))
    assert in_flight == 0  # the in-flight send finished and was recorded before exit
    after_stop = len(process.messages())

    process.start()
    process.wait_for_messages(CONTACTS)
    assert process.stop() == 0
    recipients = [str(m["To"]) for m in process.messages()]
    assert len(recipients) == CONTACTS and len(set(recipients)) == CONTACTS
    print(f"SIGTERM after {after_stop} of {CONTACTS}; the restart sent the other {CONTACTS - after_stop}")


def test_sighup_reloads_caps_and_a_bad_reload_keeps_running(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    try:
        config = dict(process.config)
        config["mailboxes"] = [{**config["mailboxes"][0], "hourly_cap": 7, "daily_cap": 77}]
        process.write_config(config)
        process.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in process.log(), what=process.log)
        with process.client() as client:
            mailbox = client.get("/api/mailboxes").json()["mailboxes"][0]
        assert (mailbox["hourlyCap"], mailbox["dailyCap"]) == (7, 77)

        process.config_path.write_text("[[mailboxes]]\nid = 'x'\nhourly_cap = 0\n")
        process.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in process.log(), what=process.log)
        assert "reload refused" in process.log()
        with process.client() as client:
            assert client.get("/api/status").status_code == 200
            assert client.get("/api/mailboxes").json()["mailboxes"][0]["hourlyCap"] == 7
    finally:
        assert process.stop() == 0


def test_bad_config_exits_78_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[mailboxes]]\nid = 'sales'\naddress = 'a@example.com'\nhourly_cap = 0\n"
                    "[mailboxes.maildir]\npath = 'x'\n")
    for args in (["-c", str(path)], ["--check-config", "-c", str(path)]):
        result = subprocess.run([str(DRIPD), *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 78
        assert result.stderr.strip() == "dripd: config error: mailboxes[0].hourly_cap: must be a positive integer"
    good = tmp_path / "good.toml"
    good.write_text("[[mailboxes]]\nid = 'sales'\naddress = 'a@example.com'\n[mailboxes.maildir]\npath = 'x'\n")
    result = subprocess.run([str(DRIPD), "--check-config", "-c", str(good)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_second_sigterm_stops_at_once_and_the_next_start_resolves_the_rest(tmp_path: Path,
                                                                            dripd_process: MakeDripd) -> None:
    from tests.integration.servers import smtp_sink

    with smtp_sink({"rules": [{"on": "dot", "action": "stall"}]}) as sink:
        box = {"id": "sales", "address": "sales@example.com", "timezone": "UTC", "daily_cap": 1000,
               "hourly_cap": 1000, "burst": 100, "transport": "smtp", "smtp": sink.smtp_table(timeout_seconds=3600)}
        # Neither the transport's timeout nor the grace period can end this stop: only the
        # second signal can, so the bounded waits below are hang guards, not speed checks.
        process = dripd_process(tmp_path, mailboxes=[box], daemon={"shutdown_grace_seconds": 3600})
        process.start()
        with process.client() as client:
            sequence_id = client.post("/api/sequences", json={
                "name": "stuck", "mailboxId": "sales",
                "steps": [{"type": "email", "subject": "s", "body": "b"}]}).json()["id"]
            client.post(f"/api/sequences/{sequence_id}/enroll", json={"contactEmail": "x@example.org"})
            client.post(f"/api/sequences/{sequence_id}/start")
        # The message is on the wire; the server never answers the final dot.
        wait_until(lambda: sink.count("dot") > 0, what=process.log)
        assert process.proc is not None
        process.signal(signal.SIGTERM)
        wait_until(lambda: "stopping: letting in-flight sends finish" in process.log(), what=process.log)
        assert process.proc.poll() is None  # graceful: waiting for the in-flight transaction
        process.signal(signal.SIGTERM)
        process.proc.wait(60)
        assert "second stop signal: stopping at once" in process.log()
        process.start()
        with process.client() as client:
            status = client.get("/api/status").json()
        assert process.stop() in (0, -15)
    # The interrupted send may have been delivered: it is reported, never resent.
    assert status["uncertainSends"] == 1 and status["uncertainAtStart"] == 1
