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
# wire and fifteen waiting for it, with four claims made ahead of each (dripd/send_slots.py).
# More in flight makes the group commits and the event loop's passes carry more sends each: in
# bench/bench_send.py's headline (connections = 4, 5,000 messages by CSV), four alternated A/B
# runs of 3-4 rounds on 2026-12-05 gave 1.23x, 1.13x, 1.05x and 1.26x the msg/s of four per
# connection, at 0.83-0.91 ms of daemon CPU per message against 0.96-1.08; 32 per connection,
# 1.17x where 16 gave 1.13x. (On 2026-12-04, before the ledger's multi-row forms, 1 -> 4 per
# connection gained ~15 % and 2 or 8 measured as 4.) The cost: after a power cut the wire
# journal is not believed, and every row then 'sending' (up to 64 handed + 256 claimed at
# connections = 4; at a capped rate, only the few in flight) is looked up or reported uncertain.
# A kill -9 still leaves at most ``connections`` uncertain rows.
HANDED_PER_CONNECTION = 16


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


# Workers per send slot (a send handed to the transport). A lane keeps ``concurrency`` sends on the
# wire (``handed`` with the transport, where it queues them itself) and up to four times as
# many claims made ahead of them (dripd/send_slots.py); the other workers read the next
# enrollments' context and build their messages before their turn, and record results after the
# send: the store's round trips and the claims' fsync overlap the sends instead of following them
# (bench/bench_send.py). One on the wire, up to four claimed, three preparing or recording: with
# four per slot no ticket was left to prepare while the claims waited, and each claim went alone.
WORKERS_PER_SLOT = 8
# Workers per send handed to a transport that queues them (more than ``concurrency``, see
# HANDED_PER_CONNECTION above): the sends waiting in the transport take no preparing or recording
# worker of their own. At connections = 4 (64 handed) bench_send's headline measured the same
# with 4, 6 and 8 per handed send (one run of 4 rounds, 2026-12-05); with 8, 50 mailboxes of one
# SMTP connection each held 116 MB at READY instead of 101 (bench/bench_scale.py).
WORKERS_PER_HANDED = 4
# ... and never fewer than this per lane: a lane with one send in flight has enough to fill the
# claim stage's least places (dripd/send_slots.py, MIN_CLAIM_PLACES, where the numbers are) and
# prepare behind them.
MIN_WORKERS = 32


def workers_for(concurrency: int, handed: int) -> int:
    """How many workers a lane runs with ``concurrency`` sends in flight and ``handed`` with its
    transport at once (more where the transport queues them)."""
    return max(concurrency * WORKERS_PER_SLOT, handed * WORKERS_PER_HANDED, MIN_WORKERS)
