"""What the API tests on the real daemon share: a minimal email step, creating a sequence,
and checking an error answer's shape and code."""

from __future__ import annotations

from typing import Any

import httpx

EMAIL: dict[str, Any] = {"type": "email", "subject": "Hi {{firstName}}", "body": "<p>Hello {{firstName}}</p>"}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The ``error`` object of ``response``, after asserting its status, shape and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


def create(api: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    """A new sequence on mailbox "sales" (201 asserted)."""
    response = api.post("/api/sequences", json={"name": name, "mailboxId": "sales", **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
