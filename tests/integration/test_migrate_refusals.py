"""``dripd migrate`` against a real PostgreSQL server, without a daemon: what it refuses (each with
its message and exit status) and the edges of the copy itself (ids kept, sequences moved past
them and past SQLite's AUTOINCREMENT high-water mark, the webhook trigger silent for history,
a non-empty target refused after a first copy)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dripd.store.sqlite.migrations import LATEST, migrate
from tests.integration.migrate_tool import password_file, pg_query, printed_counts, run_migrate, sqlite_counts
from tests.postgres_server import PASSWORD, PostgresServer


def sqlite_at_latest(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    migrate(db)
    return db


def fill(db: sqlite3.Connection) -> None:
    """A little of everything, with gaps in the ids and a deleted webhook endpoint (its id never reused)."""
    db.execute("BEGIN")
    db.execute("INSERT INTO sequences (id, name, mailbox_id, status, settings, created_at, updated_at)"
               " VALUES (7, 'Seq', 'sales', 'active', '{}', 1.5, 1.5)")
    db.execute("INSERT INTO steps (id, sequence_id, ord, type, data, deleted) VALUES (11, 7, 0, 'email', '{}', 0),"
               " (12, 7, 1, 'email', '{}', 1)")
    db.execute("INSERT INTO contacts (id, email, fields, created_at, updated_at) VALUES (3, 'a@x.example', "
               "'{\"k\": \"ü\"}', 1, 1), (9, 'b@x.example', '{}', 1, 1)")
    db.execute("INSERT INTO lists (id, name, created_at) VALUES (2, 'L', 1)")
    db.execute("INSERT INTO list_members (list_id, contact_id) VALUES (2, 3), (2, 9)")
    db.execute("INSERT INTO enrollments (id, sequence_id, contact_id, mailbox_id, status, cursor_ord, due_at, next_run_at,"
               " enrolled_at, updated_at) VALUES (5, 7, 3, 'sales', 'active', 1, 100.25, 100.25, 1, 1)")
    db.execute("INSERT INTO outbox (id, enrollment_id, step_id, mailbox_id, message_id, subject, status, attempts,"
               " created_at, attempted_at) VALUES (4, 5, 11, 'sales', '<m1@x>', 'Hi', 'sent', 1, 2, 2)")
    db.execute("INSERT INTO webhook_endpoints (name, url, secret, kinds, source, retry_hours, retry_first_seconds,"
               " timeout_seconds, concurrency, created_at, updated_at) VALUES ('hook', 'http://127.0.0.1:1/', 's',"
               " '*', 'api', 1, 1, 1, 1, 1, 1), ('gone', 'http://127.0.0.1:1/', 's', '*', 'api', 1, 1, 1, 1, 1, 1)")
    db.execute("DELETE FROM webhook_endpoints WHERE name = 'gone'")  # AUTOINCREMENT: its id 2 is never handed out again
    db.execute("INSERT INTO events (id, at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id,"
               " outbox_id, flagged, data) VALUES (20, 2, 'sent', 'sales', 7, 5, 3, 11, 4, 1, ?)",
               (json.dumps({"messageId": "<m1@x>"}),))  # the trigger queues one delivery for 'hook'
    db.execute("INSERT INTO suppressions (email, reason, at) VALUES ('b@x.example', 'manual', 3)")
    db.execute("INSERT INTO send_log (mailbox_id, at, first_email) VALUES ('sales', 2, 1)")
    db.execute("INSERT INTO plugin_state (key, value) VALUES ('imap:sales:INBOX', '{\"uid\": 4}')")
    db.execute("COMMIT")


def test_a_copy_keeps_ids_and_moves_sequences_past_them(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "dripd.sqlite3"
    db = sqlite_at_latest(source)
    fill(db)
    url = postgres.fresh_database()
    # The daemon's connection stays open (a running installation): the copy reads a snapshot.
    done = run_migrate("--from", f"sqlite:{source}", "--to", url, "--password-file", str(password_file(tmp_path)))
    db.close()
    assert done.returncode == 0, done.stderr
    expected = sqlite_counts(source)
    assert expected["webhook_deliveries"] == 1
    printed = printed_counts(done.stdout)
    assert printed == {name: (rows, rows) for name, rows in expected.items()}, done.stdout
    for name, rows in expected.items():
        assert pg_query(url, f'SELECT count(*) FROM "{name}"') == [(rows,)], name
    # History did not fire the trigger again: one delivery, the one SQLite had.
    assert pg_query(url, "SELECT id, endpoint_id, event_id FROM webhook_deliveries") == [(1, 1, 20)]
    assert pg_query(url, "SELECT id, cursor_ord, next_run_at FROM enrollments") == [(5, 1, 100.25)]
    assert pg_query(url, "SELECT fields FROM contacts WHERE id = 3") == [('{"k": "ü"}',)]
    assert pg_query(url, "SELECT version FROM schema_migrations") != []
    # New rows are numbered past the copied ids, and past the deleted endpoint's id on SQLite's side.
    assert pg_query(url, "INSERT INTO contacts (email, created_at, updated_at) VALUES ('c@x.example', 1, 1)"
                         " RETURNING id") == [(10,)]
    assert pg_query(url, "INSERT INTO webhook_endpoints (name, url, secret, kinds, source, retry_hours,"
                         " retry_first_seconds, timeout_seconds, concurrency, created_at, updated_at) VALUES"
                         " ('new', 'u', 's', '*', 'api', 1, 1, 1, 1, 1, 1) RETURNING id") == [(3,)]
    assert pg_query(url, "INSERT INTO lists (name, created_at) VALUES ('M', 1) RETURNING id") == [(3,)]

    # The target now holds rows: a second copy is refused, naming them, and changes nothing.
    again = run_migrate("--from", f"sqlite:{source}", "--to", url, env={"PGPASSWORD": PASSWORD})
    assert again.returncode == 73, again.stderr
    assert "not empty" in again.stderr and "contacts" in again.stderr
    assert pg_query(url, "SELECT count(*) FROM contacts") == [(3,)]


def test_what_it_refuses(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "dripd.sqlite3"
    sqlite_at_latest(source).close()
    url = postgres.fresh_database()
    secret = password_file(tmp_path)

    def refused(*args: str, status: int, says: str, env: dict[str, str] | None = None) -> None:
        done = run_migrate(*args, env=env)
        assert done.returncode == status, (args, done.returncode, done.stdout, done.stderr)
        assert says in done.stderr, (args, done.stderr)
        assert PASSWORD not in done.stderr + done.stdout

    # Bad arguments: 78, naming the argument.
    refused("--from", str(source), "--to", url, status=78, says="--from")
    refused("--from", f"sqlite:{source}", "--to", "mysql://h/db", status=78, says="--to")
    refused("--from", f"sqlite:{source}", "--to", postgres.url(url.rsplit("/", 1)[1].split("?")[0], password=True),
            status=78, says="--to: the URL holds a password")
    refused("--from", f"sqlite:{source}", "--to", url + "&password=x", status=78, says="--to: the URL holds a password")
    refused("--from", f"sqlite:{source}", "--to", url, "--password-file", str(tmp_path / "missing"),
            status=78, says="--password-file")
    refused("--from", f"sqlite:{source}", status=78, says="--to")  # argparse's own usage error, as 78 too
    # The source: missing, not a database, another schema version.
    refused("--from", f"sqlite:{tmp_path / 'nope.sqlite3'}", "--to", url, status=66, says="no such file")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    refused("--from", f"sqlite:{garbage}", "--to", url, status=66, says="cannot read")
    older = tmp_path / "older.sqlite3"
    db = sqlite_at_latest(older)
    db.execute(f"PRAGMA user_version = {LATEST - 1}")
    db.close()
    refused("--from", f"sqlite:{older}", "--to", url, status=65, says=f"schema version {LATEST - 1}")
    newer = tmp_path / "newer.sqlite3"
    db = sqlite_at_latest(newer)
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    refused("--from", f"sqlite:{newer}", "--to", url, status=65, says="newer dripd")
    # The target: a wrong password, a database that does not exist.
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    refused("--from", f"sqlite:{source}", "--to", url, "--password-file", str(wrong), status=69, says="cannot connect")
    refused("--from", f"sqlite:{source}", "--to", postgres.url("no_such_db"), "--password-file", str(secret),
            status=69, says="no_such_db")
    # A database holding someone else's rows is not given dripd's tables.
    foreign = postgres.fresh_database()
    pg_query(foreign, "CREATE TABLE invoices (id INT)")
    pg_query(foreign, "INSERT INTO invoices VALUES (1)")
    refused("--from", f"sqlite:{source}", "--to", foreign, "--password-file", str(secret), status=73, says="invoices")
    assert pg_query(foreign, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(1,)]
    # Nothing above wrote the target it refused: a copy into it now works (PGPASSWORD this time).
    done = run_migrate("--from", f"sqlite:{source}", "--to", url, env={"PGPASSWORD": PASSWORD})
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout
