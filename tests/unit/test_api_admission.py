"""The API's admission limit (dripd/api/admission.py): never more requests in the app than the
limit, every request served in the end, and a changed limit applied to the next request."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from dripd.api.admission import RequestLimit


class SlowApp:
    """An ASGI app that holds each request until released and records how many ran at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.served = 0
        self.release = trio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        await self.release.wait()
        self.running -= 1
        self.served += 1


async def request(app: RequestLimit) -> None:
    await app({"type": "http"}, None, None)


async def test_at_most_the_limit_run_at_once_and_all_are_served() -> None:
    inner = SlowApp()
    app = RequestLimit(inner, lambda: 3)
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(request, app)
        await trio.testing.wait_all_tasks_blocked()
        assert inner.running == 3 and app.waiting == 17
        inner.release.set()
    assert (inner.most, inner.served) == (3, 20)


async def test_the_limit_is_read_again_on_each_request() -> None:
    inner = SlowApp()
    limit = [1]
    app = RequestLimit(inner, lambda: limit[0])
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(request, app)
        await trio.testing.wait_all_tasks_blocked()
        assert inner.running == 1
        limit[0] = 4  # e.g. the lanes went idle: the next admission raises the limit
        nursery.start_soon(request, app)
        await trio.testing.wait_all_tasks_blocked()
        assert inner.running == 4
        inner.release.set()
    assert inner.served == 5


async def test_lifespan_events_are_not_limited() -> None:
    inner = SlowApp()
    app = RequestLimit(inner, lambda: 1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(request, app)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(app, {"type": "lifespan"}, None, None)
        await trio.testing.wait_all_tasks_blocked()
        assert inner.running == 2
        inner.release.set()
