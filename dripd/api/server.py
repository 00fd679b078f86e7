"""Serves the control API with hypercorn inside the daemon's nursery: the Unix socket always,
TCP (Bearer tokens) when ``[api] listen`` is set. Started with ``nursery.start`` so READY=1
follows only once the listeners exist; stopped through hypercorn's shutdown trigger.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HypercornConfig

from dripd.api.admission import RequestLimit
from dripd.api.app import create_app
from dripd.api.auth import BearerAuth, TokenSource
from dripd.api.body import BodyGate
from dripd.api.listener import serve
from dripd.errors import DripdError
from dripd.systemd import listen_fds

if TYPE_CHECKING:
    from dripd.root import Services

log = logging.getLogger("dripd.api")

SOCKET_MODE = 0o660  # owner and group (e.g. a "dripd" group for operators) may connect


def _hypercorn_config(binds: list[str]) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = binds
    config.accesslog = None  # request lines could carry tokens in odd clients' URLs: never log them
    config.errorlog = logging.getLogger("hypercorn.error")  # our handlers and levels, not a second stream
    config.graceful_timeout = 2.0
    config.umask = 0o117  # the socket is born 0660, not world-connectable for an instant
    return config


def prepare_socket_path(path: Path) -> None:
    """Create the parent directory; remove a stale socket, but never one a live dripd answers on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            path.unlink(missing_ok=True)  # left by a process that died: safe to take over
            return
        raise DripdError(f"control socket {path}: {exc.strerror}") from None
    finally:
        probe.close()
    raise DripdError(f"control socket {path} is in use: another dripd is running")


async def serve_control_api(services: "Services", *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The daemon's extra service: returns after a graceful shutdown, or when cancelled."""
    # One admission limit for both listeners: it bounds the API's share of the event loop,
    # tighter while the lanes have sends to make.
    def admitted() -> int:
        api = services.config.api
        return api.max_concurrent_requests_while_sending if services.scheduler.sending() else api.max_concurrent_requests

    api_app = create_app(services)
    # Bodies are read (bounded) before admission; CSV imports stream beside it (body.py).
    app = BodyGate(RequestLimit(api_app, admitted), api_app, lambda: services.config.api.limits)
    # The API begins its graceful shutdown when the daemon's does, before the nursery ends.
    stop = services.stop_requested
    fds = listen_fds()
    socket_path = services.config.daemon.socket
    if fds:
        unix_binds = [f"fd://{fds[0]}"]
    else:
        prepare_socket_path(socket_path)
        unix_binds = [f"unix:{socket_path}"]
    listen = services.config.api.listen
    tcp_binds = [f"fd://{fd}" for fd in fds[1:]] or ([listen] if listen else [])
    try:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve, app, _hypercorn_config(unix_binds), shutdown_trigger=stop.wait))
            if not fds:
                os.chmod(socket_path, SOCKET_MODE)
            if tcp_binds:
                if not (services.config.api.tokens or services.config.api.token_files):
                    raise DripdError("the TCP listener needs [api] tokens or token_files")
                tokens = TokenSource(lambda: services.config.api)
                bound += await nursery.start(partial(serve, BearerAuth(app, tokens), _hypercorn_config(tcp_binds),
                                                     shutdown_trigger=stop.wait))
            log.info("control API listening on %s", ", ".join(bound))
            task_status.started()
    finally:
        if not fds:
            with trio.CancelScope(shield=True):
                _remove_own_socket(socket_path)


def _remove_own_socket(path: Path) -> None:
    try:
        if path.is_socket():
            path.unlink()
    except OSError:
        pass
