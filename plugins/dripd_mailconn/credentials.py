"""Where a mailbox's secret comes from: a password file or environment variable (never inline
in the config), or an OAuth2 access token for XOAUTH2 (a token command, or the refresh-token
flow against a token endpoint). Shared by the SMTP transport and the IMAP detector.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

import httpx
import trio

from dripd.clock import offloaded
from dripd.errors import TransportError
from dripd_mailconn.config import ServerConfig

log = logging.getLogger("dripd.credentials")

TOKEN_COMMAND_CACHE_SECONDS = 300.0  # a token command's output carries no lifetime: ask again after this
TOKEN_EARLY_REFRESH_SECONDS = 60.0


class CredentialsError(TransportError):
    """The secret could not be obtained (missing file, unset variable, token endpoint refused).

    A ``TransportError``: when one escapes a plugin, the core already knows what it is."""

    code = "credentials_unavailable"


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
