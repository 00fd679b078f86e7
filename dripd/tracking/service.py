"""The public tracking listener, served by hypercorn inside the daemon's nursery."""

from __future__ import annotations

import logging
from functools import partial
from typing import Callable, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.typing import ASGIFramework

from dripd.api.listener import serve
from dripd.engagement import Engagement
from dripd.errors import ConfigError
from dripd.tracking.app import TrackingApp, create_tracking_app
from dripd.tracking.engagement import Tracking

log = logging.getLogger("dripd.tracking")


def listener_config(bind: str) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [bind]
    config.accesslog = None  # request lines carry tokens: never log them
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0
    config.h11_max_incomplete_size = 16 * 1024
    config.include_server_header = False  # the public side need not learn what serves it
    return config


async def serve_tracking(
    engagement: Engagement, app: Callable[[Tracking], TrackingApp], listen: str, stop: trio.Event, *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The public listener on ``listen`` until ``stop`` is set. ``engagement`` must be the
    ``Tracking`` the engine signs links with (``app`` builds the handlers from it)."""
    if not isinstance(engagement, Tracking):
        raise ConfigError("tracking.base_url", "the tracking listener needs a base_url for its links")
    # Starlette's app is an ASGI app; hypercorn types ASGI scopes as TypedDicts, Starlette as a
    # MutableMapping, and mypy cannot relate the two, so the hand-over is a cast.
    asgi = cast(ASGIFramework, create_tracking_app(app(engagement)))
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(serve, asgi, listener_config(listen), shutdown_trigger=stop.wait))
        log.info("tracking listener on %s for %s", ", ".join(bound), engagement.base_url)
        task_status.started()
