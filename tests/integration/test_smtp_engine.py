"""Every SMTP fault through the real engine (in-process daemon, real clock, scripted sink):
each ends in the right state, and none is retried in a tight loop."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from dripd.model import Action, SequenceSettings
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.conftest import make_config, running_daemon
from tests.integration.servers import smtp_sink
from tests.integration.waiting import wait_until_async

CONTACT = "bob@example.org"


def mailbox(table: dict[str, Any]) -> dict[str, Any]:
    return {"id": "alice", "address": "alice@example.com", "timezone": "UTC", "daily_cap": 1000, "hourly_cap": 1000,
            "burst": 10, "transport": "smtp", "smtp": table}


@pytest.mark.parametrize(("rule", "status", "outbox", "paused", "suppressed"), [
    ({"on": "rcpt", "reply": "550 5.1.1 <bob@example.org>: user unknown"}, "bounced", "failed", False, True),
    ({"on": "rcpt", "reply": "450 4.2.0 greylisted, come back later"}, "active", "retry", False, False),
    ({"on": "rcpt", "reply": "421 4.3.2 shutting down"}, "active", "retry", False, False),
    ({"on": "mail", "reply": "550 5.7.1 sender rejected: not authorized"}, "active", None, True, False),
    ({"on": "dot", "reply": "554 5.7.515 rejected by policy"}, "active", None, True, False),
    # Uncertain: not resent; the cadence moves on to step 2 (uncertain too here), then ends.
    ({"on": "dot", "action": "drop"}, "completed", "uncertain", False, False),
    ({"on": "dot", "action": "stall"}, "completed", "uncertain", False, False),
    ({"on": "rcpt", "action": "stall"}, "active", "retry", False, False),
])
async def test_fault_ends_in_the_right_state(tmp_path: Path, rule: dict[str, Any], status: str, outbox: str | None,
                                             paused: bool, suppressed: bool) -> None:
    with smtp_sink({"rules": [rule]}) as sink:
        config, plugins = make_config(tmp_path, [mailbox(sink.smtp_table(timeout_seconds=0.5))],
                                      retry_base_seconds=60)
        async with running_daemon(config, plugins, dt.datetime.now(dt.timezone.utc)) as daemon:
            steps = [step_from_fields(s) for s in (
                {"type": "email", "subject": "Hi", "body": "<p>Hello</p>"},
                {"type": "wait", "delayMs": 200},
                {"type": "email", "subject": "", "body": "<p>Again</p>"},
            )]
            sequence = await daemon.control.create_sequence(SequenceSettings("faults", "alice"), steps)
            await daemon.control.enroll(sequence.id, [ContactInput(CONTACT)])
            await daemon.control.transition(sequence.id, Action.START)
            expected_rows = [outbox] * 2 if outbox == "uncertain" else [outbox]

            async def settled() -> bool:
                progress = (await daemon.store.sequence_contacts(sequence.id))[0]
                rows = (await daemon.store.contact_history(sequence.id, progress.contact_id))["messages"]
                return (progress.status == status and (await daemon.store.mailbox_paused("alice") is not None) is paused
                        and (outbox is None or [m["status"] for m in rows] == expected_rows))

            # Waits for the end state the fault must lead to (the bound is only a hang guard).
            with contextlib.suppress(AssertionError):
                await wait_until_async(settled, what="the fault's end state")
            progress = (await daemon.store.sequence_contacts(sequence.id))[0]
            paused_reason = await daemon.store.mailbox_paused("alice")
            suppressions = {row["email"] for row in await daemon.store.suppressions()}
            sent = (await daemon.store.contact_history(sequence.id, progress.contact_id))["messages"]
            now = daemon.clock.now()
        attempts = sink.count("mail")
    assert progress.status == status
    assert (paused_reason is not None) is paused, paused_reason
    assert (CONTACT in suppressions) is suppressed
    if outbox is not None:
        assert [m["status"] for m in sent] == ([outbox] * 2 if outbox == "uncertain" else [outbox])
    # A transient fault waits for its backoff (60 s here) and a blocked sender stops the mailbox:
    # one attempt. An uncertain message is never resent: one attempt for each of the two steps.
    assert attempts == (2 if outbox == "uncertain" else 1), sink.events()
    if outbox == "retry":  # and the next attempt is the backoff's, a minute away, not a tight loop
        assert progress.next_run_at is not None and progress.next_run_at - now > 30
