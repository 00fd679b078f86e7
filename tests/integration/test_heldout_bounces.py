"""Bounces from servers not in the shared corpus, the whole way in: each held-out sample
(tests/heldout_bounces/) is sent over SMTP to the sink process, what the sink received is
delivered into Dovecot (doveadm save, as the MDA would), and the IMAP detector's events say what
dripd made of it. Prints the hit rates; no bounce may come out as a reply."""

from __future__ import annotations

import collections
import smtplib
import subprocess

import trio
import trio_asyncio

from dripd.hookspecs import EventKind
from tests.integration.plugin_harness import watching
from tests.integration.servers import Dovecot, SmtpSink
from tests.unit.test_classify_heldout import samples

SENTINEL = (b"From: Bob <bob@example.org>\r\nTo: {user}\r\nSubject: Re: Hi\r\nMessage-ID: <sentinel@example.org>\r\n"
            b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nThe last one.\r\n")


def _send(sink: SmtpSink, user: str, messages: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
        for raw in messages:
            # On the wire every line ends in CRLF (the files keep LF, like the shared corpus).
            wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            smtp.sendmail("", [user], wire)  # null reverse-path, as a mail system sends a notice


def _move_all(imap_server: Dovecot, user: str) -> None:
    subprocess.run(["doveadm", "-c", str(imap_server.conf), "move", "-u", user, "INBOX", "mailbox", "Staging", "all"],
                   check=True, capture_output=True, timeout=30)


def _outcome(kind: EventKind, bounce_class: str | None) -> str:
    if kind is EventKind.BOUNCED:
        return bounce_class or "bounce"
    return {EventKind.COMPLAINED: "complaint", EventKind.REPLIED: "reply"}.get(kind, "other")


async def test_heldout_bounces_through_smtp_dovecot_and_the_detector(imap_server: Dovecot, sink: SmtpSink) -> None:
    files = samples()
    user = imap_server.new_user("heldout")
    await trio.to_thread.run_sync(_send, sink, user, [p.read_bytes() for p in files])
    received = sink.messages()
    assert len(received) == len(files), "the SMTP server did not take every sample"
    # Everything goes into a side folder first, then moves into INBOX in one step while the
    # detector watches: it sees them as new mail in one batch (one IDLE wake, not 62).
    subprocess.run(["doveadm", "-c", str(imap_server.conf), "mailbox", "create", "-u", user, "Staging"],
                   check=True, capture_output=True, timeout=30)
    for raw in received:
        await trio.to_thread.run_sync(imap_server.deliver, user, raw, "Staging")
    imap_server.deliver(user, SENTINEL.replace(b"{user}", user.encode()), "Staging")
    async with trio_asyncio.open_loop(), watching(imap_server.imap_table(user, idle_seconds=600)) as watch:
        await trio.to_thread.run_sync(_move_all, imap_server, user)
        events = await watch.wait_for(len(files) + 1, timeout=60)
    assert events[-1].kind is EventKind.REPLIED and events[-1].sender == "bob@example.org"
    hits: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    wrong, as_replies = [], []
    for path, event in zip(files, events):
        expected, got = path.parent.name, _outcome(event.kind, event.bounce_class)
        totals[expected] += 1
        ok = got == expected if expected != "not-bounce" else got not in ("hard", "soft", "complaint")
        hits[expected] += ok
        if not ok:
            wrong.append(f"{path.name}: {got}")
        if expected != "not-bounce" and got == "reply":
            as_replies.append(path.name)
        if ok and expected in ("hard", "soft", "complaint"):
            assert event.recipients, path.name  # the contact to stop is named
    print("\nheld-out through SMTP -> Dovecot -> detector: "
          + ", ".join(f"{k} {hits[k]}/{totals[k]}" for k in ("hard", "soft", "complaint", "not-bounce")))
    assert not as_replies, f"bounces taken for replies: {as_replies}"
    assert hits["hard"] / totals["hard"] >= 0.98 and hits["soft"] / totals["soft"] >= 0.97, wrong
    assert hits["not-bounce"] == totals["not-bounce"], wrong
