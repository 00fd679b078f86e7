"""Runs one due enrollment: plan -> render -> ledger row -> transport -> record -> plan next.

Everything is re-checked at the moment a step is about to go (status, window, suppression,
caps), not only when it was scheduled. Times recorded are the decision time ``now``, taken
before any await, so a simulated clock gives exact, repeatable send times. What a send's result
means is decided by ``policy``; the engine applies it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Callable, MutableMapping, assert_never

from dripd import cadence, policy, render, variants
from dripd.clock import Clock
from dripd.config import LiveConfig, MailboxConfig
from dripd.endings import EndingWatch
from dripd.engagement import Engagement, MessageRef
from dripd.errors import StoreError
from dripd.hand_over import HandOver, Withdrawn
from dripd.hookspecs import SendResult, Transport
from dripd.metrics import Counters, Metrics
from dripd.model import EnrollmentStatus, SequenceStatus, Step
from dripd.quick_init import quick_init
from dripd.recovery import recover_sending
from dripd.safeguards import Safeguards
from dripd.scheduler import Gate, RunResult, RunStatus, Scheduler
from dripd.steps import step_label, with_variant
from dripd.store.api import Claim, Refused, RunContext, RunStore
from dripd.window import SendWindow
from dripd.wire_journal import WireJournal

log = logging.getLogger("dripd.engine")

HeaderSource = Callable[[str, int, int], list[tuple[str, str]]]  # (mailbox, sequence, step ids) -> plugins' headers


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Prepared:
    """A send made ready before its slot: what its ledger row will say and the built message."""

    variant: str | None
    subject: str
    message_id: str
    built: tuple[render.Rendered, bytes] | None


class Engine:
    def __init__(
        self, config: LiveConfig, store: RunStore, transports: MutableMapping[str, Transport], scheduler: Scheduler,
        clock: Clock, *, metrics: Metrics, engagement: Engagement, safeguards: Safeguards,
        extra_headers: HeaderSource, rng: random.Random | None = None, wire_journal: WireJournal | None = None,
        endings: EndingWatch,
    ) -> None:
        self.config = config
        self.store = store
        self.transports = transports  # the composition root's map: a reload swaps entries in it
        self.scheduler = scheduler
        self.clock = clock
        self.metrics = metrics
        self.engagement = engagement
        self.safeguards = safeguards
        self.extra_headers = extra_headers
        self.counters = Counters()
        self.wire_journal = wire_journal  # which claimed rows reached a transport (None: not kept)
        self.endings = endings  # fed by the event stream (dripd/root.py)
        self.hand_over = HandOver(transports, clock, metrics, wire_journal, self.endings)
        self._rng = rng or random.Random()
        self._templates = render.StepTemplates()
        self._windows: dict[tuple[object, ...], SendWindow] = {}
        self._tallies: dict[int, tuple[float, dict[str, variants.Tally]]] = {}

    # -- one due enrollment ------------------------------------------------------------------

    async def run(self, enrollment_id: int, gate: Gate) -> RunResult:
        now = self.clock.now()
        ctx = await self.store.run_context(enrollment_id)
        if ctx is None or not _runnable(ctx):
            return RunResult(RunStatus.DROPPED)  # ended, or held: start/resume makes it runnable again
        mailbox = self.config.current.mailbox(ctx.enrollment.mailbox_id)
        if mailbox is None:
            log.warning("enrollment %d: mailbox %r is not configured; holding it", enrollment_id,
                        ctx.enrollment.mailbox_id)
            return RunResult(RunStatus.DROPPED)
        if ctx.suppressed is not None:
            status = policy.suppression_end_status(ctx.suppressed)
            self._completed(await self.store.finish(enrollment_id, status, f"address {ctx.suppressed}", now))
            return RunResult(RunStatus.DONE)
        enrollment = ctx.enrollment
        anchor = enrollment.anchor_at if enrollment.anchor_at is not None else enrollment.enrolled_at
        plan = cadence.plan(ctx.steps, enrollment.cursor_ord, anchor, now, self.window(ctx), ctx.signals)
        if isinstance(plan, cadence.Finish):
            self._completed(await self.store.finish(enrollment_id, EnrollmentStatus.COMPLETED, None, now))
            return RunResult(RunStatus.DONE)
        followup = enrollment.sent_count > 0
        if isinstance(plan, cadence.Wake):
            if (plan.cursor_ord, plan.anchor_at, plan.at) != (enrollment.cursor_ord, anchor, enrollment.due_at):
                if not await self.store.set_plan(enrollment_id, plan.cursor_ord, plan.anchor_at, plan.at, now):
                    return RunResult(RunStatus.DROPPED)
            self.scheduler.schedule(mailbox.id, enrollment_id, plan.at, followup)
            return RunResult(RunStatus.DONE)
        unsendable = self.recipient_problem(ctx)
        if unsendable is not None:
            # Before the gate: a message that cannot be addressed takes no token, so the day's
            # count holds only sends that were made (data stored before the API refused it).
            log.error("enrollment %d %s: failed: %s", enrollment_id, step_label(ctx.steps, plan.step.id), unsendable)
            self._completed(await self.store.finish(enrollment_id, EnrollmentStatus.FAILED, unsendable, now))
            self.counters.failed += 1
            return RunResult(RunStatus.DONE)
        due_at = enrollment.due_at if enrollment.due_at is not None else now
        # Two stages, each granted in the lane's dispatch order (dripd/send_slots.py). The message
        # is built before them; in its claim turn the token is taken and the claim committed
        # (durably) while earlier sends are on the wire, so a freed connection finds its next
        # claim ready; then the transport holds one of the wire's places. Up to ``concurrency``
        # claimed rows per lane wait for the wire: the wire journal tells recovery they never
        # left. The result is recorded after the wire place is freed.
        prepared = await self._prepare(ctx, mailbox, plan.step, now)
        await gate.claim_turn()
        if not gate(followup, due_at):
            return RunResult(RunStatus.THROTTLED, followup, due_at)
        self.metrics.observe_lateness(mailbox.id, max(0.0, now - due_at))
        self.endings.watch(enrollment_id, ctx.sequence.id)  # before the claim: see dripd/endings.py
        try:
            return await self._send(ctx, mailbox, plan.step, now, prepared, gate, followup, due_at)
        finally:
            self.endings.forget(enrollment_id)

    async def _send(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, now: float, prepared: _Prepared,
                    gate: Gate, followup: bool, due_at: float) -> RunResult:
        """From the claim to the recorded result."""
        enrollment_id = ctx.enrollment.id
        try:
            claim, built = await self._claim(ctx, mailbox, step, now, prepared)
        except StoreError:
            # Nothing goes out now (the lane backs off): the token is not spent. The journal line
            # stays in flight: the claim may be committed all the same, or the row 'sending' from
            # a send whose result failed to record, whose W or A a later C must not replace.
            gate.give_back()
            raise
        if not isinstance(claim, Claim):
            self._nothing_sent(gate, (enrollment_id, step.id))
        elif isinstance(built, policy.Failed):
            gate.give_back()  # claimed, but its message cannot be built: it never reaches the transport
        if claim is Refused.NOT_RUNNABLE:
            log.info("enrollment %d %s: ended before its claim; not sent", enrollment_id, step_label(ctx.steps, step.id))
            return RunResult(RunStatus.DROPPED)
        sent: tuple[SendResult, render.Rendered] | policy.Failed | None = None
        withdrawn: str | None = None
        if isinstance(built, policy.Failed):
            sent = built
        elif isinstance(claim, Claim) and built is not None:
            async with gate.on_the_wire():
                withdrawn = await self._withdrawal(ctx, gate)
                if withdrawn is None:
                    try:
                        result = await self.hand_over.send(mailbox.id, ctx.contact.email, mailbox.address,
                                                           claim.message_id, built[1], (enrollment_id, step.id),
                                                           gate.paused)
                        sent = (result, built[0])
                    except Withdrawn:
                        withdrawn = _PAUSED if gate.paused() else _ENDED
            if withdrawn is not None:
                # Paused, or the enrollment ended, while this claim waited for the wire (or in the
                # transport, before its transaction began): never tried, so the row goes back to
                # 'retry' (same Message-ID) with its attempt and its place under the caps given
                # back. A paused mailbox's send waits for the resume; an ended enrollment's run is
                # dropped (confirmed here, or by the lane's next read when only the transport heard).
                await self.store.release_claim(claim.outbox_id, enrollment_id, due_at, now, withdrawn, untried=True)
                self._nothing_sent(gate, (enrollment_id, step.id))
                if withdrawn == _ENDED_CONFIRMED:
                    log.info("enrollment %d %s: ended while its claim waited for the wire; not sent", enrollment_id,
                             step_label(ctx.steps, step.id))
                    return RunResult(RunStatus.DROPPED)
                return RunResult(RunStatus.THROTTLED, followup, due_at)
        await self._after_send(ctx, mailbox, step, now, claim if isinstance(claim, Claim) else None, sent)
        if isinstance(claim, Claim) and self.wire_journal is not None:
            self.wire_journal.settled((enrollment_id, step.id))  # its result is committed
        return RunResult(RunStatus.DONE)

    def _nothing_sent(self, gate: Gate, row: tuple[int, int]) -> None:
        """The claim was not made, or released untried: its token is not spent (the caps count
        sends), and its wire journal line is done with."""
        gate.give_back()
        if self.wire_journal is not None:
            self.wire_journal.settled(row)

    async def _withdrawal(self, ctx: RunContext, gate: Gate) -> str | None:
        """Why a claimed send that now has its wire place must not go (None: it goes)."""
        enrollment_id = ctx.enrollment.id
        while self.endings.ended(enrollment_id):
            # A hint (dripd/endings.py), asked of the store. Cleared first: an ending committed
            # after the read is published after it, and marks the run again for the next turn.
            self.endings.clear(enrollment_id)
            try:
                fresh = await self.store.run_context(enrollment_id)
            except StoreError:
                return _ENDED  # cannot tell: not sent; the lane's next read of it decides
            if fresh is None or not _runnable(fresh):
                return _ENDED_CONFIRMED
        return _PAUSED if gate.paused() else None

    @staticmethod
    def recipient_problem(ctx: RunContext) -> str | None:
        """Why no message can be addressed to this contact (render's rules for the To line), or None."""
        contact = ctx.contact
        problem = render.address_problem(contact.email)
        if problem is not None:
            return f"the contact's email {problem}"
        for name in (contact.first_name, contact.last_name):
            problem = render.header_text_problem(name)
            if problem is not None:
                return f"the contact's name {problem}"
        return None

    def window(self, ctx: RunContext) -> SendWindow:
        """The sequence's window, in the contact's own zone when the sequence says so."""
        s = ctx.sequence.settings
        contact_zone = self.merge_fields(ctx).get("timezone") if s.window_zone == "contact" else None
        mailbox = self.config.current.mailbox(ctx.enrollment.mailbox_id)
        days_off = (tuple(mailbox.holidays), tuple(mailbox.blackout_dates)) if mailbox else ((), ())
        key = (s.timezone, s.weekdays_only, s.start_hour, s.end_hour, s.holidays, s.blackout_dates,
               s.window_zone, contact_zone, days_off)
        window = self._windows.get(key)
        if window is None:  # built (and its zone checked) once per distinct window, not per step
            if len(self._windows) > 1024:
                self._windows.clear()
            window = s.window(contact_zone)
            if days_off != ((), ()):  # the sending mailbox's own days off count in every sequence
                window = dataclasses.replace(window, holidays=tuple(dict.fromkeys(window.holidays + days_off[0])),
                                             blackout=window.blackout | frozenset(days_off[1]))
            self._windows[key] = window
        return window

    # -- sending -----------------------------------------------------------------------------

    async def variant_for(self, ctx: RunContext, step: Step) -> str | None:
        """The A/B variant this contact gets of ``step`` (None without variants): the one pinned
        on its ledger row, else the auto-winner, else its weighted pick."""
        if not step.variants:
            return None
        tallies = await self._variant_tallies(step.id) if step.auto_winner is not None else None
        return variants.choose(step.variants, variants.seed_of(ctx.contact.email, step.id),
                               pinned=ctx.variants.get(step.id), tallies=tallies, rule=step.auto_winner)

    async def _variant_tallies(self, step_id: int) -> dict[str, variants.Tally]:
        # Re-read at most once a simulated minute: counting a step's sends per variant on every
        # send would cost a scan per message, and a minute's late winner costs nothing.
        now = self.clock.now()
        cached = self._tallies.get(step_id)
        if cached is None or now - cached[0] >= 60.0:
            if len(self._tallies) > 1024:
                self._tallies.clear()
            cached = self._tallies[step_id] = (now, await self.store.variant_tallies(step_id))
        return cached[1]

    def template(self, step: Step, ctx: RunContext) -> render.CompiledTemplate:
        """The step's compiled template for this contact: spintax is resolved per contact and
        step (the same words in the preview and in the sent message), then merge tags."""
        return self._templates.get(step.id, step.subject, step.body, step.text,
                                   lambda: f"{ctx.contact.email}\x00{step.id}")

    def merge_fields(self, ctx: RunContext) -> dict[str, str]:
        """Contact fields, overridden by the enrollment's own merge fields (seed 003)."""
        fields = ctx.contact.merge_fields()
        fields.update(ctx.enrollment.merge_fields)
        return fields

    def thread_headers(self, ctx: RunContext, step: Step) -> tuple[str | None, tuple[str, ...]]:
        """In-Reply-To and References: follow-ups go into the first email's thread unless the
        step turns threading off."""
        if not step.thread or not ctx.thread:
            return None, ()
        references = tuple(message_id for message_id, _ in ctx.thread)
        return references[-1], references

    def render_step(self, ctx: RunContext, step: Step, extra: dict[str, str] | None = None) -> render.Rendered:
        """The step's content for this contact, with the thread's subject where it applies."""
        fields = self.merge_fields(ctx)
        if extra:
            fields = {**extra, **fields}  # the contact's own fields win over generated ones
        rendered = self.template(step, ctx).render(fields)
        subject = self.thread_subject(ctx, step, rendered.subject)
        if subject != rendered.subject:
            rendered = render.Rendered(subject, rendered.html, rendered.text, rendered.missing)
        return rendered

    def render_subject(self, ctx: RunContext, step: Step) -> str:
        """``render_step(ctx, step).subject`` without rendering the bodies."""
        return self.thread_subject(ctx, step, self.template(step, ctx).render_subject(self.merge_fields(ctx)))

    def thread_subject(self, ctx: RunContext, step: Step, subject: str) -> str:
        """A threaded follow-up with a blank subject takes "Re:" and the first email's subject."""
        if not step.thread or not ctx.thread or step.subject.strip():
            return subject
        return _reply_subject(ctx.thread[0][1])

    def message_ref(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, message_id: str) -> MessageRef:
        return MessageRef(message_id, mailbox.id, ctx.sequence.id, step.id, ctx.enrollment.id, ctx.contact.email)

    def compose(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, message_id: str, now: float
                ) -> tuple[render.Envelope, render.Rendered]:
        """Everything that goes out for one step: rendered content (with the engagement
        room's fields, pixel and links) and the envelope with its threading headers."""
        ref = self.message_ref(ctx, mailbox, step, message_id)
        rendered = self.render_step(ctx, step, self.engagement.merge_fields(ref, mailbox))
        settings = ctx.sequence.settings
        html = self.engagement.decorate_html(ref, rendered.html, settings)
        if html != rendered.html:
            rendered = render.Rendered(rendered.subject, html, rendered.text, rendered.missing)
        in_reply_to, references = self.thread_headers(ctx, step)
        unsubscribe, one_click = self.engagement.list_unsubscribe(ref, mailbox)
        if not settings.list_unsubscribe:
            unsubscribe, one_click = (), False  # one-to-one cold email: {{unsubscribeUrl}} only
        contact = ctx.contact
        envelope = render.Envelope(
            from_address=mailbox.address, from_name=mailbox.name, to_address=contact.email,
            to_name=" ".join(part for part in (contact.first_name, contact.last_name) if part),
            message_id=message_id, date=now, in_reply_to=in_reply_to, references=references,
            list_unsubscribe=unsubscribe, one_click=one_click,
            list_id=f"s{ctx.sequence.id}.{mailbox.message_id_domain}" if unsubscribe else None,  # RFC 2919
            extra_headers=tuple(self.extra_headers(mailbox.id, ctx.sequence.id, step.id)),
        )
        return envelope, rendered

    async def _prepare(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, now: float) -> _Prepared:
        """The variant, subject and Message-ID a new ledger row will get, and the message built
        with them (None when building failed: it is built again after the claim, which then
        records why)."""
        enrollment = ctx.enrollment
        variant = await self.variant_for(ctx, step)
        chosen = with_variant(step, variant)
        candidate = render.make_message_id(mailbox.message_id_domain, f"{enrollment.id}.{step.id}.{render.unique_hex(8)}")
        try:
            envelope, rendered = self.compose(ctx, mailbox, chosen, candidate, now)
            built: tuple[render.Rendered, bytes] | None = (rendered, render.build_message(envelope, rendered))
        except Exception:
            built = None
        # The row's subject is the one built (recording the send writes it again from the same
        # message); rendered apart only when building failed.
        subject = built[0].subject if built is not None else self.render_subject(ctx, chosen)
        return _Prepared(variant, subject, candidate, built)

    async def _claim(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, now: float, prepared: _Prepared
                     ) -> tuple[Claim | Refused, tuple[render.Rendered, bytes] | policy.Failed | None]:
        """Claim the step in the ledger (committed durably): the claim (or why none was made)
        and the message to send for it (Failed: it cannot be built)."""
        if self.wire_journal is not None:
            self.wire_journal.claiming((ctx.enrollment.id, step.id))  # before: no committed claim lacks its line
        claim = await self.store.claim_send(ctx.enrollment.id, step.id, mailbox.id, prepared.message_id,
                                            prepared.subject, now, prepared.variant)
        if not isinstance(claim, Claim):
            return claim, None
        # A retry's row keeps its first Message-ID and variant: what was built for a new row is
        # then not what goes out.
        fits = (claim.message_id, claim.variant) == (prepared.message_id, prepared.variant)
        return claim, self._build(ctx, mailbox, step, claim, now, prepared.built if fits else None)

    async def _after_send(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, now: float, claim: Claim | None,
                          sent: tuple[SendResult, render.Rendered] | policy.Failed | None) -> None:
        """Record what became of a send (its slot already freed)."""
        if claim is None:
            # The ledger already holds this step (sent, in flight or uncertain): never twice.
            log.warning("enrollment %d %s: already in the ledger; not sending again", ctx.enrollment.id,
                        step_label(ctx.steps, step.id))
            await self._advance_past(ctx, step, now)
            return
        if isinstance(sent, policy.Failed):
            await self._record_decision(ctx, mailbox, step, claim, sent, now)
            return
        assert sent is not None
        result, rendered = sent
        # What went out, kept on the row with the result: the contact's log outlives later edits.
        claim = claim.with_content((rendered.subject, rendered.html, rendered.text))
        self.metrics.sent(mailbox.id, ctx.sequence.id, step.id, result.outcome.value)
        settings = self.config.current.daemon
        rules = policy.RetryRules(settings.retry_max_attempts, settings.retry_max_age_hours * 3600,
                                  settings.retry_base_seconds)
        decision = policy.send_decision(result, attempts=claim.attempts, first_attempt_at=claim.first_attempt_at,
                                        now=now, rules=rules, jitter=self._rng.random())
        await self._record_decision(ctx, mailbox, step, claim, decision, now)

    def _build(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, claim: Claim, now: float,
               built: tuple[render.Rendered, bytes] | None) -> tuple[render.Rendered, bytes] | policy.Failed:
        """The claimed message (``built`` when it already is it), or Failed when it cannot be
        built (the claim is then resolved with the reason)."""
        if built is not None:
            return built
        try:
            # The ledger row's variant wins: a retry sends what its first attempt chose.
            envelope, rendered = self.compose(ctx, mailbox, with_variant(step, claim.variant), claim.message_id, now)
            return rendered, render.build_message(envelope, rendered)
        except Exception as exc:
            # The claim is committed: the row must be resolved with the reason, never left
            # 'sending' and never skipped as if sent (a bug here is reported the same way).
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            return policy.Failed(f"the message could not be built: {reason}")

    async def _record_decision(self, ctx: RunContext, mailbox: MailboxConfig, step: Step, claim: Claim,
                               decision: policy.SendDecision, now: float) -> None:
        enrollment = ctx.enrollment
        if isinstance(decision, policy.Sent):
            cursor_ord, anchor, due = self.next_after(ctx, step, now)
            completed = await self.store.record_sent(claim, enrollment.id, step.id, cursor_ord, anchor, due, now)
            self.counters.sent += 1
            if due is not None:
                self.scheduler.schedule(mailbox.id, enrollment.id, due, True)
            self._completed(completed)
        elif isinstance(decision, policy.RetryAt):
            await self.store.record_retry(claim, enrollment.id, step.id, decision.at, decision.detail, now)
            self.counters.retried += 1
            self.metrics.retried(mailbox.id, ctx.sequence.id, step.id)
            log.info("enrollment %d %s: transient failure (%s); retry %d in %.0fs",
                     enrollment.id, step_label(ctx.steps, step.id), decision.detail, claim.attempts, decision.at - now)
            self.scheduler.schedule(mailbox.id, enrollment.id, decision.at, enrollment.sent_count > 0)
        elif isinstance(decision, policy.SenderRefused):
            # Refused before delivery: the step waits, with its Message-ID, for the mailbox's resume.
            await self.store.release_claim(claim.outbox_id, enrollment.id, now, now, f"sender refused: {decision.detail}")
            await self.safeguards.pause_mailbox(mailbox.id, f"the server refused the sender: {decision.detail}")
        elif isinstance(decision, policy.Uncertain):
            cursor_ord, anchor, due = self.next_after(ctx, step, now)
            completed = await self.store.record_uncertain(
                claim.outbox_id, enrollment.id, step.id, cursor_ord, anchor, due, decision.detail, now, claim.content)
            self.counters.uncertain += 1
            log.warning("enrollment %d %s: delivery uncertain (%s); not resent", enrollment.id,
                        step_label(ctx.steps, step.id), decision.detail)
            if due is not None:
                self.scheduler.schedule(mailbox.id, enrollment.id, due, True)
            self._completed(completed)
        elif isinstance(decision, policy.Bounced):
            completed = await self.store.record_bounced(claim, enrollment.id, step.id, decision, ctx.contact.email, now)
            self.counters.bounced += 1
            log.info("enrollment %d %s: %s bounce: %s", enrollment.id, step_label(ctx.steps, step.id),
                     decision.bounce_class, decision.detail)
            self._completed(completed)
            if decision.suppresses:
                await self.safeguards.after_hard_bounce(ctx.sequence.id, mailbox.id)
        elif isinstance(decision, policy.Failed):
            completed = await self.store.record_unbuildable(claim, enrollment.id, step.id, decision.reason, now)
            self.counters.failed += 1
            self.metrics.sent(mailbox.id, ctx.sequence.id, step.id, "failed")
            log.error("enrollment %d %s: failed: %s", enrollment.id, step_label(ctx.steps, step.id), decision.reason)
            self._completed(completed)
        else:
            assert_never(decision)

    def next_after(self, ctx: RunContext, step: Step, now: float) -> tuple[int, float, float | None]:
        """Cursor, anchor and due time once ``step`` is sent at ``now`` (due None = finished)."""
        plan = cadence.plan(ctx.steps, cadence.after_send(step), now, now, self.window(ctx), ctx.signals)
        if isinstance(plan, cadence.Finish):
            return plan.cursor_ord, now, None
        if isinstance(plan, cadence.Wake):
            return plan.cursor_ord, plan.anchor_at, plan.at
        return plan.step.ord, plan.anchor_at, now

    async def _advance_past(self, ctx: RunContext, step: Step, now: float) -> None:
        cursor_ord, anchor, due = self.next_after(ctx, step, now)
        if due is None:
            self._completed(await self.store.finish(ctx.enrollment.id, EnrollmentStatus.COMPLETED, None, now))
        elif await self.store.set_plan(ctx.enrollment.id, cursor_ord, anchor, due, now):
            self.scheduler.schedule(ctx.enrollment.mailbox_id, ctx.enrollment.id, due, True)

    @staticmethod
    def _completed(completed_sequence: int | None) -> None:
        if completed_sequence is not None:
            log.info("sequence %d completed: every contact finished", completed_sequence)

    # -- crash recovery ----------------------------------------------------------------------

    async def recover(self, mailbox_id: str | None = None) -> int:
        """Resolve ledger rows a crash left 'sending' (only ``mailbox_id``'s: a node of a cluster
        resolves a mailbox's rows when it takes its lease). Returns how many stayed uncertain.
        The rules are in dripd/recovery.py."""
        return await recover_sending(self, mailbox_id)


def _runnable(ctx: RunContext) -> bool:
    """Active, in an active sequence: the store's claim checks the same in SQL."""
    return ctx.enrollment.status is EnrollmentStatus.ACTIVE and ctx.sequence.status is SequenceStatus.ACTIVE


_PAUSED = "the mailbox was paused before the send"
_ENDED = "the enrollment ended, or its sequence was paused, before the send"
_ENDED_CONFIRMED = "the enrollment ended, or its sequence was paused, while the send waited for the wire"


def _reply_subject(first: str) -> str:
    return first if first[:3].lower() == "re:" else f"Re: {first}"
