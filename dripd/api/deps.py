"""How a handler reaches the running daemon: the app is built for one daemon (app.state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from dripd.daemon import Daemon


def _daemon(request: Request) -> "Daemon":
    return request.app.state.daemon  # type: ignore[no-any-return]


DaemonDep = Annotated["Daemon", Depends(_daemon)]
