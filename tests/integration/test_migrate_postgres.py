"""A real installation moves from SQLite to PostgreSQL with ``dripd migrate`` and carries on.

The real daemon on SQLite sends first emails, a reply arrives through the real Dovecot and its
IMAP detector, a contact is suppressed, a list and a webhook are made; one mailbox's hourly cap
holds a second email back. ``dripd migrate`` copies the state while that daemon is still running
(a snapshot read through WAL), the daemon stops, and a dripd on PostgreSQL starts on the copy:
the API shows the same sequences, contacts, stats, replies, lists and suppressions; with the cap
lifted it sends the held-back step and nothing that was already sent (the ledger moved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.daemon_process import MakeDripd, fast_mailbox
from tests.integration.migrate_tool import password_file, pg_query, printed_counts, run_migrate, sqlite_counts
from tests.integration.servers import Dovecot
from tests.integration.test_inbox_e2e import outlook_reply
from tests.integration.waiting import wait_until
from tests.postgres_server import PostgresServer

CONTACTS = ["ana@kunde.example", "juergen@kunde.example", "li@kunde.example"]


def _views(client: httpx.Client, first: int) -> dict[str, Any]:
    """What an operator sees of the state (sequences, their contacts and funnels, replies, lists,
    suppressions); nothing that a live daemon computes from its own clock or memory."""
    def get(path: str) -> Any:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    listed = get("/api/sequences")
    return {
        "first.listed": [row for row in _rows(listed, "sequences") if row["id"] == first],
        "first": get(f"/api/sequences/{first}"),
        "first.contacts": _rows(get(f"/api/sequences/{first}/contacts"), "contacts"),  # not "now": the daemon's clock
        "first.stats": {key: value for key, value in get(f"/api/sequences/{first}/stats").items()
                        if key != "generatedAt"},  # when the answer was made
        "replies": get("/api/replies"),
        "lists": get("/api/lists"),
        "suppressions": get("/api/suppressions"),
        "contacts": get("/api/contacts"),
    }


def _rows(page: Any, key: str) -> list[dict[str, Any]]:
    return list(page) if isinstance(page, list) else list(page[key])


def test_a_running_installation_moves_and_carries_on(tmp_path: Path, dripd_process: MakeDripd, imap_server: Dovecot,
                                                     postgres: PostgresServer) -> None:
    user = imap_server.new_user("migrate")
    mailboxes = [fast_mailbox(tmp_path, address=user, imap=imap_server.imap_table(user, idle_seconds=600)),
                 fast_mailbox(tmp_path, "slow", hourly_cap=1, burst=1)]  # one send an hour: the 2nd step waits
    (tmp_path / "sqlite").mkdir()
    before = dripd_process(tmp_path / "sqlite", mailboxes=mailboxes)
    before.start()
    with before.client() as client:
        first = client.post("/api/sequences", json={
            "name": "Kurze Frage", "mailboxId": "sales",
            "steps": [{"type": "email", "subject": "Kurze Frage", "body": "<p>Hallo {{firstName|there}}</p>"},
                      {"type": "wait", "waitDays": 2},
                      {"type": "email", "subject": "", "body": "<p>Nachfrage</p>"}]}).json()["id"]
        for email in CONTACTS:
            enrolled = client.post(f"/api/sequences/{first}/enroll", json={"contactEmail": email,
                                                                           "mergeFields": {"firstName": email[:2]}})
            assert enrolled.status_code == 201, enrolled.text
        second = client.post("/api/sequences", json={
            "name": "Two at once", "mailboxId": "slow", "autoComplete": True,
            "steps": [{"type": "email", "subject": "One", "body": "<p>one</p>"},
                      {"type": "email", "subject": "Two", "body": "<p>two</p>", "thread": False}]}).json()["id"]
        assert client.post(f"/api/sequences/{second}/enroll", json={"contactEmail": "sam@user.example"}).status_code == 201
        assert client.post("/api/lists", json={"name": "Kunden", "emails": CONTACTS[:2]}).status_code == 201
        assert client.post("/api/suppressions", json={"email": "nobody@user.example"}).status_code == 201
        hook = client.post("/api/webhooks", json={"name": "crm", "url": "http://127.0.0.1:9/hook"})
        assert hook.status_code == 201, hook.text
        assert client.post(f"/api/sequences/{first}/start").status_code == 200
        assert client.post(f"/api/sequences/{second}/start").status_code == 200
        sent = before.wait_for_messages(3, "sales")
        before.wait_for_messages(1, "slow")

        # Jürgen answers; the detector files the reply and stops his enrollment.
        [to_juergen] = [m for m in sent if "juergen" in str(m["To"])]
        imap_server.deliver(user, outlook_reply(user, "juergen@kunde.example", str(to_juergen["Message-ID"]),
                                                "Kurze Frage"))
        wait_until(lambda: client.get("/api/replies").json()["total"] == 1, timeout=60, what=before.log)

        # What an operator sees now: the slow mailbox's second step is held by its cap, and
        # nothing else is due for two days, so this is also what the copy below holds.
        seen = _views(client, first)

        # The copy is taken while this daemon is still running (its WAL open, its detector idling).
        url = postgres.fresh_database()
        database = before.state_dir / "dripd.sqlite3"
        moved = run_migrate("--from", f"sqlite:{database}", "--to", url, "--password-file",
                            str(password_file(tmp_path)))
        assert moved.returncode == 0, moved.stderr + before.log()
    assert before.stop() == 0

    counts = sqlite_counts(database)
    assert printed_counts(moved.stdout) == {name: (rows, rows) for name, rows in counts.items()}, moved.stdout
    assert counts["outbox"] == 4 and counts["replies"] == 1 and counts["webhook_endpoints"] == 1
    for name, rows in counts.items():
        assert pg_query(url, f'SELECT count(*) FROM "{name}"') == [(rows,)], name

    # The same installation on PostgreSQL: same configuration but the store, and the cap lifted.
    (tmp_path / "pg").mkdir()
    after = dripd_process(tmp_path / "pg", mailboxes=[mailboxes[0], {**mailboxes[1], "hourly_cap": 1000, "burst": 10}],
                          extra={"store": {"url": url, "password_file": str(password_file(tmp_path))}})
    after.start()
    try:
        with after.client() as client:
            assert _views(client, first) == seen
            # It carries on: the held-back second step goes out, the first is not sent again.
            slow = after.wait_for_messages(2, "slow")
            assert [str(m["Subject"]) for m in slow] == ["One", "Two"]

            def second_completed() -> bool:
                return bool(client.get(f"/api/sequences/{second}").json()["status"] == "completed")

            wait_until(second_completed, timeout=60, what=after.log)
            assert len(after.messages("slow")) == 2
            # Nothing of the first sequence went out again; its contacts wait for their follow-up.
            assert len(after.messages("sales")) == 3
            assert _views(client, first) == seen
            assert client.get("/api/replies").json()["total"] == 1
        assert pg_query(url, "SELECT count(*) FROM outbox") == [(5,)]
        assert pg_query(url, "SELECT count(*) FROM outbox GROUP BY enrollment_id, step_id HAVING count(*) > 1") == []
    finally:
        assert after.stop() == 0, after.log()


def test_the_copy_is_one_snapshot_while_the_daemon_keeps_sending(tmp_path: Path, dripd_process: MakeDripd,
                                                                  postgres: PostgresServer) -> None:
    """Copied in the middle of 400 sends: the tables agree with each other as of one moment (a
    table-by-table read without one snapshot would find more ledger rows than the enrollments
    it read earlier had advanced for), and the daemon's writes went on during the copy."""
    # 50 sends a second, evenly spaced: the 400 take ~8 s, so the copy (taken ~1-3 s after the
    # 20th) lands mid-way however loaded the machine is, and the sending goes on after it.
    process = dripd_process(tmp_path, mailboxes=[fast_mailbox(tmp_path, hourly_cap=180_000, burst=1)])
    process.start()
    with process.client() as client:
        created = client.post("/api/sequences", json={
            "name": "busy", "mailboxId": "sales", "autoComplete": True,
            "steps": [{"type": "email", "subject": "One", "body": "<p>one</p>"},
                      {"type": "email", "subject": "Two", "body": "<p>two</p>", "thread": False}]})
        assert created.status_code == 201, created.text
        sequence_id = created.json()["id"]
        csv = "email\n" + "".join(f"c{i:03d}@example.org\n" for i in range(200))
        enrolled = client.post(f"/api/sequences/{sequence_id}/enroll/csv", content=csv.encode(),
                               headers={"content-type": "text/csv"})
        assert enrolled.status_code == 201, enrolled.text
        assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
        process.wait_for_messages(20)
        url = postgres.fresh_database()
        moved = run_migrate("--from", f"sqlite:{process.state_dir / 'dripd.sqlite3'}", "--to", url,
                            "--password-file", str(password_file(tmp_path)))
        assert moved.returncode == 0, moved.stderr
        copied = printed_counts(moved.stdout)["outbox"][0]
        copied_sent = pg_query(url, "SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0]
        wait_until(lambda: client.get(f"/api/sequences/{sequence_id}").json()["status"] == "completed",
                   timeout=120, what=process.log)
    assert process.stop() == 0
    print(f"copied {copied} of 400 ledger rows while the daemon sent")
    assert 20 <= copied < 400, moved.stdout
    assert pg_query(url, "SELECT count(*) FROM outbox") == [(copied,)]
    assert sqlite_counts(process.state_dir / "dripd.sqlite3")["outbox"] == 400
    # One moment of the ledger: the store marks a row sent, writes its event and advances the
    # enrollment in one transaction, and the copy (tables read one after another) agrees on all three.
    assert pg_query(url, "SELECT count(*) FROM enrollments e WHERE e.sent_count <>"
                         " (SELECT count(*) FROM outbox o WHERE o.enrollment_id = e.id AND o.status = 'sent')") == [(0,)]
    assert pg_query(url, "SELECT (SELECT count(*) FROM events WHERE kind = 'sent'),"
                         " (SELECT count(*) FROM outbox WHERE status = 'sent')") == [(copied_sent, copied_sent)]
