"""Warnings answered alongside a saved sequence: what the API allows but is almost certainly a
mistake (two sequences of one name, a conditional with nothing after it). Each is logged and
returned as ``"warnings": [{"field", "message"}]``; a body without any has no such key.

The step rule lives with its step kind (``steps.step_list_warnings``); the name rule is here,
because only the store knows the other sequences.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dripd.model import Step
from dripd.steps import step_list_warnings

if TYPE_CHECKING:
    from dripd.root import Services

log = logging.getLogger("dripd.api")


async def name_warnings(services: "Services", sequence_id: int, name: str) -> list[dict[str, str]]:
    """A warning when another sequence has ``name``: allowed (seed 003 names are free text), but
    dripctl finds sequences by name and would have to ask which one is meant."""
    others = [s.id for s in await services.store.list_sequences(name) if s.id != sequence_id]
    if not others:
        return []
    ids = ", ".join(str(i) for i in others)
    return [{"field": "name", "message": f"sequence {ids} has the same name; refer to this one by its id "
                                         f"{sequence_id}"}]


def steps_warnings(steps: list[Step]) -> list[dict[str, str]]:
    return [{"field": field, "message": message} for field, message in step_list_warnings(steps)]


def with_warnings(body: dict[str, Any], sequence_id: int, warnings: list[dict[str, str]]) -> dict[str, Any]:
    """``body`` with its ``warnings`` (none: unchanged), each also logged for the operator."""
    for warning in warnings:
        log.warning("sequence %d: %s %s", sequence_id, warning["field"], warning["message"])
    return {**body, "warnings": warnings} if warnings else body
