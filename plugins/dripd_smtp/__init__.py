"""Built-in SMTP transport plugin for dripd (aiosmtplib on its own asyncio loop thread, see ``transport``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dripd.hookspecs import AddressCheck, MailboxSettings, PluginContext, Registry, hookimpl
from dripd_smtp.config import SmtpConfig

if TYPE_CHECKING:
    from dripd_smtp.transport import SmtpTransport

NAME = "smtp"


def _create(mailbox: MailboxSettings, section: SmtpConfig, context: PluginContext) -> SmtpTransport:
    # Imported here: loading the plugin (config checks, reference docs) must not pull in aiosmtplib.
    from dripd_mailconn.config import ImapConfig
    from dripd_smtp.sent import SentFolder
    from dripd_smtp.transport import SmtpTransport

    imap_table = mailbox.table("imap")
    # The same mailbox's IMAP table says where the Sent folder is (copies, crash recovery).
    sent = SentFolder(mailbox.id, ImapConfig.model_validate(imap_table), context) if imap_table else None
    return SmtpTransport(mailbox, section, context, sent)


async def _verify(address: str, probe: bool, mail_from: str) -> list[AddressCheck]:
    from dripd_smtp.verify import verify

    result = await verify(address, probe=probe, mail_from=mail_from)
    return [AddressCheck(check.name, check.ok, check.detail) for check in result.checks]


@hookimpl
def dripd_register(registry: Registry) -> None:
    registry.add_transport(NAME, _create, SmtpConfig)
    registry.add_verifier(_verify)
