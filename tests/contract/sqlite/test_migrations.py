"""Schema migrations of the SQLite backend: a database made by main before migrations (the exact
schema of ca8c8a1, kept in fixtures/) upgrades with every row kept; opening again changes
nothing; a newer database is refused; a failing migration leaves the database as it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio_asyncio

from dripd.errors import StoreError
from dripd.store import open_store
from dripd.store.sqlite import migrations

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema_ca8c8a1.sql"
TABLES = ["meta", "sequences", "steps", "contacts", "lists", "list_members", "enrollments", "outbox", "events",
          "suppressions", "send_log", "mailbox_state", "plugin_state"]


def main_database(path: Path) -> None:
    """What main at ca8c8a1 left on disk: its schema, its meta row, a row (or more) in every table."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(FIXTURE.read_text())
    settings = json.dumps({"name": "Cold", "mailbox_id": "sales", "auto_complete": True, "timezone": "UTC"})
    step = json.dumps({"subject": "Hi", "body": "<p>hi</p>", "text": None, "wait_seconds": 0.0, "condition": None,
                       "thread": True})
    db.executescript(f"""
        INSERT INTO meta VALUES ('schema_version', '1'), ('created_by', 'dripd main');
        INSERT INTO sequences VALUES (1, 'Cold', 'sales', 'active', '{settings}', NULL, 10.0, 11.0);
        INSERT INTO steps VALUES (1, 1, 0, 'email', '{step}', 0), (2, 1, 1, 'email', '{step}', 1);
        INSERT INTO contacts VALUES (1, 'ada@example.org', 'Ada', 'L', 'Engines', '{{"city": "London"}}', 10.0, 10.0),
                                    (2, 'bob@example.org', 'Bob', '', '', '{{}}', 10.0, 10.0);
        INSERT INTO lists VALUES (1, 'leads', 10.0);
        INSERT INTO list_members VALUES (1, 1), (1, 2);
        INSERT INTO enrollments VALUES
            (1, 1, 1, 'sales', 'active', 1, 20.0, 99.0, 99.0, '{{"topic": "x"}}', 1, 12.0, 20.0, 20.0, NULL, NULL),
            (2, 1, 2, 'sales', 'bounced', 0, 12.0, NULL, NULL, '{{}}', 1, 12.0, 21.0, 21.0, 21.0, '550 no such user');
        INSERT INTO outbox VALUES
            (1, 1, 1, 'sales', '<m1@example.com>', 'Hi', 'sent', 1, 20.0, 20.0, 20.0, NULL),
            (2, 2, 1, 'sales', '<m2@example.com>', 'Hi', 'failed', 1, 21.0, 21.0, 21.0, '550 no such user');
        INSERT INTO events (id, at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id, outbox_id,
                            flagged, data) VALUES
            (1, 12.0, 'enrolled', 'sales', 1, 1, 1, NULL, NULL, 0, '{{}}'),
            (2, 20.0, 'sent', 'sales', 1, 1, 1, 1, 1, 0, '{{}}'),
            (3, 21.0, 'bounced', 'sales', 1, 2, 2, 1, 2, 0, '{{"class": "hard", "detail": "550 no such user"}}'),
            (4, 22.0, 'auto_reply', 'sales', 1, 1, 1, 1, 1, 0, '{{"from": "ada@example.org", "returnDate": "2026-12-01"}}'),
            (5, 23.0, 'opened', 'sales', 1, 1, 1, 1, 1, 1, '{{"ua": "GoogleImageProxy", "method": "GET", "flag": "proxy"}}'),
            (6, 24.0, 'replied', 'sales', 1, 1, 1, 1, 1, 0, '{{"from": "ada@example.org", "source": "INBOX/3"}}'),
            (7, 25.0, 'complaint', 'sales', 1, 1, 1, 1, 1, 0, '{{"detail": "abuse"}}');
        INSERT INTO suppressions VALUES ('bob@example.org', 'bounced', 21.0, '550 no such user'),
                                        ('eve@example.org', 'complaint', 25.0, NULL);
        INSERT INTO send_log VALUES ('sales', 20.0), ('sales', 21.0);
        INSERT INTO mailbox_state VALUES ('sales', 'auto-paused: bounces', 26.0);
        INSERT INTO plugin_state VALUES ('imap:sales', '7:42');
    """)
    db.close()


def snapshot(path: Path) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return {table: [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")] for table in TABLES}
    finally:
        db.close()


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


async def open_and_close(path: Path) -> None:
    async with trio_asyncio.open_loop():
        store = await open_store(path)
        await store.close()


async def refusal(path: Path) -> StoreError:
    """The error opening ``path`` raises (caught inside the loop, which would wrap it in a group)."""
    async with trio_asyncio.open_loop():
        try:
            store = await open_store(path)
        except StoreError as exc:
            return exc
        await store.close()
    raise AssertionError("the store opened")


async def test_a_database_made_by_main_upgrades_with_every_row_kept(tmp_path: Path) -> None:
    path = tmp_path / "main.sqlite3"
    main_database(path)
    before = snapshot(path)
    assert user_version(path) == 0 and all(before[table] for table in TABLES)

    await open_and_close(path)
    after = snapshot(path)
    assert user_version(path) == migrations.LATEST
    # Untouched tables: the very same rows.
    for table in ("sequences", "steps", "contacts", "lists", "list_members", "enrollments", "suppressions",
                  "plugin_state"):
        assert after[table] == before[table], table
    # The send log marks first emails (for the new-contact cap): not known before, so 0.
    assert after["send_log"] == [{**row, "first_email": 0} for row in before["send_log"]]
    # The mailbox state gains when an operator last resumed it (never, for a row made before).
    assert after["mailbox_state"] == [{**row, "resumed_at": None} for row in before["mailbox_state"]]
    assert after["meta"] == [{"key": "created_by", "value": "dripd main"}]  # user_version holds the version now
    # The ledger gains the bounce class, filled from the bounced events.
    # It also gains what each message was sent as (A/B variant, body, text): unknown before, so null.
    added = ("bounce_class", "variant", "body", "text_body")
    assert [{k: v for k, v in r.items() if k not in added} for r in after["outbox"]] == before["outbox"]
    assert all(r["variant"] is None and r["body"] is None and r["text_body"] is None for r in after["outbox"])
    assert [r["bounce_class"] for r in after["outbox"]] == [None, "hard"]
    # Events: the same rows, kinds and payload keys spelled as dripd.events has them.
    assert [(e["id"], e["at"], e["enrollment_id"], e["outbox_id"], e["flagged"]) for e in after["events"]] == [
        (e["id"], e["at"], e["enrollment_id"], e["outbox_id"], e["flagged"]) for e in before["events"]]
    assert [(e["kind"], json.loads(e["data"])) for e in after["events"]] == [
        ("enrolled", {}), ("sent", {}),
        ("bounced", {"bounce_class": "hard", "detail": "550 no such user"}),
        ("auto_replied", {"sender": "ada@example.org", "return_date": "2026-12-01"}),
        ("opened", {"agent": "GoogleImageProxy", "method": "GET", "flag": "proxy"}),
        ("replied", {"sender": "ada@example.org", "source": "INBOX/3"}),
        ("complained", {"detail": "abuse"}),
    ]

    # The upgraded database works: the guards count the old bounce, the context reads the old rows.
    async with trio_asyncio.open_loop():
        store = await open_store(path)
        try:
            assert await store.sequence_hard_bounces(1, 50) == (1, 2)
            ctx = await store.run_context(1)
            assert ctx is not None and ctx.signals.replied and not ctx.signals.opened  # the open was flagged
            assert await store.mailbox_paused("sales") == "auto-paused: bounces"
        finally:
            await store.close()

    # Opening again is a no-op.
    settled = snapshot(path)
    await open_and_close(path)
    assert snapshot(path) == settled and user_version(path) == migrations.LATEST


async def test_a_new_database_starts_at_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    await open_and_close(path)
    assert user_version(path) == migrations.LATEST
    assert all(rows == [] for rows in snapshot(path).values())


async def test_a_database_from_a_newer_dripd_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    await open_and_close(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    db.close()
    error = await refusal(path)
    assert f"schema version {migrations.LATEST + 1} is newer than this dripd supports ({migrations.LATEST})" in error.message
    assert user_version(path) == migrations.LATEST + 1


async def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "failing.sqlite3"
    await open_and_close(path)

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        db.execute("INSERT INTO no_such_table VALUES (1)")

    shipped = migrations.LATEST
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "LATEST", shipped + 1)
    error = await refusal(path)
    assert error.message.startswith(f"schema migration {shipped + 1} failed: no such table")
    assert error.details["migration"] == shipped + 1
    assert user_version(path) == shipped
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    finally:
        db.close()
