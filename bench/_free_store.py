"""The engine with its store made free: what a step costs when the store costs nothing.

Not dripd's path and not a design: a measurement for issue 14's decision, which asks for 5,000
steps/s at one step in flight, 0.2 ms a step. bench_dispatch.py's child installs it before the
daemon starts, and the daemon then runs as it does (scheduler, send slots, plan, window, token,
render and build, the wire journal, the hand-over to the null transport, the result's decision,
metrics and events published), except for the three store operations of each step:

- ``run_context`` reads the first enrollment's context once, through the store, and then hands
  every enrollment a copy of it with its own id (the read's statements are gone, the copy stays);
- ``claim_send`` returns a claim made up in memory: no ledger row, no commit, nothing durable;
- ``record_sent`` records nothing.

So no 'sent' row is written and a crash would resend everything. The figure is a bound: the rate
and the trio thread's CPU per step that the engine's own work allows with a store of zero cost.
Beside the plain sqlite3 loop (the same statements and message build with no engine), it says
whether the store or the engine is the limit, and whether the two together can fit 0.2 ms.
"""

from __future__ import annotations

import dataclasses
import itertools

from dripd.store.api import Claim, RunContext
from dripd.store.sqlite import Store


def install() -> None:
    outbox_ids = itertools.count(1)
    first: list[RunContext] = []
    read = Store.run_context

    async def run_context(self: Store, enrollment_id: int) -> RunContext | None:
        if not first:
            ctx = await read(self, enrollment_id)
            if ctx is None:
                return None
            first.append(ctx)
        ctx = first[0]
        return dataclasses.replace(ctx, enrollment=dataclasses.replace(ctx.enrollment, id=enrollment_id))

    async def claim_send(self: Store, enrollment_id: int, step_id: int, mailbox_id: str, message_id: str,
                         subject: str, now: float, variant: str | None = None) -> Claim:
        return Claim(next(outbox_ids), message_id, 1, now, variant)

    async def record_sent(self: Store, claim: Claim, enrollment_id: int, step_id: int, cursor_ord: int,
                          anchor_at: float, due_at: float | None, now: float) -> None:
        return None

    Store.run_context = run_context  # type: ignore[method-assign]
    Store.claim_send = claim_send  # type: ignore[method-assign]
    Store.record_sent = record_sent  # type: ignore[method-assign]
