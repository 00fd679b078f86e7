"""The ``[mailboxes.imap]`` table. It lives in ``dripd_mailconn`` because the SMTP transport reads
it too (the Sent folder); it is named here as the detector's own table."""

from __future__ import annotations

from dripd_mailconn.config import IDLE_LIMIT_SECONDS, ImapConfig

__all__ = ["IDLE_LIMIT_SECONDS", "ImapConfig"]
