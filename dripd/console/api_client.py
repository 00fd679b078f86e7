"""The console's way into dripd: the control API itself, called in process.

The console holds no business rule: every read and every change goes through the same JSON
endpoints dripctl uses (validation, error codes, transitions), over an ASGI transport to the
same FastAPI app, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp


class ApiProblem(Exception):
    """An API error, kept as the API said it: the field it names and the rule, for the page."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class InProcessApi:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def call(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                   params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dripd.console") as client:
            response = await client.request(method, path, json=json, content=content, params=params,
                                            headers=headers)
        if response.status_code == 204:
            return None
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        if response.status_code >= 400:
            error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            raise ApiProblem(response.status_code, str(error.get("code", "error")),
                             str(error.get("message", f"the API answered {response.status_code}")),
                             dict(error.get("details") or {}))
        return body

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.call("POST", path, json=json if json is not None else {})
