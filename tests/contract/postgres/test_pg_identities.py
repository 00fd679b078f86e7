"""Rows copied with their own ids (dripd migrate): after ``sync_identities`` the store's next
inserts get ids past them instead of colliding."""

from __future__ import annotations

from dripd.model import SequenceSettings
from dripd.store.postgres.identities import sync_identities
from tests.contract.postgres.conftest import Opener, connect
from tests.contract.support import T0, email_step


async def test_ids_continue_past_copied_rows(pg_url: str, open_store: Opener) -> None:
    store = await open_store()
    with connect(pg_url) as conn:
        with conn.transaction():
            conn.execute("INSERT INTO sequences (id, name, mailbox_id, status, settings, created_at, updated_at)"
                         " VALUES (41, 'copied', 'sales', 'draft', '{\"name\": \"copied\", \"mailbox_id\": \"sales\"}',"
                         " 0, 0)")
            found = sync_identities(conn)
    assert found["sequences"] == 41 and found["events"] == 0
    created = await store.create_sequence(SequenceSettings(name="new", mailbox_id="sales"), [email_step()], T0)
    assert created.id == 42
    assert [s.settings.name for s in await store.list_sequences()] == ["copied", "new"]
