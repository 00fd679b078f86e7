"""The full loop in-process, real servers, real clock: dripd sends step 1 over SMTP to the sink,
the test delivers the answer into Dovecot, the IMAP detector sees it and the engine reacts."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
import trio

from dripd.daemon import Daemon
from dripd.model import Action, SequenceSettings
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.conftest import make_config, running_daemon
from tests.integration.mail_samples import dsn, out_of_office, reply
from tests.integration.servers import Dovecot, SmtpSink, smtp_sink
from tests.integration.store_reader import opened_store
from tests.integration.waiting import wait_until_async

CONTACT = "bob@example.org"


def mailbox(user: str, imap: Dovecot, sink: SmtpSink, **imap_overrides: Any) -> dict[str, Any]:
    return {
        "id": "alice", "address": user, "name": "Alice", "timezone": "UTC",
        "daily_cap": 1000, "hourly_cap": 1000, "burst": 10,
        "transport": "smtp", "smtp": sink.smtp_table(),
        "imap": imap.imap_table(user, **imap_overrides),
    }


async def detector_ready(daemon: Daemon) -> None:
    async def ready() -> bool:
        return await daemon.store.plugin_state_get("imap:alice:INBOX:uidvalidity") is not None
    await wait_until_async(ready, what="the detector's first look at INBOX")


async def start_sequence(daemon: Daemon, wait_seconds: float, **settings: Any) -> int:
    steps = [step_from_fields(s) for s in (
        {"type": "email", "subject": "Hi {{firstName}}", "body": "<p>Hello {{firstName}}</p>"},
        {"type": "wait", "delayMs": int(wait_seconds * 1000)},
        {"type": "email", "subject": "", "body": "<p>Following up</p>"},
    )]
    sequence = await daemon.control.create_sequence(SequenceSettings("loop", "alice", **settings), steps)
    await daemon.control.enroll(sequence.id, [ContactInput(CONTACT, first_name="Bob")])
    await daemon.control.transition(sequence.id, Action.START)
    return sequence.id


async def first_message_id(sink: SmtpSink) -> str:
    async def sent() -> bool:
        return len(sink.messages()) >= 1
    await wait_until_async(sent, what="step 1 at the sink")
    return str(email.message_from_bytes(sink.messages()[0], policy=email.policy.default)["Message-ID"])


async def status(daemon: Daemon, sequence_id: int) -> str:
    return str((await daemon.store.sequence_contacts(sequence_id))[0].status)


async def outbox_of(database: Path, sequence_id: int, contact_id: int) -> list[tuple[str, str]]:
    """(Message-ID, status) of each outbox row of the contact, read after the daemon stopped."""
    async with opened_store(database) as store:
        history = await store.contact_history(sequence_id, contact_id)
    return [(m["message_id"], m["status"]) for m in history["messages"]]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def test_a_reply_stops_the_contact_before_its_next_step(tmp_path: Path, imap_server: Dovecot,
                                                              sink: SmtpSink) -> None:
    # How fast a reply is seen is a benchmark's figure (bench/bench_reply.py); here step 2 waits
    # a minute so the reply is applied first however loaded the machine is.
    user = imap_server.new_user("alice")
    config, plugins = make_config(tmp_path, [mailbox(user, imap_server, sink)])
    async with running_daemon(config, plugins, now()) as daemon:
        await detector_ready(daemon)
        sequence_id = await start_sequence(daemon, wait_seconds=60)
        message_id = await first_message_id(sink)
        imap_server.deliver(user, reply(user, CONTACT, message_id))

        async def replied() -> bool:
            return await status(daemon, sequence_id) == "replied"
        await wait_until_async(replied, what="the reply applied")
        progress = (await daemon.store.sequence_contacts(sequence_id))[0]
    assert progress.next_run_at is None  # step 2 is no longer scheduled: it can never go
    assert len(sink.messages()) == 1


async def test_an_out_of_office_does_not_stop_the_contact(tmp_path: Path, imap_server: Dovecot, sink: SmtpSink) -> None:
    user = imap_server.new_user("alice")
    config, plugins = make_config(tmp_path, [mailbox(user, imap_server, sink)])
    async with running_daemon(config, plugins, now()) as daemon:
        await detector_ready(daemon)
        sequence_id = await start_sequence(daemon, wait_seconds=1.5)
        message_id = await first_message_id(sink)
        imap_server.deliver(user, out_of_office(user, CONTACT, message_id))

        async def both_sent() -> bool:
            return len(sink.messages()) == 2
        await wait_until_async(both_sent, what="step 2 at the sink")
        contacts = await daemon.store.sequence_contacts(sequence_id)
        history = await daemon.store.contact_history(sequence_id, contacts[0].contact_id)
    assert contacts[0].status in ("active", "completed")  # not stopped: step 2 went out
    # And the auto-reply was seen, not missed.
    kinds = [e["kind"] for e in history["events"] if e["enrollment_id"] == contacts[0].enrollment_id]
    assert "auto_replied" in kinds and "replied" not in kinds


async def test_a_dsn_bounce_bounces_and_suppresses(tmp_path: Path, imap_server: Dovecot, sink: SmtpSink) -> None:
    user = imap_server.new_user("alice")
    config, plugins = make_config(tmp_path, [mailbox(user, imap_server, sink)])
    async with running_daemon(config, plugins, now()) as daemon:
        await detector_ready(daemon)
        sequence_id = await start_sequence(daemon, wait_seconds=2.5)
        message_id = await first_message_id(sink)
        imap_server.deliver(user, dsn(user, CONTACT, message_id))

        async def bounced() -> bool:
            return await status(daemon, sequence_id) == "bounced"
        await wait_until_async(bounced, what="the DSN applied")
        suppressed = {row["email"] for row in await daemon.store.suppressions()}
    assert CONTACT in suppressed
    assert len(sink.messages()) == 1


async def test_a_reply_while_stopped_is_caught_up_after_restart(tmp_path: Path, imap_server: Dovecot,
                                                                sink: SmtpSink) -> None:
    user = imap_server.new_user("alice")
    config, plugins = make_config(tmp_path, [mailbox(user, imap_server, sink)])
    async with running_daemon(config, plugins, now()) as daemon:
        await detector_ready(daemon)
        sequence_id = await start_sequence(daemon, wait_seconds=8)
        message_id = await first_message_id(sink)
    imap_server.deliver(user, reply(user, CONTACT, message_id))  # dripd is stopped
    async with running_daemon(config, plugins, now()) as daemon:
        async def replied() -> bool:
            return await status(daemon, sequence_id) == "replied"
        await wait_until_async(replied, what="the reply caught up")
    assert len(sink.messages()) == 1


@pytest.mark.parametrize("in_sent_folder", [True, False])
async def test_crash_recovery_looks_in_the_sent_folder(tmp_path: Path, imap_server: Dovecot,
                                                       in_sent_folder: bool) -> None:
    """A send cut off after the final dot (dripd stopped mid-send) is left 'sending'; at start-up
    the Message-ID is searched in the IMAP Sent folder: found -> sent, not found -> uncertain."""
    user = imap_server.new_user("alice")
    with smtp_sink({"rules": [{"on": "dot", "action": "stall", "times": 1}]}) as sink:
        box = mailbox(user, imap_server, sink)
        box["smtp"] = sink.smtp_table(timeout_seconds=30)
        config, plugins = make_config(tmp_path, [box], shutdown_grace_seconds=0.2)
        async with running_daemon(config, plugins, now()) as daemon:
            sequence_id = await start_sequence(daemon, wait_seconds=60)

            async def stalled() -> bool:
                return sink.count("dot") == 1
            await wait_until_async(stalled, what="the final dot at the sink")
            contact_id = (await daemon.store.sequence_contacts(sequence_id))[0].contact_id
        (message_id, state), = await outbox_of(config.daemon.database, sequence_id, contact_id)
        assert state == "sending"
        if in_sent_folder:  # the provider filed the message it did deliver
            imap_server.deliver(user, f"From: {user}\r\nTo: {CONTACT}\r\nSubject: Hi Bob\r\n"
                                      f"Message-ID: {message_id}\r\n\r\nHello Bob\r\n".encode(), folder="Sent")
        async with running_daemon(config, plugins, now()) as daemon:
            assert daemon.uncertain_at_start == (0 if in_sent_folder else 1)
            progress = (await daemon.store.sequence_contacts(sequence_id))[0]
            await trio.sleep(0.5)
        (_, state), = await outbox_of(config.daemon.database, sequence_id, contact_id)
        assert state == ("sent" if in_sent_folder else "uncertain")
        assert progress.status == "active"  # step 2 waits its turn either way
        assert sink.count("dot") == 1  # never resent
