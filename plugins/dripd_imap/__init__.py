"""Built-in IMAP detector plugin for dripd: watches a mailbox for replies, bounces and auto-replies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from dripd.hookspecs import PluginContext, hookimpl
from dripd_imap.config import ImapConfig

NAME = "imap"


def _create(mailbox: Any, section: BaseModel | None, context: PluginContext) -> Any:
    from dripd_imap.detector import ImapDetector

    assert isinstance(section, ImapConfig)
    return ImapDetector(mailbox, section, context)


@hookimpl
def dripd_register(registry: Any) -> None:
    registry.add_detector(NAME, _create, ImapConfig)
