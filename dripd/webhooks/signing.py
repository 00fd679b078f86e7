"""The Standard Webhooks signature (https://www.standardwebhooks.com): ``webhook-signature`` is
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the base64 part of "whsec_<base64>",
so receivers verify with that spec's libraries. Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
MIN_KEY_BYTES = 24  # the spec's libraries generate 24-byte keys; shorter ones are refused


def new_secret() -> str:
    """A fresh secret in the spec's format."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is unusable (never echoing it), or None."""
    if not secret.startswith(PREFIX):
        return f"must start with {PREFIX!r} followed by base64 (Standard Webhooks format)"
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return f"the part after {PREFIX!r} must be base64"
    if len(key) < MIN_KEY_BYTES:
        return f"the key must be at least {MIN_KEY_BYTES} bytes"
    return None


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret[len(PREFIX):])


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(key, msg_id, timestamp, body), "content-type": "application/json"}
