"""Crash recovery: resolving the ledger rows a crash left 'sending', before any lane runs.

Each such row is settled by the best evidence there is, never by a guess that could send a
message twice:

1. the wire journal of this node's previous run (dripd/wire_journal.py), read at start: a row it
   shows claimed but never handed to a transport is released and sent (it never left); a row the
   server accepted (its 250 after the final dot) is recorded sent;
2. else the transport's own lookup (a Sent folder): found is sent, "surely not" is released;
3. else the row is uncertain and not resent (unless ``resend_uncertain``).

A cluster node recovers one mailbox when it takes its lease: those rows were claimed on another
node, or in an earlier life of this one, so its journal is not consulted (rule 2, then 3).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dripd.store.api import Claim, OutboxRow
from dripd.wire_journal import ACCEPTED, CLAIMED

if TYPE_CHECKING:
    from dripd.engine import Engine

log = logging.getLogger("dripd.engine")


async def recover_sending(engine: Engine, mailbox_id: str | None = None) -> int:
    """Resolve the rows left 'sending' (only ``mailbox_id``'s when given); how many stayed uncertain."""
    journal = engine.wire_journal if mailbox_id is None else None
    said = journal.previous() if journal is not None else None
    store = engine.store
    uncertain = 0
    for row in await store.outbox_in_state("sending"):
        if mailbox_id is not None and row.mailbox_id != mailbox_id:
            continue
        if journal is not None and said is None:
            log.info("wire journal %s not usable (missing, damaged or from another boot): rows left 'sending' "
                     "follow the transport's lookup", journal.path)
            journal = None  # said once
        last = said.get((row.enrollment_id, row.step_id)) if said is not None else None
        known = {CLAIMED: False, ACCEPTED: True}.get(last or "")  # a W, or no line: ask the transport
        delivered = known if known is not None else await _lookup(engine, row)
        now = engine.clock.now()
        if delivered is False or (delivered is None and engine.config.current.daemon.resend_uncertain):
            why = "claimed, never handed to the transport (wire journal)," if last == CLAIMED else "not delivered"
            await store.release_claim(row.id, row.enrollment_id, now, now, f"{why} before a crash",
                                      untried=last == CLAIMED)
            log.warning("outbox %s: %s before a crash; will send", row.message_id, why)
            continue
        ctx = await store.run_context(row.enrollment_id)
        step = next((s for s in ctx.steps if s.id == row.step_id), None) if ctx else None
        if ctx is None or step is None:
            await store.resolve_outbox(row.id, "uncertain", "interrupted by a crash; step since deleted", now)
            uncertain += 1
            continue
        cursor_ord, anchor, due = engine.next_after(ctx, step, row.attempted_at)
        if delivered:
            claim = Claim(row.id, row.message_id, 1, row.attempted_at)
            await store.record_sent(claim, row.enrollment_id, row.step_id, cursor_ord, anchor, due, now)
            how = "accepted by the server (wire journal)" if last == ACCEPTED else "found delivered"
            log.info("outbox %s: %s after a crash", row.message_id, how)
        else:
            await store.record_uncertain(row.id, row.enrollment_id, row.step_id, cursor_ord, anchor, due,
                                         "interrupted by a crash; not resent", now)
            uncertain += 1
            log.warning("outbox %s: delivery uncertain after a crash; not resent", row.message_id)
    return uncertain


async def _lookup(engine: Engine, row: OutboxRow) -> bool | None:
    transport = engine.transports.get(row.mailbox_id)
    if transport is None:
        return None
    try:
        return await transport.lookup(row.message_id)
    except Exception:
        log.exception("outbox %s: lookup failed", row.message_id)
        return None
