"""Where a mailbox's secret comes from: a password file or environment variable (never inline
in the config), or an OAuth2 access token for XOAUTH2 (a token command, or the refresh-token
flow against a token endpoint). Shared by the SMTP transport and the IMAP detector.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Literal

import httpx
import trio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dripd.clock import offloaded

log = logging.getLogger("dripd.credentials")

TOKEN_COMMAND_CACHE_SECONDS = 300.0  # a token command's output carries no lifetime: ask again after this
TOKEN_EARLY_REFRESH_SECONDS = 60.0


class CredentialsError(Exception):
    """The secret could not be obtained (missing file, unset variable, token endpoint refused)."""


class ServerConfig(BaseModel):
    """Keys common to an SMTP or IMAP server table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, description="Server host name.")
    port: int = Field(gt=0, le=65535, description="Server port.")
    security: Literal["starttls", "tls", "none"] = Field(description="How the connection is secured.")
    username: str | None = Field(
        default=None, description="Login name; without it no login is attempted.",
        json_schema_extra={"rule": "with `auth = \"password\"`, needs `password_file` or `password_env`"})
    password_file: Path | None = Field(
        default=None, description="File holding the password (e.g. `$CREDENTIALS_DIRECTORY/...`); never inline.",
        json_schema_extra={"rule": "not together with `password_env`"})
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")
    auth: Literal["password", "xoauth2"] = Field(
        default="password", description="`password` (LOGIN/PLAIN) or `xoauth2` (an OAuth2 access token).",
        json_schema_extra={"rule": "`xoauth2` needs `username`, and `token_command` or `token_endpoint` + "
                                   "`client_id` + `refresh_token_file`"})
    token_command: list[str] | None = Field(
        default=None, description="XOAUTH2: a command (argv list) that prints an access token; asked again after 5 minutes.")
    token_endpoint: str | None = Field(
        default=None, description="XOAUTH2: the provider's token endpoint for the refresh-token flow.")
    client_id: str | None = Field(default=None, description="XOAUTH2: the OAuth2 client id.")
    client_secret_file: Path | None = Field(
        default=None, description="XOAUTH2: file holding the client secret, if the provider wants one.")
    refresh_token_file: Path | None = Field(default=None, description="XOAUTH2: file holding the refresh token.")
    ca_file: Path | None = Field(  # trust this CA (a private or test server) instead of the system's
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


async def _read_secret_file(path: Path) -> str:
    try:
        with offloaded:
            text = await trio.Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    return text.strip()


class Credentials:
    """Produces the secret for one server table each time a connection logs in."""

    def __init__(self, config: ServerConfig, now: Callable[[], float]) -> None:
        self.config = config
        self._now = now
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = trio.Lock()

    @property
    def needed(self) -> bool:
        return bool(self.config.username)

    async def password(self) -> str:
        config = self.config
        if config.password_file is not None:
            return await _read_secret_file(config.password_file)
        if config.password_env is not None:
            value = os.environ.get(config.password_env)
            if value is None:
                raise CredentialsError(f"environment variable {config.password_env} is not set")
            return value
        raise CredentialsError("no password source configured")

    def invalidate(self) -> None:
        """Forget a cached token (the server refused it)."""
        self._token = None

    async def access_token(self) -> str:
        async with self._lock:
            if self._token is not None and self._now() < self._token_expires:
                return self._token
            if self.config.token_command is not None:
                token, lifetime = await self._from_command(self.config.token_command), TOKEN_COMMAND_CACHE_SECONDS
            else:
                token, lifetime = await self._refresh()
            self._token = token
            self._token_expires = self._now() + max(0.0, lifetime - TOKEN_EARLY_REFRESH_SECONDS)
            return token

    async def _from_command(self, command: list[str]) -> str:
        try:
            with trio.fail_after(self.config.timeout_seconds):
                done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
        except (OSError, trio.TooSlowError) as exc:
            raise CredentialsError(f"token command {command[0]!r} failed: {exc}") from None
        if done.returncode != 0:
            raise CredentialsError(f"token command {command[0]!r} exited with status {done.returncode}")
        token = done.stdout.decode("utf-8", "replace").strip()
        if not token:
            raise CredentialsError(f"token command {command[0]!r} printed no token")
        return token

    async def _refresh(self) -> tuple[str, float]:
        config = self.config
        assert config.token_endpoint and config.client_id and config.refresh_token_file
        form = {
            "grant_type": "refresh_token",
            "refresh_token": await _read_secret_file(config.refresh_token_file),
            "client_id": config.client_id,
        }
        if config.client_secret_file is not None:
            form["client_secret"] = await _read_secret_file(config.client_secret_file)
        try:
            async with httpx.AsyncClient(timeout=config.timeout_seconds) as client:
                response = await client.post(config.token_endpoint, data=form)
        except httpx.HTTPError as exc:
            raise CredentialsError(f"token endpoint unreachable: {type(exc).__name__}") from None
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            # The provider's error code says why (invalid_grant: the refresh token was revoked).
            reason = body.get("error", "") if isinstance(body, dict) else ""
            raise CredentialsError(f"token endpoint refused the refresh: HTTP {response.status_code} {reason}".strip())
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return str(body["access_token"]), lifetime
