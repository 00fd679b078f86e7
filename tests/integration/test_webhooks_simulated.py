"""Webhook retries over a simulated day: the in-process daemon (simulated time, the scripted
transport) posts to a real receiver process that answers 500 to everything. The clock is moved,
never polled: attempts back off exponentially with jitter, the last falls within the 24-hour
retry period, the delivery ends failed, and the sends go on meanwhile. The receiver always
answers at once, and a delivery's HTTP request holds the simulated clock (``offloaded``), so
the 24 hours take real seconds, not hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import trio

from dripd.config import parse_config
from dripd.model import Action
from dripd.plugins import Plugins
from dripd.webhooks.dispatcher import Dispatcher
from dripd.webhooks.retry import FIRST_DELAY_SECONDS, MAX_DELAY_SECONDS
from dripd.webhooks.signing import new_secret
from tests.conftest import running_daemon
from tests.integration.simulated import START, TWO_STEPS, mailbox, people, sequence, sleep_until
from tests.integration.webhook_receiver import webhook_receiver
from tests.scripted_transport import ScriptedPlugin


async def test_retries_back_off_for_24_hours_then_fail(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text(new_secret())
    plugin = ScriptedPlugin()
    plugins = Plugins((plugin,))
    with webhook_receiver(tmp_path / "receiver", then=500) as receiver:
        config = parse_config({
            "daemon": {"state_dir": str(tmp_path / "var"), "socket": str(tmp_path / "var" / "dripd.sock")},
            "mailboxes": [mailbox()],
            "webhooks": [{"name": "erring", "url": receiver.url, "secret_file": str(secret), "events": ["enrolled"]}],
        }, plugins.config_sections(), plugins.transports)
        async with running_daemon(config, plugins, START) as daemon:
            seq = await sequence(daemon, TWO_STEPS)
            await daemon.control.enroll(seq.id, people(1))
            await daemon.control.transition(seq.id, Action.START)
            await sleep_until(daemon, START + dt.timedelta(hours=25))
            [delivery] = await daemon.store.webhook_deliveries()
            sends = len(plugin.transports["m"].delivered)

    attempts = [int(r["headers"]["webhook-timestamp"]) for r in receiver.requests()]
    assert delivery.status == "failed" and delivery.attempts == len(attempts), delivery
    assert delivery.last_status == 500
    start = int(START.timestamp())
    assert attempts[0] - start <= 1  # at once
    deadline = start + 24 * 3600
    assert deadline - 3600 <= attempts[-1] <= deadline + 1, "the last attempt is at the retry period's end"
    for n, (before, after) in enumerate(zip(attempts, attempts[1:-1]), start=1):
        step = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (n - 1))
        assert step * 0.5 - 1 <= after - before <= step + 1, (n, after - before)
    assert 20 <= len(attempts) <= 60, len(attempts)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests()}) == 1
    assert sends == 2, "the sends went on while the receiver failed"


class _RefreshingStore:
    """The daemon's store, through which a round of the dispatcher below reads its due rows; while
    it does, the endpoints change (as a delivery answered 410 changes them: ``refresh``)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.dispatcher: Dispatcher | None = None
        self.refreshed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def webhook_due(self, *args: Any) -> Any:
        due = await self._store.webhook_due(*args)
        assert self.dispatcher is not None
        self.dispatcher.refresh()
        self.refreshed += 1
        return due


async def test_endpoints_that_change_during_a_round_are_read_again_on_the_next(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    # The daemon's own dispatcher once read its endpoints again at the end of a round in which a
    # delivery had been answered 410, found None, raised TypeError and ended the daemon (seen as
    # test_webhooks_delivery's 410 test failing under load). A second dispatcher on the same
    # store and config runs rounds with the change made inside each one.
    secret = tmp_path / "hook.secret"
    secret.write_text(new_secret())
    plugins = Plugins((ScriptedPlugin(),))
    config = parse_config({
        "daemon": {"state_dir": str(tmp_path / "var"), "socket": str(tmp_path / "var" / "dripd.sock")},
        "mailboxes": [mailbox()],
        "webhooks": [{"name": "one", "url": "http://127.0.0.1:9/hooks", "secret_file": str(secret)}],
    }, plugins.config_sections(), plugins.transports)
    async with running_daemon(config, plugins, START) as daemon:
        services = daemon.services
        store = _RefreshingStore(services.store)
        dispatcher = store.dispatcher = Dispatcher(services.live, store, services.clock)
        await dispatcher.sync_config()
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            for _ in range(2):
                assert await dispatcher._start_due(client, nursery) > 0
                assert dispatcher._endpoints is None, "the change is read on the next round"
    assert store.refreshed == 2, "each round read its due rows with the endpoint it began with"
