"""At most N API requests in the application at once; the rest wait their turn.

The API and the lanes share one event loop. Fifty clients enrolling at once kept fifty handler
tasks runnable against a few lane workers, and the sends fell to a third of their rate
(bench/bench_api.py). Admitting a few requests at a time keeps the API's share of the loop
bounded while its clients still get every request served, in order.
"""

from __future__ import annotations

from typing import Callable, cast

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from starlette import types as starlette


def to_starlette(scope: Scope, receive: ASGIReceiveCallable,
                 send: ASGISendCallable) -> tuple[starlette.Scope, starlette.Receive, starlette.Send]:
    """hypercorn's three ASGI arguments as Starlette's types spell them. Both follow the ASGI
    spec; hypercorn types a scope as TypedDicts, Starlette as a MutableMapping, and mypy cannot
    relate the two (a TypedDict is never a MutableMapping), so where they meet is a cast."""
    return cast(starlette.Scope, scope), cast(starlette.Receive, receive), cast(starlette.Send, send)


class RequestLimit:
    """ASGI middleware; ``limit()`` is read on each request, so a reload applies at once."""

    def __init__(self, app: starlette.ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self._limit = limit
        self._limiter = trio.CapacityLimiter(limit())

    @property
    def waiting(self) -> int:
        return self._limiter.statistics().tasks_waiting

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await self.app(*to_starlette(scope, receive, send))  # lifespan events are not requests
            return
        wanted = self._limit()
        if self._limiter.total_tokens != wanted:
            self._limiter.total_tokens = wanted
        async with self._limiter:
            await self.app(*to_starlette(scope, receive, send))
