"""How many sends a mailbox keeps in flight: one knob.

A user who sets ``connections = 4`` on an SMTP mailbox means four parallel sends, so a
mailbox's ``concurrency`` defaults to what its transport can carry at once (the transport's
config model says so with a ``parallel_sends`` property). Setting both is allowed, but a
setting that cannot fully take effect is never silent: more sends in flight than connections
only queue for the pool (they render ahead, nothing more), fewer leave connections idle; both
are warned about at ``--check-config``, at start and at a reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DEFAULT_SENDS_IN_FLIGHT = 1  # a transport that does not say (Maildir, a plugin's) sends one at a time


@runtime_checkable
class SendsInParallel(Protocol):
    """A transport config model that can carry several sends at once (``SmtpConfig``)."""

    @property
    def parallel_sends(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LaneParallelism:
    concurrency: int  # sends in flight for the lane
    warning: str | None  # a setting that cannot fully take effect, for --check-config and the log


def lane_parallelism(where: str, configured: int | None, transport_parallel: int | None,
                     transport_key: str) -> LaneParallelism:
    """The lane's sends in flight from the mailbox's ``concurrency`` (``None``: not set) and the
    transport's own parallelism (``None``: the transport does not say). ``where`` and
    ``transport_key`` name the keys in messages, e.g. ``mailboxes[0]`` and ``smtp.connections``."""
    if configured is None:
        return LaneParallelism(transport_parallel or DEFAULT_SENDS_IN_FLIGHT, None)
    if transport_parallel is None:
        return LaneParallelism(configured, None)
    if configured > transport_parallel:
        return LaneParallelism(configured, (
            f"{where}.concurrency = {configured} is more than {transport_key} = {transport_parallel}: only "
            f"{transport_parallel} sends are on the wire at once, the others render and wait for a "
            "connection; leave concurrency out to follow the connections"))
    if configured < transport_parallel:
        return LaneParallelism(configured, (
            f"{where}.concurrency = {configured} keeps only {configured} of {transport_key} = "
            f"{transport_parallel} connections busy; leave concurrency out to use them all"))
    return LaneParallelism(configured, None)
