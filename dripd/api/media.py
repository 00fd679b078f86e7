"""The Content-Type rule of every request body, checked before a route reads it: JSON bodies
are ``application/json`` (or ``+json``), the CSV enrollment body is ``text/csv``; anything else
answers 415 ``unsupported_media_type`` naming what was expected. A request without a body
(``POST .../start``) needs no Content-Type.

Without this, FastAPI hands a body of any other type to the model as bytes, which answered a
422 about the body's shape; and the CSV endpoint read whatever it was sent as CSV.
"""

from __future__ import annotations

import re
from email.message import Message

from starlette.types import ASGIApp, Receive, Scope, Send

from dripd.api.errors import UnsupportedMediaType, error_body

CSV_PATH = re.compile(r"^/api/sequences/[^/]+/enroll/csv/?$")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _has_body(headers: dict[bytes, bytes]) -> bool:
    if b"transfer-encoding" in headers:
        return True
    length = headers.get(b"content-length", b"0").strip()
    return not length.isdigit() or int(length) > 0  # a bad length is a body the server must still refuse


def media_problem(method: str, path: str, content_type: str | None, has_body: bool) -> str | None:
    """Why the body of this request is of the wrong type, or None (also when there is no body)."""
    if method not in _WITH_BODY or not has_body or not path.startswith("/api/"):
        return None
    parsed = Message()
    parsed["content-type"] = content_type or ""
    kind = parsed.get_content_type() if content_type else ""
    if CSV_PATH.match(path):
        return None if kind == "text/csv" else f"Content-Type must be text/csv (got {content_type or 'none'})"
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return None
    return f"Content-Type must be application/json (got {content_type or 'none'})"


class RequireMediaType:
    """ASGI middleware: 415 for a body of the wrong type, before any route reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.lower(): v for k, v in scope.get("headers", [])}
            raw = headers.get(b"content-type")
            problem = media_problem(scope["method"], scope["path"], raw.decode("latin-1") if raw else None,
                                    _has_body(headers))
            if problem is not None:
                body = error_body(UnsupportedMediaType(problem, details={"field": "Content-Type"}))
                # The body is left unread (it may be large): the connection cannot carry another
                # request after it, so say so rather than let the client reuse it and be cut off.
                await send({"type": "http.response.start", "status": 415,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()),
                                        (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
