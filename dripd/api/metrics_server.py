"""``[metrics] listen``: /metrics on its own TCP listener for Prometheus (nothing else there)."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig

from dripd.api.listener import serve
from dripd.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from dripd.root import Services

log = logging.getLogger("dripd.metrics")


def metrics_app(services: "Services") -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            status, body, kind = 200, await services.scrape.exposition(), CONTENT_TYPE
        else:
            status, body, kind = 404, b"not found; try /metrics\n", "text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})

    return app


async def serve_metrics(services: "Services", *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    config = HypercornConfig()
    config.bind = [services.config.metrics.listen or ""]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(serve, metrics_app(services), config,
                                            shutdown_trigger=services.stop_requested.wait))
        log.info("metrics listening on %s", ", ".join(bound))
        task_status.started()
