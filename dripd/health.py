"""Mailbox health over time: recomputed now and then, logged when it changes, read by the API,
dripctl and the metrics. The rules themselves are pure, in analytics.health."""

from __future__ import annotations

import logging
from typing import Any

import trio

from dripd import analytics
from dripd.clock import Clock
from dripd.config import LiveConfig
from dripd.store.api import Reports

log = logging.getLogger("dripd.health")

REFRESH_SECONDS = 300.0  # rates over days move slowly; a scrape or an API call can ask sooner
MAX_AGE_SECONDS = 60.0


class MailboxHealth:
    def __init__(self, config: LiveConfig, reports: Reports, clock: Clock) -> None:
        self._config = config
        self._reports = reports
        self._clock = clock
        self.current: dict[str, analytics.Health] = {}
        self._computed_at = -float("inf")
        self._lock = trio.Lock()

    async def of(self, mailbox_id: str) -> analytics.Health:
        """Health of one mailbox from its own sends: recent window against the trailing baseline."""
        settings = self._config.current.analytics
        now = self._clock.now()
        day = 86400.0
        split = now - settings.health_window_days * day
        store = self._reports
        recent = analytics.rates_of(await store.mailbox_message_facts(mailbox_id, split, now + 1))
        baseline = analytics.rates_of(await store.mailbox_message_facts(
            mailbox_id, split - settings.health_baseline_days * day, split))
        rules = analytics.HealthRules(settings.health_min_sends, settings.health_collapse_ratio,
                                      settings.health_bounce_rate)
        return analytics.health(recent, baseline, rules)

    async def refresh(self, *, max_age: float = MAX_AGE_SECONDS) -> dict[str, analytics.Health]:
        """Recompute every mailbox unless the last round is fresher than ``max_age``."""
        async with self._lock:
            if self._clock.now() - self._computed_at < max_age:
                return self.current
            fresh: dict[str, analytics.Health] = {}
            for mailbox in self._config.current.mailboxes:
                fresh[mailbox.id] = result = await self.of(mailbox.id)
                before = self.current.get(mailbox.id)
                if result.status == "warning" and (before is None or before.warnings != result.warnings):
                    for warning in result.warnings:
                        log.warning("mailbox %s health: %s", mailbox.id, warning)
                elif before is not None and before.status == "warning" and result.status != "warning":
                    log.info("mailbox %s health: back to normal", mailbox.id)
            self.current = fresh
            self._computed_at = self._clock.now()
            return fresh

    def json_of(self, mailbox_id: str) -> dict[str, Any]:
        found = self.current.get(mailbox_id)
        return found.as_json() if found else {"status": "unknown", "warnings": [], "recent": None, "baseline": None}


async def watch_health(health: MailboxHealth, *,
                       task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """A service of the daemon: refresh health periodically so warnings reach the log."""
    await health.refresh(max_age=0)
    task_status.started()
    while True:
        await trio.sleep(REFRESH_SECONDS)
        try:
            await health.refresh(max_age=0)
        except Exception:
            log.exception("computing mailbox health failed")
