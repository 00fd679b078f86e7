"""The store interface: what each consumer may ask of a backend, and the values it gets back.

One Protocol per consumer, so each service is given only the part it uses and a second backend
(PostgreSQL) knows exactly what it must provide: ``DueSource`` for the scheduler's lanes,
``RunStore`` for the engine's send path and crash recovery, ``Catalog`` for control and the API,
``Signals`` for reactions and tracking, ``Reports`` for analytics, stats and status, and
``PluginState`` for the plugins' small durable state. The SQLite backend (``dripd.store.sqlite``)
implements them all; ``tests/contract`` is the suite every backend must pass.

Rules live in ``dripd.policy``; a backend reads and writes facts and asks policy when a write
depends on one (enrollment refusal, auto-complete, how a suppression ends an enrollment). Every
event row is written by the backend's one event writer, and the events of a transaction reach
the ``EventSink`` only after that transaction committed.

A PostgreSQL backend (several nodes sharing the work) touches: ``dripd/store/postgres/`` (the same
operation groups as ``sqlite/``, its own migrations runner, durability from PostgreSQL's own
commit), ``postgresql`` in ``BACKENDS`` and ``open_backend`` of ``tests/contract/support.py`` (the
whole contract suite then runs against it), the composition root choosing the backend from the
configuration, and a mailbox lease with its generation on every ledger write (DESIGN.md), which
adds a parameter to ``RunStore``'s writes. Engine, scheduler, reactions, control and the API
keep talking to these Protocols unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence as Seq

from dripd.cadence import Signals as SignalFlags
from dripd.events import EventKind, Payload
from dripd.model import Action, Contact, Enrollment, EnrollmentStatus, Sequence, SequenceSettings, Step
from dripd.policy import Bounced
from dripd.quick_init import quick_init
from dripd.variants import Tally

# -- values ----------------------------------------------------------------------------------


class LeaseFence(Protocol):
    """What a node holds: given to a shared-database backend when it is opened.

    ``token(mailbox_id)`` is ``(node_id, generation)`` of the lease this node holds on the
    mailbox, or None when it holds none. A backend given a fence checks that token against the
    ``mailbox_leases`` row inside every ledger write for the mailbox (claim, result, resolution)
    and raises ``dripd.errors.FencedOut`` when the row no longer matches or has expired by the
    database's clock: a node cut off from the database cannot send past its lease. One node
    (SQLite) has no fence.
    """

    def token(self, mailbox_id: str) -> tuple[str, int] | None: ...



@quick_init
@dataclass(frozen=True)
class DueRow:
    enrollment_id: int
    next_run_at: float
    followup: bool  # already sent at least one email: goes first when caps are tight


@quick_init
@dataclass(frozen=True)
class RunContext:
    """Everything the engine needs to decide and render one enrollment's next step."""

    enrollment: Enrollment
    sequence: Sequence
    steps: list[Step]
    contact: Contact
    thread: list[tuple[str, str]]  # (Message-ID, subject) of emails already sent, in order
    signals: SignalFlags
    suppressed: str | None  # the suppression reason when the address may not be mailed
    variants: Mapping[int, str] = field(default_factory=dict)  # step id -> A/B variant pinned on the ledger


@quick_init
@dataclass(frozen=True)
class Claim:
    """A committed (and durable) ledger row: the step may now be handed to the transport."""

    outbox_id: int
    message_id: str
    attempts: int
    first_attempt_at: float
    variant: str | None = None  # the A/B variant pinned on the row (a retry keeps the first choice)
    # (subject, HTML, text) handed to the transport: written on the row with the attempt's result
    content: tuple[str, str, str] | None = None

    def with_content(self, content: tuple[str, str, str]) -> "Claim":
        """This claim with what was handed over. ``dataclasses.replace`` looks every field up
        again: 1.8 us against 0.6 per send (issue 14)."""
        return Claim(self.outbox_id, self.message_id, self.attempts, self.first_attempt_at, self.variant, content)


class Refused(enum.Enum):
    """Why ``claim_send`` made no claim: nothing may be handed to the transport."""

    IN_LEDGER = "the ledger already holds the step (sent, in flight or uncertain)"
    # The enrollment ended (it replied, bounced, unsubscribed or was cancelled) or its sequence is
    # not active (paused): nothing of it may go out now.
    NOT_RUNNABLE = "the enrollment has ended or its sequence is not active"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    enrollment_id: int
    step_id: int
    mailbox_id: str
    message_id: str
    status: str
    attempted_at: float


@dataclass(frozen=True)
class SentRef:
    """A message dripd sent, found by its Message-ID."""

    outbox_id: int
    enrollment_id: int
    step_id: int
    sequence_id: int
    contact_email: str
    enrollment_status: str


@dataclass(frozen=True)
class TrackedMessage:
    """A message dripd sent, as a tracking hit finds it by its Message-ID."""

    outbox_id: int
    enrollment_id: int
    step_id: int
    sequence_id: int
    mailbox_id: str
    contact_email: str
    enrollment_status: str
    sent_at: float


@dataclass(frozen=True)
class MessageFacts:
    """One ledger row and the kinds of event recorded against it."""

    outbox_id: int
    step_id: int
    status: str  # sending | sent | retry | failed | uncertain
    sent_at: float
    kinds: frozenset[str]  # unflagged event kinds
    flagged: frozenset[str]  # kinds seen only as flagged hits
    mailbox_id: str = ""  # the mailbox it went out from (rotation spreads a sequence over several)
    variant: str | None = None  # the A/B variant it was sent as


@dataclass(frozen=True)
class ContactInput:
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    fields: Mapping[str, str] | None = None


@dataclass(frozen=True)
class EnrollResult:
    enrolled: list[int]  # enrollment ids
    skipped: list[dict[str, Any]]  # {"contactId", "email", "reason", "message"}


@dataclass(frozen=True)
class BulkResult:
    enrolled: int
    skipped: list[dict[str, Any]]  # {"pos", "email", "reason", "message"}


@dataclass(frozen=True)
class ContactProgress:
    contact_id: int
    enrollment_id: int
    email: str
    status: str
    cursor_ord: int
    next_run_at: float | None
    due_at: float | None
    last_event_at: float | None
    enrolled_at: float
    sent_count: int
    mailbox_id: str | None = None  # the mailbox its sends come from (a rotation pool's member)
    end_reason: str | None = None  # why it ended (a failed step's reason, "cancelled by request", ...)
    retry_detail: str | None = None  # its current step failed for now and waits to be retried: why
    retry_attempts: int = 0


BulkRow = tuple[int, ContactInput, Mapping[str, str]]  # (position in the upload, contact, merge fields)


# -- consumers -------------------------------------------------------------------------------


class Lifecycle(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...


class DueSource(Protocol):
    """What the scheduler's lanes read: due work by keyset, send history for the caps."""

    async def due_for_mailbox(self, mailbox_id: str, after: tuple[float, int], until: float, limit: int
                              ) -> list[DueRow]: ...
    async def send_history(self, mailbox_id: str, since: float) -> list[float]: ...
    async def first_email_history(self, mailbox_id: str, since: float) -> list[float]: ...
    async def prune_send_log(self, before: float) -> None: ...
    async def mailbox_paused(self, mailbox_id: str) -> str | None: ...


class RunStore(Protocol):
    """The engine's send path and crash recovery. Every write that ends an enrollment returns
    the id of a sequence it auto-completed (None otherwise)."""

    async def run_context(self, enrollment_id: int) -> RunContext | None: ...
    async def set_plan(self, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float, now: float
                       ) -> bool: ...
    async def finish(self, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
                     ) -> int | None: ...
    async def claim_send(self, enrollment_id: int, step_id: int, mailbox_id: str, message_id: str, subject: str,
                         now: float, variant: str | None = None) -> Claim | Refused: ...
    async def variant_tallies(self, step_id: int) -> dict[str, Tally]: ...
    async def record_sent(self, claim: Claim, enrollment_id: int, step_id: int, cursor_ord: int, anchor_at: float,
                          due_at: float | None, now: float) -> int | None: ...
    async def record_retry(self, claim: Claim, enrollment_id: int, step_id: int, due_at: float, detail: str,
                           now: float) -> None: ...
    async def record_bounced(self, claim: Claim, enrollment_id: int, step_id: int, bounce: Bounced, email: str,
                             now: float) -> int | None: ...
    async def record_unbuildable(self, claim: Claim, enrollment_id: int, step_id: int, reason: str, now: float
                                 ) -> int | None: ...
    async def record_uncertain(self, outbox_id: int, enrollment_id: int, step_id: int, cursor_ord: int,
                               anchor_at: float, due_at: float | None, detail: str, now: float,
                               content: tuple[str, str, str] | None = None) -> int | None: ...
    async def release_claim(self, outbox_id: int, enrollment_id: int, due_at: float, now: float, detail: str,
                            *, untried: bool = False) -> None: ...
    async def resolve_outbox(self, outbox_id: int, status: str, detail: str, now: float) -> None: ...
    async def outbox_in_state(self, status: str) -> list[OutboxRow]: ...
    async def set_mailbox_paused(self, mailbox_id: str, reason: str | None, now: float) -> None: ...
    async def mailbox_resumed_at(self, mailbox_id: str) -> float | None: ...
    async def mailbox_paused(self, mailbox_id: str) -> str | None: ...
    async def sequence_hard_bounces(self, sequence_id: int, last_sends: int) -> tuple[int, int]: ...
    async def mailbox_hard_bounces(self, mailbox_id: str, since: float) -> tuple[int, int]: ...
    async def get_sequence(self, sequence_id: int) -> tuple[Sequence, list[Step]]: ...
    async def transition_sequence(self, sequence_id: int, action: Action, now: float, reason: str | None = None
                                  ) -> Sequence: ...


class Catalog(Protocol):
    """Sequences, steps, contacts, lists and enrollments: control and the API."""

    async def create_sequence(self, settings: SequenceSettings, steps: list[Step], now: float) -> Sequence: ...
    async def get_sequence(self, sequence_id: int) -> tuple[Sequence, list[Step]]: ...
    async def find_sequence(self, name: str) -> Sequence | None: ...
    async def list_sequences(self, name: str | None = None) -> list[Sequence]: ...
    async def update_sequence(self, sequence_id: int, settings: SequenceSettings, now: float) -> Sequence: ...
    async def transition_sequence(self, sequence_id: int, action: Action, now: float, reason: str | None = None
                                  ) -> Sequence: ...
    async def clone_sequence(self, sequence_id: int, name: str | None, now: float) -> Sequence: ...
    async def add_step(self, sequence_id: int, step: Step, now: float) -> list[Step]: ...
    async def replace_step(self, sequence_id: int, index: int, step: Step, now: float) -> list[Step]: ...
    async def delete_step(self, sequence_id: int, index: int, now: float) -> list[Step]: ...
    async def step_counts(self) -> dict[int, int]: ...
    async def rollups(self, sequence_ids: list[int] | None = None) -> dict[int, dict[str, int]]: ...

    async def create_contact(self, contact: ContactInput, now: float) -> Contact: ...
    async def get_contact(self, contact_id: int) -> Contact: ...
    async def find_contact(self, email: str) -> Contact | None: ...
    async def search_contacts(self, email_part: str, limit: int, offset: int) -> list[Contact]: ...
    async def update_contact(self, contact_id: int, changes: Mapping[str, Any], now: float) -> Contact: ...
    async def delete_contact(self, contact_id: int, now: float) -> None: ...
    async def ensure_contacts(self, contacts: list[ContactInput], now: float) -> list[int]: ...
    async def create_list(self, name: str, now: float) -> int: ...
    async def get_list(self, list_id: int) -> tuple[str, list[Contact]]: ...
    async def find_list(self, name: str) -> int | None: ...
    async def list_lists(self) -> list[tuple[int, str, int]]: ...
    async def list_ids(self, list_id: int) -> list[int]: ...
    async def change_list(self, list_id: int, add: Iterable[int], remove: Iterable[int]) -> None: ...
    async def delete_list(self, list_id: int) -> None: ...

    async def enroll(self, sequence_id: int, contacts: list[ContactInput | int],
                     merge_fields: list[Mapping[str, str]] | None, now: float, *, strict: bool,
                     mailboxes: Seq[str] | None = None) -> EnrollResult: ...
    async def bulk_enroll(self, sequence_id: int, rows: Seq[BulkRow], now: float, *, strict: bool,
                          mailboxes: Seq[str] | None = None) -> BulkResult: ...
    async def cancel_enrollment(self, sequence_id: int, contact_id: int, now: float) -> int | None: ...
    async def sequence_contacts(self, sequence_id: int) -> list[ContactProgress]: ...
    async def latest_enrollment(self, sequence_id: int, contact_id: int) -> int | None: ...
    async def first_emails_waiting(self, sequence_id: int) -> dict[str, int]: ...
    async def run_context(self, enrollment_id: int) -> RunContext | None: ...  # the API's preview

    async def set_mailbox_paused(self, mailbox_id: str, reason: str | None, now: float) -> None: ...
    async def suppress(self, email: str, reason: str, detail: str | None, now: float) -> list[int]: ...
    async def unsuppress(self, email: str) -> bool: ...
    async def suppressions(self, reason: str | None = None) -> list[dict[str, Any]]: ...


class Signals(Protocol):
    """Reactions and tracking: find what was sent, record what came back, stop and delay."""

    async def sent_by_message_ids(self, message_ids: list[str]) -> list[SentRef]: ...
    async def latest_sent_to(self, mailbox_id: str, email: str, active_only: bool) -> list[SentRef]: ...
    async def message_ids_for_contact(self, contact_id: int) -> list[str]: ...
    async def tracked_message(self, message_id: str) -> TrackedMessage | None: ...
    async def hit_seen(self, outbox_id: int, kind: EventKind, agent_like: str) -> bool: ...
    async def record_signal(self, ref: SentRef, kind: EventKind, now: float, payload: Payload,
                            end_as: EnrollmentStatus | None = None) -> int | None: ...
    async def suppress(self, email: str, reason: str, detail: str | None, now: float) -> list[int]: ...
    async def unsuppress(self, email: str) -> bool: ...
    async def suppression_reason(self, email: str) -> str | None: ...
    async def suppressions(self, reason: str | None = None) -> list[dict[str, Any]]: ...
    async def delay_enrollment(self, enrollment_id: int, until: float, now: float) -> bool: ...
    async def active_in_sequence_at_domain(self, sequence_id: int, domain: str) -> list[int]: ...
    async def finish(self, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
                     ) -> int | None: ...
    async def get_sequence(self, sequence_id: int) -> tuple[Sequence, list[Step]]: ...
    async def transition_sequence(self, sequence_id: int, action: Action, now: float, reason: str | None = None
                                  ) -> Sequence: ...
    async def sequence_hard_bounces(self, sequence_id: int, last_sends: int) -> tuple[int, int]: ...
    async def mailbox_hard_bounces(self, mailbox_id: str, since: float) -> tuple[int, int]: ...


class Reports(Protocol):
    """Read-only: analytics, stats, status and metrics."""

    async def sequence_message_facts(self, sequence_id: int) -> list[MessageFacts]: ...
    async def mailbox_message_facts(self, mailbox_id: str, since: float, until: float) -> list[MessageFacts]: ...
    async def all_steps(self, sequence_id: int) -> list[dict[str, Any]]: ...
    async def contact_history(self, sequence_id: int, contact_id: int) -> dict[str, list[dict[str, Any]]]: ...
    async def count_outbox(self, status: str) -> int: ...
    async def queue_depth(self, until: float) -> int: ...
    async def rollups(self, sequence_ids: list[int] | None = None) -> dict[int, dict[str, int]]: ...
    async def step_counts(self) -> dict[int, int]: ...


class PluginState(Protocol):
    """Small durable state for plugins (an IMAP detector's UIDVALIDITY and last UID)."""

    async def plugin_state_get(self, key: str) -> str | None: ...
    async def plugin_state_set(self, key: str, value: str) -> None: ...


class FullStore(Lifecycle, DueSource, RunStore, Catalog, Signals, Reports, PluginState, Protocol):
    """Everything a backend provides; the composition root hands out the narrow views."""
