"""A bounce of each new shape stops the contact in the full loop: dripd sends step 1 over SMTP,
the held-out sample (re-addressed to the real mailbox, contact and Message-ID) is delivered into
Dovecot, the IMAP detector classifies it and the engine bounces and suppresses the contact."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripd_imap.classify import classify
from tests.conftest import make_config, running_daemon
from tests.integration.servers import Dovecot, SmtpSink
from tests.integration.test_mail_loop import CONTACT, detector_ready, first_message_id, mailbox, now, start_sequence, status
from tests.integration.waiting import wait_until_async
from tests.unit.test_classify_heldout import HELDOUT

SAMPLE_SENDER = b"alice@sender.example"


def readdressed(sample: Path, user: str, message_id: str) -> bytes:
    """The sample as if it answered what dripd just sent: our address, our contact, our Message-ID."""
    raw = sample.read_bytes()
    found = classify(raw)
    assert found.failed_recipients and found.original_message_id, found
    raw = raw.replace(found.original_message_id.strip("<>").encode(), message_id.strip("<>").encode())
    return raw.replace(found.failed_recipients[0].encode(), CONTACT.encode()).replace(SAMPLE_SENDER, user.encode())


@pytest.mark.parametrize("sample", ["hard/json-ses-bounce-permanent.eml", "hard/jp-iso2022-unknown-user.eml",
                                    "hard/text-telco.eml"])
async def test_a_new_shape_of_hard_bounce_stops_and_suppresses(sample: str, tmp_path: Path, imap_server: Dovecot,
                                                                sink: SmtpSink) -> None:
    user = imap_server.new_user("alice")
    config, plugins = make_config(tmp_path, [mailbox(user, imap_server, sink)])
    async with running_daemon(config, plugins, now()) as daemon:
        await detector_ready(daemon)
        sequence_id = await start_sequence(daemon, wait_seconds=60)
        message_id = await first_message_id(sink)
        imap_server.deliver(user, readdressed(HELDOUT / sample, user, message_id))

        async def bounced() -> bool:
            return await status(daemon, sequence_id) == "bounced"
        await wait_until_async(bounced, what=f"the bounce in {sample} applied")
        suppressed = {row["email"] for row in await daemon.store.suppressions()}
    assert CONTACT in suppressed
    assert len(sink.messages()) == 1
