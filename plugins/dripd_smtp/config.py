"""The ``[mailboxes.smtp]`` table (the keys are the issue's contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dripd_mailconn.config import ServerConfig


class SmtpConfig(ServerConfig):
    """The SMTP transport: submission to a real server. Secrets come from files, the environment or
    an OAuth2 token source, never inline. With an `[mailboxes.imap]` table beside it, the Sent folder
    there is where copies go and where crash recovery looks."""

    port: int = Field(default=587, gt=0, le=65535, description="Server port (587 submission, 465 implicit TLS).")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="`starttls` upgrades the connection, `tls` is TLS from the start, `none` is plain.")
    connections: int = Field(default=1, gt=0, le=100,  # kept open and reused between sends
                             description="Connections kept open and reused between sends; also the mailbox's sends in "
                                         "flight unless its `concurrency` says fewer.")
    local_hostname: str | None = Field(  # the EHLO name; the machine's FQDN by default
        default=None, description="The EHLO name; the machine's FQDN by default.")

    @property
    def parallel_sends(self) -> int:
        """One send per open connection: the mailbox's default sends in flight (dripd.parallelism)."""
        return self.connections
