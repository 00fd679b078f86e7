"""How a handler reaches the running daemon: the app is built for one daemon (app.state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

if TYPE_CHECKING:
    from dripd.daemon import Daemon


def _daemon(request: Request) -> "Daemon":
    return request.app.state.daemon  # type: ignore[no-any-return]


DaemonDep = Annotated["Daemon", Depends(_daemon)]


# Ids are SQLite INTEGERs: anything outside 1..2**63-1 cannot name a row, and would overflow
# the driver (a 500) if it got that far. The rule is checked at the edge and named in the 422.
MAX_ID = 2**63 - 1
SequenceId = Annotated[int, Path(ge=1, le=MAX_ID, description="a sequence id")]
ContactId = Annotated[int, Path(ge=1, le=MAX_ID, description="a contact id")]
ListId = Annotated[int, Path(ge=1, le=MAX_ID, description="a list id")]
StepIndex = Annotated[int, Path(ge=0, le=MAX_ID, description="a step's index in the sequence (0-based)")]
