"""HMAC-signed tokens that name one sent message (and, for a click, one link in it).

A token is ``<payload>.<signature>``, both base64url. The payload holds the token's kind, the
Message-ID, and for clicks the link's index and URL; the signature covers all of it. So a click
can only ever redirect to a URL dripd itself put into that very message (no open redirect),
without a database write per link on the send path. Altering any byte, or reusing an open
token as an unsubscribe token, fails verification.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from dripd.errors import DripdError

_CONTEXT = b"dripd-tracking-v1\x00"  # domain separation: this key signs nothing else
_SIG_BYTES = 16  # 128-bit truncated HMAC-SHA256: forging stays out of reach, URLs stay short
_SEP = "\x1f"
MIN_SECRET_BYTES = 16
MAX_TOKEN_CHARS = 8192  # longer than any real message's link; refuse before decoding


class Kind(enum.StrEnum):
    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"


@dataclass(frozen=True)
class Token:
    kind: Kind
    message_id: str
    link_index: int = -1
    url: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and verifies tokens with one secret key (never logged, never in a repr)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_SECRET_BYTES:
            raise DripdError(f"the tracking secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Signer(<secret>)"

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def sign(self, token: Token) -> str:
        fields = [token.kind.value, token.message_id]
        if token.kind is Kind.CLICK:
            fields += [str(token.link_index), token.url]
        payload = _SEP.join(fields).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, text: str, kind: Kind) -> Token | None:
        """The token when its signature is right and it is of ``kind``; None otherwise."""
        if len(text) > MAX_TOKEN_CHARS or text.count(".") != 1:
            return None
        payload_text, sig_text = text.split(".")
        try:
            payload, sig = _unb64(payload_text), _unb64(sig_text)
        except (ValueError, TypeError):
            return None
        # Re-encoding must give the same text: no second spelling of one token.
        if _b64(payload) != payload_text or _b64(sig) != sig_text:
            return None
        if not hmac.compare_digest(self._mac(payload), sig):
            return None
        try:
            fields = payload.decode("utf-8").split(_SEP)
        except UnicodeDecodeError:
            return None
        if fields[0] != kind.value:
            return None
        if kind is Kind.CLICK:
            if len(fields) != 4 or not fields[2].isdigit():
                return None
            return Token(kind, fields[1], int(fields[2]), fields[3])
        return Token(kind, fields[1]) if len(fields) == 2 else None


def load_secret(secret_file: Path | None, environ: dict[str, str] | None = None) -> bytes:
    """The key from ``secret_file``, else ``$CREDENTIALS_DIRECTORY/tracking`` (systemd
    LoadCredential=). Errors name the file, never its content."""
    env = os.environ if environ is None else environ
    path = secret_file
    if path is None:
        credentials = env.get("CREDENTIALS_DIRECTORY")
        if not credentials:
            raise DripdError("[tracking] needs secret_file (or a 'tracking' credential in $CREDENTIALS_DIRECTORY)")
        path = Path(credentials) / "tracking"
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise DripdError(f"cannot read the tracking secret {path}: {exc.strerror}") from None
    if len(key) < MIN_SECRET_BYTES:
        raise DripdError(f"the tracking secret {path} is shorter than {MIN_SECRET_BYTES} bytes")
    return key
