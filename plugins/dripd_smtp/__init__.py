"""Built-in SMTP transport plugin for dripd (aiosmtplib over the trio-asyncio bridge)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from dripd.hookspecs import AddressCheck, PluginContext, hookimpl
from dripd_smtp.config import SmtpConfig

NAME = "smtp"


def _create(mailbox: Any, section: BaseModel | None, context: PluginContext) -> Any:
    from dripd_imap.config import ImapConfig
    from dripd_smtp.sent import SentFolder
    from dripd_smtp.transport import SmtpTransport

    assert isinstance(section, SmtpConfig)
    imap_table = mailbox.plugin_section("imap")
    # The same mailbox's IMAP table says where the Sent folder is (copies, crash recovery).
    sent = SentFolder(mailbox.id, ImapConfig.model_validate(imap_table), context) if imap_table else None
    return SmtpTransport(mailbox, section, context, sent)


async def _verify(address: str, probe: bool, mail_from: str) -> list[AddressCheck]:
    from dripd_smtp.verify import verify

    result = await verify(address, probe=probe, mail_from=mail_from)
    return [AddressCheck(check.name, check.ok, check.detail) for check in result.checks]


@hookimpl
def dripd_register(registry: Any) -> None:
    registry.add_transport(NAME, _create, SmtpConfig)
    registry.add_verifier(_verify)
