"""The server tables both mail plugins read: the keys common to an SMTP or IMAP server, and the
``[mailboxes.imap]`` table itself (the IMAP detector watches it; the SMTP transport finds the Sent
folder there). The keys are the issue's contract."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dripd.config import ConfigPath
from dripd.config_files import readable_file_problem


class ServerConfig(BaseModel):
    """Keys common to an SMTP or IMAP server table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, description="Server host name.")
    port: int = Field(gt=0, le=65535, description="Server port.")
    security: Literal["starttls", "tls", "none"] = Field(description="How the connection is secured.")
    username: str | None = Field(
        default=None, description="Login name; without it no login is attempted.",
        json_schema_extra={"rule": "with `auth = \"password\"`, needs `password_file` or `password_env`"})
    password_file: ConfigPath | None = Field(
        default=None, description="File holding the password (e.g. `$CREDENTIALS_DIRECTORY/...`); never inline.",
        json_schema_extra={"rule": "a readable, non-empty file (checked at start); not together with `password_env`"})
    password_env: str | None = Field(default=None, description="Environment variable holding the password.",
                                     json_schema_extra={"rule": "set and non-empty at start"})
    auth: Literal["password", "xoauth2"] = Field(
        default="password", description="`password` (LOGIN/PLAIN) or `xoauth2` (an OAuth2 access token).",
        json_schema_extra={"rule": "`xoauth2` needs `username`, and `token_command` or `token_endpoint` + "
                                   "`client_id` + `refresh_token_file`"})
    token_command: list[str] | None = Field(
        default=None, description="XOAUTH2: a command (argv list) that prints an access token; asked again after 5 minutes.")
    token_endpoint: str | None = Field(
        default=None, description="XOAUTH2: the provider's token endpoint for the refresh-token flow.")
    client_id: str | None = Field(default=None, description="XOAUTH2: the OAuth2 client id.")
    client_secret_file: ConfigPath | None = Field(
        default=None, description="XOAUTH2: file holding the client secret, if the provider wants one.")
    refresh_token_file: ConfigPath | None = Field(default=None, description="XOAUTH2: file holding the refresh token.")
    ca_file: ConfigPath | None = Field(  # trust this CA (a private or test server) instead of the system's
        default=None, description="Trust this CA (a private or test server) instead of the system's.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Network timeout of each server operation.")

    @model_validator(mode="after")
    def _secret_source(self) -> "ServerConfig":
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        if self.auth == "xoauth2":
            if not self.username:
                raise ValueError("auth = \"xoauth2\" needs username")
            refresh = (self.token_endpoint, self.client_id, self.refresh_token_file)
            if self.token_command is None and not all(v is not None for v in refresh):
                raise ValueError("auth = \"xoauth2\" needs token_command, or token_endpoint, client_id and "
                                 "refresh_token_file (client_secret_file if the provider wants one)")
        elif self.username and self.password_file is None and self.password_env is None:
            raise ValueError("username needs password_file or password_env (passwords are never inline)")
        return self

    def unusable_files(self) -> list[tuple[str, str]]:
        """Secret and CA files that cannot be read, and a password variable that is not set:
        found at --check-config and start, not at the first send (which would pause the mailbox)."""
        out: list[tuple[str, str]] = []
        for key in ("password_file", "client_secret_file", "refresh_token_file", "ca_file"):
            path = getattr(self, key)
            problem = readable_file_problem(path, secret=key != "ca_file") if path is not None else None
            if problem:
                out.append((key, problem))
        if self.password_env is not None and not os.environ.get(self.password_env):
            out.append(("password_env", f"the environment variable {self.password_env} is not set"))
        return out


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
