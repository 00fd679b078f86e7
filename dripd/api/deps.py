"""How a handler reaches the services: the app is built for one daemon's services (app.state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

if TYPE_CHECKING:
    from dripd.root import Services


def _services(request: Request) -> "Services":
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated["Services", Depends(_services)]


# Ids are SQLite INTEGERs: anything outside 1..2**63-1 cannot name a row, and would overflow
# the driver (a 500) if it got that far. The rule is checked at the edge and named in the 422.
MAX_ID = 2**63 - 1
SequenceId = Annotated[int, Path(ge=1, le=MAX_ID, description="a sequence id")]
ContactId = Annotated[int, Path(ge=1, le=MAX_ID, description="a contact id")]
ListId = Annotated[int, Path(ge=1, le=MAX_ID, description="a list id")]
StepIndex = Annotated[int, Path(ge=0, le=MAX_ID, description="a step's index in the sequence (0-based)")]
