"""A lane's send slots: the claim stage and the wire stage, both granted in dispatch order.

A send passes two stages. In the *claim stage* its worker checks the gate (the send token) and
commits the ledger claim (synchronous=FULL, ~1.6 ms of fsync on a quiet disk); in the *wire
stage* it hands the message to the transport. The wire stage has ``total`` places (the lane's
``handed``: its sends in flight, or more where the transport queues them and says when each
begins, dripd/parallelism.py) and the claim stage ``claim_places(total)``: four times as many,
and never fewer than ``MIN_CLAIM_PLACES``. So a lane keeps ``total`` sends with the transport
while more are being claimed or are claimed and waiting for their turn: a connection that frees
finds its next claim already durable instead of idling through the commit (bench/bench_send.py,
issue 14: 302 -> 501 msg/s to smtp-sink when the claims were made ahead), and the claims waiting
for their turn share one fsync (a group commit) instead of taking one each. At most ``total +
claim_places(total)`` of the lane's rows are 'sending' at once; the wire journal
(dripd/wire_journal.py) tells recovery which of them never began a transaction.

Without a wire journal to tell the claims apart after a crash (a cluster node: a mailbox's rows
are recovered by whichever node takes its lease), ``ahead=False`` grants a claim only while a
wire place is free, so no more rows are 'sending' than sends are on the wire, as before.

Both stages are granted by ticket, the order in which the lane dispatched its enrollments: a
ticket still preparing (reading its context, building its message) or still claiming holds back
every later one, so working ahead never reorders the sends. A claim turn starts with the gate
(the send token: caps, throttle, warm-up), which tickets pass one at a time in that order
(``gated``): tickets granted together would wake in any order, and a later one could take the
token an earlier one was waiting for. Only the check is one at a time; the claims' commits are
not. A ticket that sends nothing (the gate said no, the ledger already held the step, the run
failed) withdraws and gives its place up.

Each wire place's time is accounted to what it was doing (``SLOT_STATES``): on the wire, or free
while the oldest ticket heading for it was still claiming, still preparing, or while no ticket
was under way at all. ``dripd_send_slot_seconds`` exposes it: it says where a mailbox's sends
wait (bench/bench_send.py prints it for the headline run).
"""

from __future__ import annotations

from typing import Callable

import trio

__all__ = ["CLAIMS_AHEAD_PER_PLACE", "MIN_CLAIM_PLACES", "SLOT_STATES", "SendSlots", "WirePlace", "claim_places"]

# Claims that may be made ahead per wire place. One per place left each claim its own durable
# commit: the next ticket's claim turn came as a send finished, alone. Four let the claims of
# the tickets prepared meanwhile queue up and share the commit (issue 14, measured with
# bench/bench_send.py and bench/bench_dispatch.py: at connections = 4, 1,630-1,700 durable
# commits per 5,000 messages became 970-1,030; at one send in flight, 1.00 commit per step
# became 0.56). Eight per place saved another ~10 % of the commits and no measurable time.
CLAIMS_AHEAD_PER_PLACE = 4

# The claim stage's places are never fewer than this, however few wire places a lane has (a
# Maildir mailbox, the null transport: one send in flight). With one send in flight and 4 claim
# places, each durable commit covered about two claims, and the claim's commit and the scheduler
# passes around it were the lane's limit: bench/bench_dispatch.py's null transport at one in
# flight, 4,000 steps, two alternated rounds on 2026-12-04: 1,274-1,322 steps/s at 0.53 ms of
# event-loop CPU and 0.47 durable commits per step with 4 places and 8 workers (parallelism.py's
# MIN_WORKERS), 2,235-2,322 at 0.35 ms and 0.15 commits with 16 and 32; 32 and 64 reached
# 2,668-2,837. The bound stays 16 for such lanes; a mailbox with SMTP connections has more
# (dripd/parallelism.py). A reply, bounce, unsubscribe or cancel committed after a claim still
# stops the send while it waits for the wire (dripd/endings.py): the depth costs built messages
# and, after a power cut, rows to look up, not sends a reply cannot stop.
MIN_CLAIM_PLACES = 16

# What a wire place's time went to. "waiting_for_claim": free while the oldest ticket that will
# take it is committing its claim (or waiting for its claim turn); "waiting_for_prepare": free
# while the oldest ticket is reading its context and building its message; "idle": free with no
# ticket under way (nothing due, the caps or window said no, the mailbox paused).
SLOT_STATES = ("on_the_wire", "waiting_for_claim", "waiting_for_prepare", "idle")


def claim_places(total: int) -> int:
    """The claim stage's places for ``total`` wire places, where claims may be made ahead."""
    return max(CLAIMS_AHEAD_PER_PLACE * total, MIN_CLAIM_PLACES)


class SendSlots:
    """``total`` places on the wire, ``claim_places(total)`` in the claim stage; ``claimed`` and
    ``busy`` count the tickets holding them."""

    def __init__(self, total: int, *, ahead: bool = True, now: Callable[[], float] = trio.current_time) -> None:
        self.total = total
        self.ahead = ahead  # claims may wait for the wire (else a claim needs a free wire place)
        self.claimed = 0  # tickets claiming, or claimed and waiting for the wire
        self.busy = 0  # tickets on the wire
        self._next_ticket = 0
        # Tickets before each stage, in ticket order; None: not asking yet (preparing, claiming).
        self._to_claim: dict[int, trio.Event | None] = {}
        self._to_wire: dict[int, trio.Event | None] = {}
        self._gating: int | None = None  # granted its claim turn, not yet through the gate
        self._now = now
        self._since: float | None = None  # when the seconds were last accounted
        self._seconds = dict.fromkeys(SLOT_STATES, 0.0)  # place-seconds by state

    def seconds(self) -> dict[str, float]:
        """Place-seconds by state (``SLOT_STATES``), up to now, since the lane first counted them
        (its first ticket, or the first read: a counter, read as a rate)."""
        self._account()
        return dict(self._seconds)

    def _account(self) -> None:
        """Add the time since the last change to the state the places were in; called before
        every change of state."""
        now = self._now()
        since, self._since = self._since, now
        if since is None or now <= since:
            return
        elapsed = now - since
        busy = min(self.busy, self.total)
        self._seconds["on_the_wire"] += elapsed * busy
        if busy < self.total:
            self._seconds[self._free_state()] += elapsed * (self.total - busy)

    def _free_state(self) -> str:
        """Why a wire place is free: what the oldest ticket that will take it is doing."""
        if self._to_wire:
            return "waiting_for_claim"  # the oldest is still committing its claim
        for waiting in self._to_claim.values():
            return "waiting_for_prepare" if waiting is None else "waiting_for_claim"
        return "idle"

    def issue(self) -> int:
        self._account()
        ticket = self._next_ticket
        self._next_ticket += 1
        self._to_claim[ticket] = None  # preparing: it holds its place in the order
        return ticket

    def withdraw(self, ticket: int) -> None:
        """The ticket sends nothing more: give up its place in either queue (and its claim place).
        A ticket already through both stages (or never issued) is left alone, so the lane's
        workers may call this after every run."""
        self._account()
        gating = self._gating == ticket
        if gating:
            self._gating = None
        if ticket in self._to_claim:
            del self._to_claim[ticket]
        elif ticket in self._to_wire:
            del self._to_wire[ticket]
            self.claimed -= 1
        elif not gating:
            return
        self._grant()

    def resize(self, total: int) -> None:
        """A reload changed the lane's concurrency: a larger one grants at once; a smaller one
        lets the tickets holding places finish and grants no more until they are under it."""
        self._account()
        self.total = total
        self._grant()

    async def claim_turn(self, ticket: int) -> None:
        """Wait for this ticket's place in the claim stage. It is held until the ticket gets its
        place on the wire (``on_the_wire``) or withdraws."""
        if self._to_claim.get(ticket, 0) is not None:
            raise RuntimeError(f"send ticket {ticket} is not preparing to claim")
        # Granted and cancelled at once: the worker withdraws the ticket, giving the place up.
        await self._wait_for_turn(self._to_claim, ticket)

    def gated(self, ticket: int) -> None:
        """The ticket's gate check is done (passed or not): the next ticket may have its turn."""
        if self._gating == ticket:
            self._account()
            self._gating = None
            self._grant()

    def on_the_wire(self, ticket: int) -> "WirePlace":
        """Hold one of the ``total`` places on the wire, once every older ticket has gone
        (``async with``)."""
        return WirePlace(self, ticket)

    async def _enter_wire(self, ticket: int) -> None:
        if self._to_wire.get(ticket, 0) is not None:
            raise RuntimeError(f"send ticket {ticket} has no claim waiting for the wire")
        self.gated(ticket)  # a caller without a gate check must not hold the next ones back
        await self._wait_for_turn(self._to_wire, ticket, granted_then_cancelled=self._release)

    async def _wait_for_turn(self, queue: dict[int, trio.Event | None], ticket: int, *,
                             granted_then_cancelled: Callable[[], None] | None = None) -> None:
        """Ask for the ticket's place in ``queue``'s stage and wait until it is granted. Cancelled
        before the grant, the ticket withdraws; granted and cancelled in the same batch, it holds
        the place: ``granted_then_cancelled`` gives it up (else the worker's withdraw does)."""
        self._account()
        granted = queue[ticket] = trio.Event()
        self._grant()
        if granted.is_set():
            return  # granted at once (the usual case): no scheduler pass for nothing
        try:
            await granted.wait()
        except BaseException:
            if not granted.is_set():
                self.withdraw(ticket)
            elif granted_then_cancelled is not None:
                granted_then_cancelled()
            raise

    def _claim_places(self) -> int:
        """How many tickets may be claiming or claimed and waiting for the wire."""
        return claim_places(self.total) if self.ahead else self.total - self.busy

    def _release(self) -> None:
        self._account()
        self.busy -= 1
        self._grant()

    def _grant(self) -> None:
        # The wire first: a ticket going on the wire frees its claim place for a later one.
        while self.busy < self.total and self._to_wire:
            ticket, event = next(iter(self._to_wire.items()))
            if event is None:
                break  # the oldest is still claiming: later ones wait for it
            del self._to_wire[ticket]
            self.claimed -= 1
            self.busy += 1
            event.set()
        # One claim turn at a time, until its gate check is done (``gated``).
        if self._gating is None and self._to_claim and self.claimed < self._claim_places():
            ticket, event = next(iter(self._to_claim.items()))
            if event is None:
                return  # the oldest is still preparing
            del self._to_claim[ticket]
            self._to_wire[ticket] = None  # claiming: it holds its place in the wire's order
            self.claimed += 1
            self._gating = ticket
            event.set()


class WirePlace:
    """``SendSlots.on_the_wire``: a place on the wire, held for the ``async with`` block. A class,
    not ``contextlib.asynccontextmanager``: its async generator, and trio-asyncio's hook on every
    new one, were ~1.4 % of the event loop per send (issue 14)."""

    __slots__ = ("_slots", "_ticket")

    def __init__(self, slots: SendSlots, ticket: int) -> None:
        self._slots = slots
        self._ticket = ticket

    async def __aenter__(self) -> None:
        await self._slots._enter_wire(self._ticket)

    async def __aexit__(self, *exc_info: object) -> None:
        self._slots._release()
