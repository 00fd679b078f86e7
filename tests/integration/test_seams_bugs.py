"""The seams issue's bugs, through the real engine and store (in-process daemon):

- a contact no message can be addressed to ends failed before any claim, and a message that
  cannot be built after its ledger claim is resolved as failed with its reason, never left
  'sending', never counted as sent and taking no place under the caps;
- hard refusals during the SMTP conversation reach the bounce guards (sequence and mailbox),
  like DSN bounces do;
- the plugin hook ``dripd_event`` sees every kind of event, after commit.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Mapping

import trio

from dripd.events import EventKind, MailEvent
from dripd.hookspecs import hookimpl
from dripd.model import Action, SequenceSettings, SequenceStatus
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.conftest import maildir_mailbox, make_config, running_daemon
from tests.integration.servers import smtp_sink
from tests.integration.waiting import wait_until_async

START = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone.utc)  # a Monday
EMAIL = {"type": "email", "subject": "Hello {{firstName|there}}", "body": "<p>Hi {{firstName|there}}</p>"}


async def test_a_contact_no_message_can_be_addressed_to_ends_failed_with_its_reason_before_any_claim(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    config, plugins = make_config(tmp_path, [maildir_mailbox(tmp_path, "m", timezone="UTC", hourly_cap=60, burst=5)])
    async with running_daemon(config, plugins, START) as daemon:
        steps = [step_from_fields(EMAIL), step_from_fields({"type": "wait", "waitDays": 2}), step_from_fields(EMAIL)]
        sequence = await daemon.control.create_sequence(SequenceSettings("s", "m", auto_complete=False), steps)
        # The API refuses such a name at its edge (tests/integration/test_api_nulls.py); a
        # database written before that rule, or another client of the store, may still hold one.
        bad = await daemon.store.create_contact(ContactInput("sam@example.org", first_name="Sam\x07"),
                                                daemon.clock.now())
        good = await daemon.store.create_contact(ContactInput("kim@example.org", first_name="Kim"), daemon.clock.now())
        await daemon.control.enroll(sequence.id, [bad.id, good.id])
        await daemon.control.transition(sequence.id, Action.START)
        await trio.sleep(3600)
        progress = {p.email: p for p in await daemon.store.sequence_contacts(sequence.id)}
        history = await daemon.store.contact_history(sequence.id, bad.id)
        sending = await daemon.store.outbox_in_state("sending")
        counters = daemon.engine.counters
        sends_today = daemon.scheduler.lanes["m"].limiter.sends_today(daemon.clock.now())
    outbox = sorted((tmp_path / "outbox" / "m" / "new").iterdir())

    assert progress["sam@example.org"].status == "failed"
    assert progress["kim@example.org"].status == "active"  # one bad contact stops nobody else
    assert sending == []  # nothing left 'sending' until a restart
    # Checked before the limiter's gate: no ledger claim, no send taken from the day's count.
    assert history["messages"] == []
    assert sends_today == 1
    [enrollment] = history["enrollments"]
    assert enrollment["status"] == "failed" and "must not contain control characters" in enrollment["end_reason"]
    assert enrollment["sent_count"] == 0
    kinds = [e["kind"] for e in history["events"]]
    assert kinds[0] == "enrolled" and kinds.count("failed") == 1 and "sent" not in kinds
    assert (counters.sent, counters.failed) == (1, 1)
    assert len(outbox) == 1 and b"kim@example.org" in outbox[0].read_bytes()


class BadHeaders:
    """A plugin that adds a header no message can carry to one sequence's messages. The engine
    builds each message before its claim and, when that fails, again after it, where the failure
    is recorded: the path a message that cannot be built takes."""

    def __init__(self) -> None:
        self.sequence_id: int | None = None

    @hookimpl
    def dripd_message_headers(self, mailbox_id: str, sequence_id: int, step_id: int) -> list[tuple[str, str]]:
        return [("X Not A Name", "1")] if sequence_id == self.sequence_id else []


async def test_a_message_that_cannot_be_built_after_its_claim_ends_failed_and_takes_no_place_under_the_caps(
    tmp_path: Path, autojump_clock: Any,
) -> None:
    bad_headers = BadHeaders()
    config, plugins = make_config(tmp_path, [maildir_mailbox(tmp_path, "m", timezone="UTC", hourly_cap=60, burst=5)],
                                  extra_plugins=(bad_headers,))
    async with running_daemon(config, plugins, START) as daemon:
        broken = await daemon.control.create_sequence(SequenceSettings("broken", "m"), [step_from_fields(EMAIL)])
        fine = await daemon.control.create_sequence(SequenceSettings("fine", "m"), [step_from_fields(EMAIL)])
        bad_headers.sequence_id = broken.id
        await daemon.control.enroll(broken.id, [ContactInput("sam@example.org"), ContactInput("ann@example.org")])
        await daemon.control.enroll(fine.id, [ContactInput("kim@example.org")])
        await daemon.control.transition(broken.id, Action.START)
        await daemon.control.transition(fine.id, Action.START)
        await trio.sleep(3600)
        progress = {p.email: p for p in await daemon.store.sequence_contacts(broken.id)}
        histories = [await daemon.store.contact_history(broken.id, p.contact_id) for p in progress.values()]
        sending = await daemon.store.outbox_in_state("sending")
        send_log = await daemon.store.send_history("m", 0.0)
        counters = daemon.engine.counters
        sends_today = daemon.scheduler.lanes["m"].limiter.sends_today(daemon.clock.now())
    outbox = sorted((tmp_path / "outbox" / "m" / "new").iterdir())

    assert {email: p.status for email, p in progress.items()} == {"sam@example.org": "failed",
                                                                  "ann@example.org": "failed"}
    for history in histories:
        [message] = history["messages"]  # claimed in the ledger, resolved with the reason
        assert message["status"] == "failed" and message["attempts"] == 0, message
        assert "could not be built" in message["detail"] and "extra_headers" in message["detail"], message
    assert sending == []
    # Never handed to the transport: the caps count the one send made, in the store and in memory.
    assert len(send_log) == 1 and sends_today == 1
    assert (counters.sent, counters.failed) == (1, 2)
    assert len(outbox) == 1 and b"kim@example.org" in outbox[0].read_bytes()


async def test_hard_refusals_during_smtp_pause_the_sequence_and_the_mailbox(tmp_path: Path) -> None:
    """20 hard refusals in 40 sends against a 5 % threshold: the sequence pauses with the reason,
    and so does the mailbox (2 % over its trailing window), as a DSN bounce would make them."""
    refuse = {"on": "rcpt", "match": "bad", "reply": "550 5.1.1 <bad>: user unknown"}
    with smtp_sink({"rules": [refuse]}) as sink:
        box = {"id": "alice", "address": "alice@example.com", "timezone": "UTC", "daily_cap": 1000,
               "hourly_cap": 100_000, "burst": 100, "transport": "smtp", "smtp": sink.smtp_table(timeout_seconds=5)}
        config, plugins = make_config(tmp_path, [box])
        async with running_daemon(config, plugins, dt.datetime.now(dt.timezone.utc)) as daemon:
            settings = SequenceSettings("guarded", "alice", bounce_pause_threshold=0.05)
            sequence = await daemon.control.create_sequence(settings, [step_from_fields(EMAIL)])
            contacts = [ContactInput(f"{'bad' if i % 2 else 'good'}{i}@example.org") for i in range(40)]
            await daemon.control.enroll(sequence.id, contacts)
            await daemon.control.transition(sequence.id, Action.START)

            async def paused() -> tuple[Any, str | None] | None:
                current, _ = await daemon.store.get_sequence(sequence.id)
                mailbox_reason = await daemon.store.mailbox_paused("alice")
                if current.status is SequenceStatus.PAUSED and mailbox_reason is not None:
                    return current, mailbox_reason
                return None

            current, mailbox_reason = await wait_until_async(paused, what="sequence and mailbox paused")
            suppressed = {row["email"] for row in await daemon.store.suppressions()}
    assert current.status_reason is not None and current.status_reason.startswith("auto-paused: ")
    assert "hard bounces in the last" in current.status_reason
    assert mailbox_reason is not None and "hard bounces" in mailbox_reason
    assert suppressed and all(email.startswith("bad") for email in suppressed)


class EventRecorder:
    """A real plugin: its ``dripd_event`` hook collects what the daemon hands it."""

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Any]] = []

    @hookimpl
    def dripd_event(self, event: Mapping[str, Any]) -> None:
        self.seen.append(event)


async def test_the_plugin_hook_sees_every_kind_after_commit(tmp_path: Path, autojump_clock: Any) -> None:
    recorder = EventRecorder()
    config, plugins = make_config(tmp_path, [maildir_mailbox(tmp_path, "m", timezone="UTC")],
                                  extra_plugins=(recorder,))
    async with running_daemon(config, plugins, START) as daemon:
        steps = [step_from_fields(EMAIL), step_from_fields({"type": "wait", "waitDays": 1}), step_from_fields(EMAIL)]
        sequence = await daemon.control.create_sequence(SequenceSettings("s", "m"), steps)
        await daemon.control.enroll(sequence.id, [ContactInput("ann@acme.example"), ContactInput("bo@acme.example")])
        await daemon.control.transition(sequence.id, Action.START)
        await trio.sleep(3600)
        sent = await daemon.store.sent_by_message_ids([])  # nothing by an empty list
        assert sent == []
        history = await daemon.store.contact_history(sequence.id, (await daemon.store.find_contact(
            "ann@acme.example")).id)  # type: ignore[union-attr]
        message_id = history["messages"][0]["message_id"]
        await daemon.reactions.apply(MailEvent(EventKind.REPLIED, "m", daemon.clock.now(), sender="ann@acme.example",
                                               references=(message_id,)))
        await daemon.control.pause_mailbox("m", "by hand")
        await daemon.control.resume_mailbox("m")
        await daemon.control.transition(sequence.id, Action.PAUSE)
        await trio.sleep(1)
    kinds = [event["kind"] for event in recorder.seen]
    for kind in ("enrolled", "sent", "replied", "mailbox_paused", "mailbox_resumed", "sequence_paused"):
        assert kind in kinds, (kind, kinds)
    replied = next(event for event in recorder.seen if event["kind"] == "replied")
    assert replied["mailbox_id"] == "m" and replied["sequence_id"] == sequence.id
    assert replied["data"]["sender"] == "ann@acme.example"
    assert daemon.services.events.dropped == {"plugins": 0}
