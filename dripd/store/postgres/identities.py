"""Identity columns after rows were written with their own ids (a copy from SQLite keeps every
id, so Message-IDs, webhook-ids and links stay valid): move each table's id sequence past the
largest id, or the next row the store inserts would collide with a copied one."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def identity_tables(db: psycopg.Connection[Any]) -> list[str]:
    """The tables of the current schema whose ``id`` is an identity column."""
    rows = db.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
                      " AND column_name = 'id' AND is_identity = 'YES' ORDER BY table_name").fetchall()
    return [str(r[0]) for r in rows]


def sync_identities(db: psycopg.Connection[Any]) -> dict[str, int]:
    """Set every identity sequence so the next id is past the table's largest; returns each
    table's largest id (0 when empty). Run it in the transaction that copied the rows."""
    found: dict[str, int] = {}
    for table in identity_tables(db):
        row = db.execute(sql.SQL("SELECT COALESCE(MAX(id), 0) FROM {}").format(sql.Identifier(table))).fetchone()
        top = int(row[0]) if row else 0
        # setval(seq, n, false): the next nextval() returns n itself.
        db.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)", (table, top + 1))
        found[table] = top
    return found
