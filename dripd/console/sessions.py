"""Console sessions: a random id in an HttpOnly, SameSite=Strict cookie, its state kept here.

Sessions live in the daemon's memory on purpose: nothing secret is written to disk or put in
the cookie, and a restart (or a token being revoked, see ``Console.authorised``) logs everyone
out. Each session carries its own CSRF token, compared in constant time on every form post.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Callable

COOKIE = "dripd_session"
LOGIN_COOKIE = "dripd_login"  # the login form's own CSRF value, before a session exists
IDLE_SECONDS = 8 * 3600  # a console left alone for a working day asks for the token again
MAX_SESSIONS = 1000  # bounded memory: the oldest session goes first


@dataclass
class Session:
    id: str
    csrf: str
    token_digest: str  # which accepted token opened it: revoking that token ends the session
    last_seen: float
    flashes: list[str] = field(default_factory=list)


class SessionStore:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._sessions: dict[str, Session] = {}

    def open(self, token_digest: str) -> Session:
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            del self._sessions[oldest.id]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), token_digest, self._now())
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._now()
        if now - session.last_seen > IDLE_SECONDS:
            del self._sessions[session.id]
            return None
        session.last_seen = now
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)


def same_secret(given: str | None, expected: str) -> bool:
    """A CSRF value compared in constant time; a missing one never matches."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
