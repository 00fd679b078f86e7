"""A three-week cadence for 100 contacts on two mailboxes, run in simulated time.

email, wait 2 days, conditional (if_replied), email, wait 5 days, email; weekdays-only
windows 09:00-17:00 Europe/Berlin; 10/hour (evenly spaced) and 50/day per mailbox. The
exact send time of every message is asserted.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import trio

from dripd.hookspecs import EventKind, MailEvent
from dripd.model import Action, SequenceSettings
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.conftest import maildir_mailbox, make_config, running_daemon
from tests.integration.simulated import sleep_until

BERLIN = ZoneInfo("Europe/Berlin")
START = dt.datetime(2026, 12, 3, 8, 0, tzinfo=BERLIN)  # a Thursday, before the window opens
STEPS: list[dict[str, Any]] = [
    {"type": "email", "subject": "Hi {{firstName}}", "body": "<p>Hello {{firstName}} at {{company}}</p>"},
    {"type": "wait", "waitDays": 2},
    {"type": "conditional", "condition": "if_replied"},
    {"type": "email", "subject": "", "body": "<p>Following up, {{firstName}}</p>"},
    {"type": "wait", "waitDays": 5},
    {"type": "email", "subject": "Last note", "body": "<p>Bye {{firstName|there}}</p>"},
]


def at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


def read_maildir(path: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((path / "new").iterdir())
    ]


async def test_three_week_cadence_exact_send_times(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    config, plugins = make_config(tmp_path, [maildir_mailbox(tmp_path, "east"), maildir_mailbox(tmp_path, "west")])
    async with running_daemon(config, plugins, START) as daemon:
        control = daemon.control
        steps = [step_from_fields(s) for s in STEPS]
        # East stops a contact on reply (the default); west keeps going, so its if_replied
        # branch skips the follow-up for repliers but still sends the last note.
        east = await control.create_sequence(SequenceSettings("east", "east", "Europe/Berlin", True, 9, 17, auto_complete=True), steps)
        west = await control.create_sequence(
            SequenceSettings("west", "west", "Europe/Berlin", True, 9, 17, auto_pause_on_reply=False, auto_complete=True), steps)
        for seq, prefix in ((east, "e"), (west, "w")):
            contacts: list[ContactInput | int] = [ContactInput(f"{prefix}{i:02d}@example.org", first_name=f"N{prefix}{i}", company="Acme")
                        for i in range(50)]
            await control.enroll(seq.id, contacts)
            await control.transition(seq.id, Action.START)

        # Thursday: 50 first emails per mailbox, 6 minutes apart from 09:00 (10/hour, burst 1).
        await sleep_until(daemon, at(3, 15, 0))
        # Contacts 0..4 of each sequence reply to the first email before the weekend.
        for prefix, mailbox in (("e", "east"), ("w", "west")):
            for i in range(5):
                contact = await daemon.store.find_contact(f"{prefix}{i:02d}@example.org")
                assert contact is not None
                thread = await daemon.store.message_ids_for_contact(contact.id)
                await daemon.reactions.apply(MailEvent(
                    EventKind.REPLIED, mailbox, daemon.clock.now(), sender=contact.email, references=(thread[0],)))
        # Run to the end of the cadence: 2026-12-14 is the last send day.
        await sleep_until(daemon, at(15, 0, 0))
        east_contacts = await daemon.store.sequence_contacts(east.id)
        west_contacts = await daemon.store.sequence_contacts(west.id)
        east_after = (await daemon.store.get_sequence(east.id))[0]
        west_after = (await daemon.store.get_sequence(west.id))[0]

    sent: dict[str, list[tuple[dt.datetime, str]]] = {}
    for box in ("east", "west"):
        for msg in read_maildir(tmp_path / "outbox" / box):
            when = email.utils.parsedate_to_datetime(msg["Date"]).astimezone(BERLIN)
            sent.setdefault(str(msg["To"]).split("<")[-1].rstrip(">"), []).append((when, str(msg["Subject"])))

    for prefix in ("e", "w"):
        for i in range(50):
            address = f"{prefix}{i:02d}@example.org"
            first = (at(3, 9, 0) + dt.timedelta(minutes=6 * i), f"Hi N{prefix}{i}")
            # Contacts 0..4 replied; the other 45 keep their order, so on the Mondays contact i
            # takes slot i - 5 of the 6-minute spacing.
            later = dt.timedelta(minutes=6 * (i - 5))
            if i < 5 and prefix == "e":
                expected = [first]  # stopped by the reply
            elif i < 5:
                # if_replied on Saturday skipped the follow-up; the 5-day wait counts from the
                # conditional (Saturday), so the last note goes on Thursday 10 December.
                expected = [first, (at(10, 9, 0) + dt.timedelta(minutes=6 * i), "Last note")]
            else:
                # Thursday + 2 days is Saturday: rolled to Monday 09:00 and spaced by the throttle;
                # Monday + 5 days is Saturday again: the last note goes on Monday 14 December.
                expected = [first, (at(7, 9, 0) + later, f"Re: Hi N{prefix}{i}"), (at(14, 9, 0) + later, "Last note")]
            assert sorted(sent[address]) == expected, address

    statuses_east = sorted(c.status for c in east_contacts)
    assert statuses_east == ["completed"] * 45 + ["replied"] * 5
    assert [c.status for c in west_contacts] == ["completed"] * 50
    assert east_after.status.value == "completed" and west_after.status.value == "completed"
