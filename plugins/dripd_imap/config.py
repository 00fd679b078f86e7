"""The ``[mailboxes.imap]`` table (the keys are the issue's contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dripd_smtp.credentials import ServerConfig

# Servers drop an IDLE after 30 minutes (RFC 2177 asks clients to re-issue it within 29).
IDLE_LIMIT_SECONDS = 29 * 60


class ImapConfig(ServerConfig):
    port: int = Field(default=993, gt=0, le=65535)
    security: Literal["starttls", "tls", "none"] = "tls"
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    sent_folder: str = "Sent"  # where copies go and where crash recovery looks
    save_sent_copy: bool = False  # APPEND each sent message (custom SMTP servers need it)
    idle_seconds: float = Field(default=25 * 60, gt=0, le=IDLE_LIMIT_SECONDS)  # re-issue IDLE this often
    poll_seconds: float = Field(default=60.0, gt=0)  # when the server has no IDLE
    max_backoff_seconds: float = Field(default=300.0, gt=0)

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value) or any(not f.strip() for f in value):
            raise ValueError("folder names must be non-empty and distinct")
        return value
