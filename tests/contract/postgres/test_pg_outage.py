"""The database going away: operations fail with a StoreError that says so in words (never a
driver's traceback), and the store works again once the server is back, without a restart of
dripd (its pooled sessions died with the server and are replaced)."""

from __future__ import annotations

import pytest
import trio

from dripd.errors import StoreError
from dripd.model import SequenceSettings
from tests.contract.postgres.conftest import Opener
from tests.contract.support import T0, email_step
from tests.postgres_server import PostgresServer


async def test_an_outage_is_a_store_error_and_the_store_recovers(postgres: PostgresServer, open_store: Opener) -> None:
    store = await open_store()
    # Several pooled sessions, so the restart leaves more than one dead one behind.
    async with trio.open_nursery() as nursery:
        for index in range(4):
            nursery.start_soon(store.create_sequence, SequenceSettings(name=f"s{index}", mailbox_id="sales"),
                               [email_step()], T0)
    postgres.stop("immediate")
    try:
        with pytest.raises(StoreError, match="cannot reach PostgreSQL") as caught:
            await store.list_sequences()
        assert caught.value.code == "store_unavailable"
    finally:
        postgres.start()
    assert sorted(s.settings.name for s in await store.list_sequences()) == ["s0", "s1", "s2", "s3"]
    created = await store.create_sequence(SequenceSettings(name="after", mailbox_id="sales"), [email_step()], T0)
    assert (await store.get_sequence(created.id))[0].settings.name == "after"
