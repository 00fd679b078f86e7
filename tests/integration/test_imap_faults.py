"""IMAP network faults for the detector against a real Dovecot (RELIABILITY.md): the server
restarts mid-IDLE, and a folder's UIDVALIDITY changes. Each ends with every message seen once."""

from __future__ import annotations

import subprocess
import time

import trio
import trio_asyncio

from tests.integration.mail_samples import reply
from tests.integration.plugin_harness import MemoryState, watching
from tests.integration.servers import dovecot, wait_for_port


def doveadm(server, *args: str) -> None:  # type: ignore[no-untyped-def]
    subprocess.run(["doveadm", "-c", str(server.conf), *args], check=True, capture_output=True, timeout=20)


async def test_server_restart_mid_idle_misses_nothing() -> None:
    with dovecot() as server:
        user = server.new_user()
        state = MemoryState()
        try:
            async with trio_asyncio.open_loop(), watching(server.imap_table(user), state) as watch:
                server.deliver(user, reply(user, "a@example.org", "<1@example.com>", n=1))
                await watch.wait_for(1)
                doveadm(server, "stop")  # the whole server goes away while we IDLE
                time.sleep(0.5)
                subprocess.run(["dovecot", "-c", str(server.conf)], check=True, timeout=20)
                wait_for_port(server.port)
                # Delivered before the detector is back (it is in its reconnect backoff).
                server.deliver(user, reply(user, "b@example.org", "<2@example.com>", n=2))
                await watch.wait_for(2, timeout=30)
                server.deliver(user, reply(user, "c@example.org", "<3@example.com>", n=3))
                events = await watch.wait_for(3, timeout=30)
                await trio.sleep(0.5)
        finally:
            subprocess.run(["doveadm", "-c", str(server.conf), "stop"], capture_output=True, timeout=20)
    assert [e.sender for e in watch.events] == ["a@example.org", "b@example.org", "c@example.org"]
    assert len(events) == 3


async def test_uidvalidity_change_is_followed_without_repeats() -> None:
    with dovecot() as server:
        user = server.new_user()
        doveadm(server, "mailbox", "create", "-u", user, "Replies")
        state = MemoryState()
        table = server.imap_table(user, folders=["Replies"])
        async with trio_asyncio.open_loop():
            async with watching(table, state) as watch:
                server.deliver(user, reply(user, "a@example.org", "<1@example.com>", n=1), folder="Replies")
                await watch.wait_for(1)
            before = state.values["Replies:uidvalidity"]
            # The folder is deleted and made again: a new UIDVALIDITY, UIDs start over at 1.
            doveadm(server, "mailbox", "delete", "-u", user, "Replies")
            doveadm(server, "mailbox", "create", "-u", user, "Replies")
            server.deliver(user, reply(user, "b@example.org", "<2@example.com>", n=2), folder="Replies")
            async with watching(table, state) as watch:
                events = await watch.wait_for(1, timeout=15)
                server.deliver(user, reply(user, "c@example.org", "<3@example.com>", n=3), folder="Replies")
                events = await watch.wait_for(2, timeout=15)
                await trio.sleep(0.5)
    assert state.values["Replies:uidvalidity"] != before
    assert [e.sender for e in events] == ["b@example.org", "c@example.org"]
