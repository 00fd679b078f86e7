"""Which claimed sends lost their enrollment while they waited for the wire.

A send is claimed (committed in the ledger) ahead of its place on the wire: up to
``send_slots.claim_places()`` per lane wait for one, and a transport that queues (SMTP) holds a
few more before their transactions begin. A reply, a bounce, an unsubscribe or a cancel
committed meanwhile must still stop it: the product promises to stop a contact the moment they
reply. The claim itself refuses an enrollment that had already ended (``store.api.Refused``);
this watch hears the endings committed after it.

The engine watches a run from before its claim until its message is handed over; the event
stream calls ``on_event`` with every committed event (after its commit, so a watch begun before
the claim hears every ending the claim did not see). A mark is a hint, not a verdict: kinds such
as ``bounced`` are also written for what does not end an enrollment (a soft bounce), so the
engine confirms a mark against the store before it withdraws a send it still holds. A withdrawn
send's claim is released (the row goes back to 'retry', unsent) and its run returns to the lane,
whose fresh read of the enrollment drops it.

Marks are read from the transport's thread too (``ended``): a set's membership test is atomic
under the GIL, and every write happens on the event loop's thread.
"""

from __future__ import annotations

from dripd.events import END_KIND, Event, EventKind

# The events of an ending; a paused sequence stops its claimed sends the same way.
_ENDING_KINDS = frozenset(END_KIND.values())


class EndingWatch:
    """The runs between their claim and the wire, and which of them heard of an ending."""

    def __init__(self) -> None:
        # enrollment id -> (its sequence id, how many of its runs are watched): two runs of one
        # enrollment can overlap (one on a mailbox it was moved from), and one's end must not
        # drop the other's watch.
        self._runs: dict[int, tuple[int, int]] = {}
        self._ended: set[int] = set()

    def watch(self, enrollment_id: int, sequence_id: int) -> None:
        """From before the claim: endings committed from now on mark this run."""
        watched = self._runs.get(enrollment_id)
        self._runs[enrollment_id] = (sequence_id, 1 if watched is None else watched[1] + 1)

    def clear(self, enrollment_id: int) -> None:
        """The mark was a false alarm (the store says the enrollment still runs)."""
        self._ended.discard(enrollment_id)

    def forget(self, enrollment_id: int) -> None:
        """The run's message is on the wire (or it never claimed): nothing can stop it now."""
        watched = self._runs.get(enrollment_id)
        if watched is not None and watched[1] > 1:
            self._runs[enrollment_id] = (watched[0], watched[1] - 1)
            return
        self._runs.pop(enrollment_id, None)
        self._ended.discard(enrollment_id)

    def ended(self, enrollment_id: int) -> bool:
        """Whether an ending (or a pause of its sequence) was committed since the watch began."""
        return enrollment_id in self._ended

    def watched(self) -> int:
        return len(self._runs)

    def on_event(self, event: Event) -> None:
        """An ``EventStream`` listener: cheap, synchronous, one lookup per event."""
        if event.kind in _ENDING_KINDS:
            if event.enrollment_id in self._runs:
                self._ended.add(event.enrollment_id)
        elif event.kind is EventKind.SEQUENCE_PAUSED and event.sequence_id is not None:
            self._ended.update(run for run, (sequence, _) in self._runs.items() if sequence == event.sequence_id)
