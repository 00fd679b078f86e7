"""The ``[mailboxes.imap]`` table (the keys are the issue's contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dripd_smtp.credentials import ServerConfig

# Servers drop an IDLE after 30 minutes (RFC 2177 asks clients to re-issue it within 29).
IDLE_LIMIT_SECONDS = 29 * 60


class ImapConfig(ServerConfig):
    """The IMAP detector: watches the mailbox for replies, bounces, auto-replies and complaints
    (IDLE where the server has it, polling otherwise)."""

    port: int = Field(default=993, gt=0, le=65535, description="Server port (993 implicit TLS, 143 STARTTLS).")
    security: Literal["starttls", "tls", "none"] = Field(
        default="tls", description="`tls` is TLS from the start, `starttls` upgrades the connection, `none` is plain.")
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1,
                               description="Folders watched for replies, bounces and auto-replies.",
                               json_schema_extra={"rule": "folder names non-empty and distinct"})
    sent_folder: str = Field(default="Sent",  # where copies go and where crash recovery looks
                             description="Where sent copies go and where crash recovery looks.")
    save_sent_copy: bool = Field(default=False,  # APPEND each sent message (custom SMTP servers need it)
                                 description="APPEND each sent message to `sent_folder` (custom SMTP servers need it).")
    idle_seconds: float = Field(default=25 * 60, gt=0, le=IDLE_LIMIT_SECONDS,  # re-issue IDLE this often
                                description="Re-issue IDLE this often (servers drop an IDLE after 30 minutes).")
    poll_seconds: float = Field(default=60.0, gt=0,  # when the server has no IDLE
                                description="Poll interval when the server has no IDLE.")
    max_backoff_seconds: float = Field(default=300.0, gt=0,
                                       description="Longest wait between reconnection attempts after a failure.")

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value) or any(not f.strip() for f in value):
            raise ValueError("folder names must be non-empty and distinct")
        return value
