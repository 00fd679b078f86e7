"""Wires tracking into a daemon: the engagement the engine composes with, and the listener."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from dripd.tracking.app import create_tracking_app
from dripd.tracking.engagement import Tracking
from dripd.tracking.tokens import Signer, load_secret

if TYPE_CHECKING:
    from dripd.daemon import Daemon

log = logging.getLogger("dripd.tracking")


def install_tracking(daemon: "Daemon") -> None:
    """Prepare hook: with ``[tracking]`` configured, messages get signed links and the pixel."""
    settings = daemon.config.tracking
    if not settings.listen or not settings.base_url:
        return
    daemon.engine.engagement = Tracking(settings.base_url, Signer(load_secret(settings.secret_file)))


def listener_config(bind: str) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [bind]
    config.accesslog = None  # request lines carry tokens: never log them
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0
    config.h11_max_incomplete_size = 16 * 1024
    return config


async def serve_tracking(daemon: "Daemon", *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The daemon's extra service: the public listener, until the daemon stops."""
    engagement = daemon.engine.engagement
    assert isinstance(engagement, Tracking), "install_tracking must run first"
    # Starlette's app is an ASGI app; hypercorn types ASGI scopes as TypedDicts, Starlette as a
    # MutableMapping, and mypy cannot relate the two, so the hand-over is a cast.
    app = cast(ASGIFramework, create_tracking_app(daemon, engagement.signer))
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(serve, app, listener_config(daemon.config.tracking.listen or ""),
                                            shutdown_trigger=daemon.stop_requested.wait))
        log.info("tracking listener on %s for %s", ", ".join(bound), engagement.base_url)
        task_status.started()
