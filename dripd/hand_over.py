"""Handing a claimed message to its mailbox's transport, with the wire journal's lines around it.

The engine claims a step (dripd/engine.py), then this hands the built message over and returns
the transport's answer. What the wire journal records, and when, is decided here: recovery
(dripd/recovery.py) reads it to tell a claim that never left from one that may have.

A send is withdrawn instead of handed over when, since its claim, its mailbox or its sequence was
paused or its enrollment ended (dripd/endings.py); a transport that queues (``reports_on_wire``)
asks again as the message's transaction begins.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable, MutableMapping

import trio

from dripd.clock import Clock
from dripd.endings import EndingWatch
from dripd.hookspecs import OutgoingMessage, SendOutcome, SendResult, Transport
from dripd.metrics import Metrics
from dripd.wire_journal import Row, WireJournal

log = logging.getLogger("dripd.engine")


class Withdrawn(Exception):
    """Not handed over: since the claim, the mailbox or the sequence was paused or the enrollment ended."""


class HandOver:
    def __init__(self, transports: MutableMapping[str, Transport], clock: Clock, metrics: Metrics,
                 wire_journal: WireJournal | None, endings: EndingWatch) -> None:
        self.transports = transports  # the composition root's map: a reload swaps entries in it
        self.clock = clock
        self.metrics = metrics
        self.wire_journal = wire_journal  # which claimed rows reached a transport (None: not kept)
        self.endings = endings

    def hands_ahead(self, mailbox_id: str) -> bool:
        """Whether the mailbox's lane may hand its transport more sends than it carries at once:
        the transport says when each begins (``reports_on_wire``) and the journal keeps it."""
        transport = self.transports.get(mailbox_id)
        return self.wire_journal is not None and getattr(transport, "reports_on_wire", False) is True

    async def send(self, mailbox_id: str, recipient: str, sender: str, message_id: str, data: bytes, row: Row,
                   paused: Callable[[], bool]) -> SendResult:
        """Hand the claimed message to the transport and return its answer; raises Withdrawn
        when the transport queued it and, before its transaction began, the mailbox was paused
        or the run of the enrollment (``row[0]``) heard of an ending or of its sequence's pause."""
        journal = self.wire_journal
        withdrawn = False
        on_wire: Callable[[], bool] | None = None
        on_accepted: Callable[[], None] | None = None
        ended = self.endings.ended
        if journal is not None and self.hands_ahead(mailbox_id):
            # The transport may queue the message first: the journal's lines follow its
            # transaction instead, W as it begins (unless it was withdrawn meanwhile), A as the
            # server accepts it, both written from the transport's thread.
            def begins() -> bool:
                nonlocal withdrawn
                withdrawn = paused() or ended(row[0])
                if not withdrawn:
                    journal.handed(row)
                return not withdrawn

            on_wire, on_accepted = begins, functools.partial(journal.accepted, row)
        elif journal is not None:
            journal.handed(row)  # before the transport has it: recovery must never resend it
        message = OutgoingMessage(mailbox_id, message_id, sender, recipient, data, on_wire=on_wire,
                                  on_accepted=on_accepted)
        started = self.clock.now()
        result = await self._transport_send(mailbox_id, message)
        if withdrawn:
            raise Withdrawn
        if journal is not None and on_accepted is None and result.outcome is SendOutcome.ACCEPTED:
            journal.accepted(row)  # while it still holds its place on the wire
        log.debug("enrollment %d step %d: mailbox %s transport answered %s (%s)", row[0], row[1], mailbox_id,
                  result.outcome.value, result.detail)
        self.metrics.observe_send_latency(mailbox_id, max(0.0, self.clock.now() - started))
        return result

    async def _transport_send(self, mailbox_id: str, message: OutgoingMessage) -> SendResult:
        transport = self.transports[mailbox_id]
        try:
            return await transport.send(message)
        except trio.Cancelled:
            raise
        except Exception as exc:
            # A transport that raised may or may not have handed the message over: never guess.
            log.exception("mailbox %s: transport raised while sending %s", mailbox_id, message.message_id)
            return SendResult(SendOutcome.UNCERTAIN, f"transport error: {type(exc).__name__}: {exc}")
