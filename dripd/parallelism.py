"""How many sends a mailbox keeps in flight: one knob.

A user who sets ``connections = 4`` on an SMTP mailbox means four parallel sends, so a
mailbox's ``concurrency`` defaults to what its transport can carry at once (the transport's
config model says so with a ``parallel_sends`` property). Setting both is allowed, but a
setting that cannot fully take effect is never silent: more sends in flight than connections
only queue for the pool (they render ahead, nothing more), fewer leave connections idle; both
are warned about at ``--check-config``, at start and at a reload.

A transport that queues sends itself and says when each one's transaction begins
(``reports_on_wire``, the SMTP transport) is handed more than it carries at once: ``handed`` is
``HANDED_PER_CONNECTION`` per connection, so a connection that frees starts its next message at
once instead of waiting for the daemon's event loop to hand it over. It still carries only
``connections`` conversations at once, and the core journals a message as gone only when its
transaction begins (dripd/wire_journal.py), so a crash leaves no more sends uncertain than before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DEFAULT_SENDS_IN_FLIGHT = 1  # a transport that does not say (Maildir, a plugin's) sends one at a time

# Sends handed per connection to a transport that queues them (``reports_on_wire``): one on the
# wire and three waiting for it. bench/bench_send.py's database-built row at connections = 4
# (5,000 messages, alternated, 2026-12-04): handing 16 sends, 1,155-1,250 msg/s at 0.86-0.94 ms
# of CPU per message against 982-1,074 at 0.98-1.08 handing 4 (faster in 4 of 4 pairs). Two or
# eight per connection measured the same as four within the machine's noise (3 rounds each).
HANDED_PER_CONNECTION = 4


@runtime_checkable
class SendsInParallel(Protocol):
    """A transport config model that can carry several sends at once (``SmtpConfig``)."""

    @property
    def parallel_sends(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LaneParallelism:
    concurrency: int  # sends in flight for the lane
    warning: str | None  # a setting that cannot fully take effect, for --check-config and the log
    handed: int  # sends handed to the transport at once: ``concurrency``, or more where it queues


def lane_parallelism(where: str, configured: int | None, transport_parallel: int | None,
                     transport_key: str, *, queues: bool = False) -> LaneParallelism:
    """The lane's sends in flight from the mailbox's ``concurrency`` (``None``: not set) and the
    transport's own parallelism (``None``: the transport does not say). ``where`` and
    ``transport_key`` name the keys in messages, e.g. ``mailboxes[0]`` and ``smtp.connections``.
    ``queues``: the transport may be handed sends ahead (see the module docstring)."""
    concurrency, warning = _sends_in_flight(where, configured, transport_parallel, transport_key)
    handed = concurrency
    if queues and transport_parallel is not None and concurrency >= transport_parallel:
        # Fewer in flight than connections is the user's limit on conversations: never more.
        handed = max(concurrency, HANDED_PER_CONNECTION * transport_parallel)
    return LaneParallelism(concurrency, warning, handed)


def _sends_in_flight(where: str, configured: int | None, transport_parallel: int | None,
                     transport_key: str) -> tuple[int, str | None]:
    if configured is None:
        return transport_parallel or DEFAULT_SENDS_IN_FLIGHT, None
    if transport_parallel is None:
        return configured, None
    if configured > transport_parallel:
        return configured, (
            f"{where}.concurrency = {configured} is more than {transport_key} = {transport_parallel}: only "
            f"{transport_parallel} sends are on the wire at once, the others render and wait for a "
            "connection; leave concurrency out to follow the connections")
    if configured < transport_parallel:
        return configured, (
            f"{where}.concurrency = {configured} keeps only {configured} of {transport_key} = "
            f"{transport_parallel} connections busy; leave concurrency out to use them all")
    return configured, None
