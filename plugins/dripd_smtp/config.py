"""The ``[mailboxes.smtp]`` table (the keys are the issue's contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dripd_smtp.credentials import ServerConfig


class SmtpConfig(ServerConfig):
    port: int = Field(default=587, gt=0, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    connections: int = Field(default=1, gt=0, le=100)  # kept open and reused between sends
    local_hostname: str | None = None  # the EHLO name; the machine's FQDN by default
