"""Built-in IMAP detector plugin for dripd: watches a mailbox for replies, bounces and auto-replies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dripd.hookspecs import MailboxSettings, PluginContext, Registry, hookimpl
from dripd_imap.config import ImapConfig

if TYPE_CHECKING:
    from dripd_imap.detector import ImapDetector

NAME = "imap"


def _create(mailbox: MailboxSettings, section: ImapConfig, context: PluginContext) -> ImapDetector:
    # Imported here: loading the plugin (config checks, reference docs) must not pull in aioimaplib.
    from dripd_imap.detector import ImapDetector

    return ImapDetector(mailbox, section, context)


@hookimpl
def dripd_register(registry: Registry) -> None:
    registry.add_detector(NAME, _create, ImapConfig)
