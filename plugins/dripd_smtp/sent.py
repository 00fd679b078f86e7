"""The mailbox's IMAP Sent folder, as the SMTP transport uses it: APPEND a copy of each sent
message (``save_sent_copy``) and, after a crash, look a Message-ID up there."""

from __future__ import annotations

import logging

import trio

from dripd.hookspecs import OutgoingMessage, PluginContext
from dripd_mailconn.config import ImapConfig
from dripd_mailconn.credentials import Credentials
from dripd_mailconn.session import NETWORK_FAULTS, ImapSession

log = logging.getLogger("dripd.smtp")


class SentFolder:
    def __init__(self, mailbox_id: str, config: ImapConfig, context: PluginContext) -> None:
        self.mailbox_id = mailbox_id
        self.config = config
        self.credentials = Credentials(config, context.now)
        self.save_copies = config.save_sent_copy
        self._session: ImapSession | None = None
        self._lock = trio.Lock()

    async def _open(self) -> ImapSession:
        if self._session is None or self._session.lost:
            if self._session is not None:
                await self._session.close()
            self._session = await ImapSession.open(self.config, self.credentials)
        return self._session

    async def _drop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def append(self, message: OutgoingMessage) -> bool:
        """Save a copy; a failure is logged, never turned into a failed send (it went out)."""
        async with self._lock:
            for attempt in (1, 2):  # a cached connection may have been closed by the server
                try:
                    await (await self._open()).append(self.config.sent_folder, message.data)
                    return True
                except NETWORK_FAULTS as exc:
                    await self._drop()
                    if attempt == 2:
                        log.warning("mailbox %s: could not save %s to %s: %s", self.mailbox_id,
                                    message.message_id, self.config.sent_folder, exc)
        return False

    async def contains(self, message_id: str) -> bool | None:
        """True if the Sent folder holds this Message-ID, False if not, None if it cannot tell."""
        async with self._lock:
            try:
                return await (await self._open()).contains_message_id(self.config.sent_folder, message_id)
            except NETWORK_FAULTS as exc:
                await self._drop()
                log.warning("mailbox %s: cannot search %s for %s: %s", self.mailbox_id, self.config.sent_folder,
                            message_id, exc)
                return None

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()
