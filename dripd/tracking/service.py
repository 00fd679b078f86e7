"""Wires tracking into a daemon: the engagement the engine composes with, and the listener."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from dripd.errors import ConfigError
from dripd.tracking.app import TrackingApp, create_tracking_app
from dripd.tracking.engagement import Tracking

if TYPE_CHECKING:
    from dripd.root import Services

log = logging.getLogger("dripd.tracking")


def listener_config(bind: str) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [bind]
    config.accesslog = None  # request lines carry tokens: never log them
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0
    config.h11_max_incomplete_size = 16 * 1024
    return config


async def serve_tracking(services: "Services", *,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """A service of the daemon: the public listener, until the daemon stops."""
    engagement = services.engagement
    if not isinstance(engagement, Tracking):
        raise ConfigError("tracking.base_url", "the tracking listener needs a base_url for its links")
    # Starlette's app is an ASGI app; hypercorn types ASGI scopes as TypedDicts, Starlette as a
    # MutableMapping, and mypy cannot relate the two, so the hand-over is a cast.
    app = cast(ASGIFramework, create_tracking_app(
        TrackingApp(services.live, services.store, services.clock, engagement.signer)))
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(serve, app, listener_config(services.config.tracking.listen or ""),
                                            shutdown_trigger=services.stop_requested.wait))
        log.info("tracking listener on %s for %s", ", ".join(bound), engagement.base_url)
        task_status.started()
