"""Bearer tokens for the TCP listener (the Unix socket is trusted by its file mode).

Only sha256 digests are kept; a presented token is hashed and compared with every accepted
digest in constant time, so neither a timing difference nor a log line can leak a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Callable

from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

from dripd.api.errors import Unauthorized, error_body, status_of
from dripd.config import ApiConfig

log = logging.getLogger("dripd.api")

# Answered before the request reaches FastAPI, so its exception handlers never see it.
_UNAUTHORIZED = error_body(Unauthorized("a valid Bearer token is required"))
_UNAUTHORIZED_STATUS = status_of(Unauthorized)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenSource:
    """Accepted digests from the live config: ``tokens`` plus the ``token_files`` (a file holds a
    token, e.g. a systemd credential, or a ``sha256:`` digest). Files are re-read when they change."""

    def __init__(self, api_config: Callable[[], ApiConfig]) -> None:
        self._api_config = api_config
        self._files: dict[Path, tuple[float, list[str]]] = {}

    def digests(self) -> list[str]:
        config = self._api_config()
        out = [t.partition(":")[2] for t in config.tokens]
        for path in config.token_files:
            out.extend(self._from_file(path))
        return out

    def _from_file(self, path: Path) -> list[str]:
        try:
            mtime = path.stat().st_mtime
            cached = self._files.get(path)
            if cached and cached[0] == mtime:
                return cached[1]
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            log.error("api token file %s cannot be read: %s", path, getattr(exc, "strerror", None) or exc)
            return []
        found = [line[len("sha256:"):].lower() if line.startswith("sha256:") else digest(line) for line in lines]
        self._files[path] = (mtime, found)
        return found


def accepted(header: bytes | None, digests: list[str]) -> bool:
    if not header:
        return False
    scheme, _, token = header.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    presented = digest(token).encode()
    ok = False
    for known in digests:  # no early exit: every comparison runs
        ok |= hmac.compare_digest(presented, known.encode())
    return ok


def is_console(path: str) -> bool:
    """``/app`` and below: the web console, which has its own login (dripd.console)."""
    return path == "/app" or path.startswith("/app/")


class BearerAuth:
    """ASGI middleware: HTTP requests without an accepted token get 401 and never reach the app."""

    def __init__(self, app: ASGIFramework, tokens: TokenSource) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http" and is_console(scope.get("path", "")):
            await self.app(scope, receive, send)  # the console checks its own session cookie
            return
        if scope["type"] == "http" or scope["type"] == "websocket":
            header = dict(scope.get("headers") or []).get(b"authorization")
            if not accepted(header, self.tokens.digests()):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": None})
                    return
                await send({"type": "http.response.start", "status": _UNAUTHORIZED_STATUS, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                    (b"www-authenticate", b'Bearer realm="dripd"')]})
                await send({"type": "http.response.body", "body": _UNAUTHORIZED, "more_body": False})
                return
        await self.app(scope, receive, send)
