"""A lane's two-stage send slots (dripd/send_slots.py) in simulated time: claims are made ahead
of the wire, at most ``claim_places(total)`` of them, and both stages keep the lane's dispatch
order."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
import trio

from dripd.parallelism import HANDED_PER_CONNECTION
from dripd.parallelism import MIN_WORKERS, WORKERS_PER_SLOT
from dripd.send_slots import CLAIMS_AHEAD_PER_PLACE, MIN_CLAIM_PLACES, SendSlots, claim_places


@dataclass
class Watch:
    """What the tickets did, and the most each stage ever held."""

    slots: SendSlots
    bound: int = 0  # the most places a stage may hold (the largest total in effect)
    claimed: list[int] = field(default_factory=list)  # tickets, as their claim turn came
    wired: list[int] = field(default_factory=list)  # tickets, as they went on the wire
    claim_times: dict[int, float] = field(default_factory=dict)
    wire_times: dict[int, float] = field(default_factory=dict)
    most_claimed: int = 0
    most_busy: int = 0

    def look(self) -> None:
        bound = self.bound or self.slots.total
        assert self.slots.claimed <= claim_places(bound) and self.slots.busy <= bound
        self.most_claimed = max(self.most_claimed, self.slots.claimed)
        self.most_busy = max(self.most_busy, self.slots.busy)


def in_order(times: dict[int, float], count: int) -> None:
    """Every ticket got its turn, and none before an older one (tickets granted at the same
    moment wake in any order: the order is in the grant times)."""
    assert sorted(times) == list(range(count))
    assert [times[ticket] for ticket in range(count)] == sorted(times.values())


async def send(watch: Watch, ticket: int, prepare: float, claim: float, wire: float, *, sends: bool = True) -> None:
    """One worker as the engine runs it: prepare, claim turn, (gate,) claim, wire, withdraw."""
    slots = watch.slots
    try:
        await trio.sleep(prepare)
        await slots.claim_turn(ticket)
        watch.claimed.append(ticket)
        watch.claim_times[ticket] = trio.current_time()
        watch.look()
        slots.gated(ticket)  # the engine's gate check, passed or not
        if not sends:
            return  # the gate said no: it withdraws below
        await trio.sleep(claim)  # the durable commit
        async with slots.on_the_wire(ticket):
            watch.wired.append(ticket)
            watch.wire_times[ticket] = trio.current_time()
            watch.look()
            await trio.sleep(wire)
    finally:
        slots.withdraw(ticket)


async def test_claims_go_ahead_of_the_wire_and_both_stages_keep_the_order(autojump_clock: trio.abc.Clock) -> None:
    rng = random.Random(14)
    watch = Watch(SendSlots(3))
    async with trio.open_nursery() as nursery:
        for _ in range(40):
            ticket = watch.slots.issue()
            nursery.start_soon(send, watch, ticket, rng.uniform(0, 0.02), rng.uniform(0.001, 0.003),
                               rng.uniform(0.005, 0.02))
    in_order(watch.claim_times, 40)
    in_order(watch.wire_times, 40)
    assert watch.most_busy == 3  # the wire is full
    # and the claim stage is full, waiting for it: at most 3 + 16 rows 'sending'
    assert watch.most_claimed == claim_places(3) == MIN_CLAIM_PLACES
    assert (watch.slots.claimed, watch.slots.busy) == (0, 0)


async def test_tickets_pass_the_gate_one_at_a_time_in_their_order(autojump_clock: trio.abc.Clock) -> None:
    # The gate takes the send token. Tickets granted their claim turns together would wake in
    # any order, and a later one could take the token an earlier one was waiting for (a contact
    # sent a throttle slot late: tests/integration/test_simulated_cadence.py caught it).
    slots = SendSlots(2)
    through_the_gate: list[int] = []

    async def one(ticket: int) -> None:
        try:
            await slots.claim_turn(ticket)
            through_the_gate.append(ticket)
            slots.gated(ticket)
            await trio.sleep(0.001)  # the claim's commit, beside the next tickets' gate checks
            async with slots.on_the_wire(ticket):
                await trio.sleep(0.01)
        finally:
            slots.withdraw(ticket)

    async with trio.open_nursery() as nursery:
        for _ in range(40):
            nursery.start_soon(one, slots.issue())
    assert through_the_gate == list(range(40))
    assert (slots.claimed, slots.busy) == (0, 0)


async def test_each_places_time_goes_to_what_the_next_send_was_waiting_for(autojump_clock: trio.abc.Clock) -> None:
    # Two places. The first send prepares 1 s, claims 2 s, is on the wire 4 s; the second
    # prepares 5 s, claims 1 s, is on the wire 1 s. Place-seconds, per interval:
    #   0-1 both free, the oldest preparing: prepare 2 | 1-3 both free, it claims: claim 4
    #   3-5 one on the wire, the next preparing: wire 2, prepare 2 | 5-6 the next claims: wire 1,
    #   claim 1 | 6-7 both on the wire: wire 2 | 7-10 nothing under way: idle 6.
    start = trio.current_time()
    watch = Watch(SendSlots(2))
    async with trio.open_nursery() as nursery:
        first, second = watch.slots.issue(), watch.slots.issue()
        nursery.start_soon(send, watch, first, 1.0, 2.0, 4.0)
        nursery.start_soon(send, watch, second, 5.0, 1.0, 1.0)
    assert trio.current_time() == start + 7
    await trio.sleep_until(start + 10)
    assert watch.slots.seconds() == {"on_the_wire": 5.0, "waiting_for_claim": 5.0, "waiting_for_prepare": 4.0,
                                     "idle": 6.0}


async def test_without_claiming_ahead_no_more_rows_are_sending_than_are_on_the_wire(
        autojump_clock: trio.abc.Clock) -> None:
    # A cluster node keeps no wire journal: a claim waits for a free place on the wire.
    rng = random.Random(15)
    watch = Watch(SendSlots(3, ahead=False))
    most_sending = 0

    async def sending_now() -> None:
        nonlocal most_sending
        while True:
            most_sending = max(most_sending, watch.slots.claimed + watch.slots.busy)
            await trio.sleep(0.0005)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sending_now)
        async with trio.open_nursery() as senders:
            for _ in range(30):
                senders.start_soon(send, watch, watch.slots.issue(), rng.uniform(0, 0.02), 0.002, 0.01)
        nursery.cancel_scope.cancel()
    in_order(watch.wire_times, 30)
    assert most_sending == 3 and watch.most_busy == 3


async def test_a_slow_ticket_holds_later_ones_back_in_each_stage(autojump_clock: trio.abc.Clock) -> None:
    watch = Watch(SendSlots(2))
    async with trio.open_nursery() as nursery:
        first = watch.slots.issue()
        second = watch.slots.issue()
        nursery.start_soon(send, watch, first, 5.0, 0.001, 0.01)  # still preparing at 0..5 s
        nursery.start_soon(send, watch, second, 0.0, 0.001, 0.01)
        await trio.sleep(1.0)
        assert watch.claimed == []  # ready first, but it does not overtake
        third = watch.slots.issue()
        nursery.start_soon(send, watch, third, 0.0, 9.0, 0.01)  # its claim commits slowly
        fourth = watch.slots.issue()
        nursery.start_soon(send, watch, fourth, 0.0, 0.001, 0.01)
    in_order(watch.claim_times, 4)
    in_order(watch.wire_times, 4)
    assert watch.wire_times[3] >= 9.0  # behind the slow claim of ticket 2


async def test_withdrawn_tickets_give_their_place_up(autojump_clock: trio.abc.Clock) -> None:
    watch = Watch(SendSlots(1))
    async with trio.open_nursery() as nursery:
        nothing = watch.slots.issue()  # its run sends nothing (ended, held): it withdraws while preparing
        last = watch.slots.issue()
        nursery.start_soon(send, watch, last, 0.0, 0.001, 0.01)
        await trio.sleep(1.0)
        assert watch.claimed == []  # held behind the one preparing
        watch.slots.withdraw(nothing)
    assert watch.wired == [last]

    watch = Watch(SendSlots(1))
    async with trio.open_nursery() as nursery:
        refused = watch.slots.issue()  # the gate says no after its claim turn: no claim is made
        nursery.start_soon(lambda: send(watch, refused, 0.0, 0.0, 0.0, sends=False))
        # One more than the claim stage holds: the last gets its turn only from the refused one.
        after = [watch.slots.issue() for _ in range(claim_places(1))]
        for ticket in after:
            nursery.start_soon(send, watch, ticket, 0.0, 0.001, 0.01)
    assert sorted(watch.claimed) == [refused, *after] and watch.wired == after
    in_order(watch.claim_times, 1 + claim_places(1))
    watch.slots.withdraw(after[-1])  # a ticket already through both stages is left alone
    assert (watch.slots.claimed, watch.slots.busy) == (0, 0)


async def test_a_reload_resizes_both_stages(autojump_clock: trio.abc.Clock) -> None:
    small, large = claim_places(4), claim_places(6)
    assert small < large  # above the floor: four claim places per wire place
    watch = Watch(SendSlots(4), bound=6)
    async with trio.open_nursery() as nursery:
        for _ in range(40):
            nursery.start_soon(send, watch, watch.slots.issue(), 0.0, 0.001, 10.0)
        await trio.sleep(1.0)
        assert (watch.slots.busy, watch.slots.claimed) == (4, small)
        watch.slots.resize(6)  # more connections: granted at once, on the wire and ahead of it
        await trio.sleep(1.0)
        assert (watch.slots.busy, watch.slots.claimed) == (6, large)
        watch.slots.resize(4)  # fewer: those holding places finish, no new claim until under it
        await trio.sleep(8.5)  # the first four sends ended at 10 s: two take their places
        assert (watch.slots.busy, watch.slots.claimed) == (4, large - 2)
        await trio.sleep(1.0)  # the two added at 1 s ended at 11 s: two go on, no claim is added
        assert (watch.slots.busy, watch.slots.claimed) == (4, large - 4)
    in_order(watch.wire_times, 40)
    assert watch.most_busy == 6


async def test_a_lane_with_one_place_still_claims_ahead_to_the_floor(
        autojump_clock: trio.abc.Clock) -> None:
    # One send in flight (a Maildir mailbox, or the null transport): the claim stage is not
    # 4 but the floor, 16 places; one SMTP connection has more (HANDED_PER_CONNECTION x 4).
    assert claim_places(1) == MIN_CLAIM_PLACES == 16 < claim_places(HANDED_PER_CONNECTION)
    assert MIN_WORKERS == WORKERS_PER_SLOT * 4  # and the workers to fill them
    watch = Watch(SendSlots(1))
    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(send, watch, watch.slots.issue(), 0.0, 0.001, 1.0)
        await trio.sleep(0.5)
        assert (watch.slots.busy, watch.slots.claimed) == (1, MIN_CLAIM_PLACES)
    in_order(watch.claim_times, 30)
    in_order(watch.wire_times, 30)
    assert watch.most_claimed == MIN_CLAIM_PLACES


@pytest.mark.parametrize("stage", ["claim", "wire"])
async def test_a_cancelled_ticket_leaks_no_place(autojump_clock: trio.abc.Clock, stage: str) -> None:
    watch = Watch(SendSlots(1))
    # Claimed ahead and waiting for the wire: the whole claim stage, or all of it but one place.
    ahead = claim_places(1) if stage == "claim" else claim_places(1) - 1
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, watch, watch.slots.issue(), 0.0, 0.0, 5.0)  # on the wire until 5 s
        for _ in range(ahead):
            nursery.start_soon(send, watch, watch.slots.issue(), 0.0, 0.0, 5.0)
        victim = watch.slots.issue()
        scope = trio.CancelScope()
        nursery.start_soon(cancellable, scope, watch, victim)
        await trio.sleep(1.0)
        # waiting for its claim turn behind a full claim stage, or claimed and waiting for the wire
        assert watch.slots.claimed == claim_places(1) and victim not in watch.wired
        assert (victim in watch.claimed) is (stage == "wire")
        scope.cancel()
        last = watch.slots.issue()
        nursery.start_soon(send, watch, last, 0.0, 0.0, 1.0)
    assert watch.wired == [*range(1 + ahead), last]
    assert (watch.slots.claimed, watch.slots.busy) == (0, 0)


async def cancellable(scope: trio.CancelScope, watch: Watch, ticket: int) -> None:
    with scope:
        await send(watch, ticket, 0.0, 0.0, 1.0)


def test_asking_out_of_turn_is_a_bug_that_says_so() -> None:
    slots = SendSlots(1)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="has no claim waiting for the wire"):
            async with slots.on_the_wire(slots.issue()):
                pass
        with pytest.raises(RuntimeError, match="is not preparing to claim"):
            await slots.claim_turn(99)

    trio.run(main)


async def test_a_turn_granted_at_once_takes_no_scheduler_pass(autojump_clock: trio.abc.Clock) -> None:
    # Each pass of trio's scheduler is Python work on the event loop's thread, per send (issue 14):
    # a stage with room grants the ticket and returns without yielding; one without room waits.
    slots = SendSlots(1)
    first, second = slots.issue(), slots.issue()
    with trio.testing.assert_no_checkpoints():
        await slots.claim_turn(first)
        slots.gated(first)
        await slots.claim_turn(second)  # the claim stage has room for more than one
        slots.gated(second)
    went: list[tuple[int, float]] = []

    async def wire(ticket: int) -> None:
        async with slots.on_the_wire(ticket):
            went.append((ticket, trio.current_time()))
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        holding = slots.on_the_wire(first)
        with trio.testing.assert_no_checkpoints():
            await holding.__aenter__()  # the one place is free
        nursery.start_soon(wire, second)  # waits for it
        await trio.sleep(2.0)
        assert went == [] and slots.busy == 1
        await holding.__aexit__(None, None, None)  # the first leaves the wire
    assert went == [(second, 2.0)] and (slots.busy, slots.claimed) == (0, 0)


async def test_an_error_on_the_wire_gives_the_place_back_and_goes_on(autojump_clock: trio.abc.Clock) -> None:
    slots = SendSlots(1)
    first, second = slots.issue(), slots.issue()
    await slots.claim_turn(first)
    slots.gated(first)
    with pytest.raises(ValueError, match="the transport failed"):
        async with slots.on_the_wire(first):
            assert slots.busy == 1
            raise ValueError("the transport failed")
    assert slots.busy == 0
    slots.withdraw(first)
    await slots.claim_turn(second)  # the next ticket is not held back by it
    slots.gated(second)
    async with slots.on_the_wire(second):
        assert slots.busy == 1
    assert (slots.busy, slots.claimed) == (0, 0)
