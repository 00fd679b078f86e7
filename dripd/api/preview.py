"""Render a step against a real contact exactly as the engine would send it, without sending."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any

from dripd import render
from dripd.cadence import Signals
from dripd.errors import NotFound, ValidationError
from dripd.model import Contact, Enrollment, EnrollmentStatus, StepType
from dripd.steps import with_variant
from dripd.store import RunContext

if TYPE_CHECKING:
    from dripd.root import Services


async def preview(services: "Services", sequence_id: int, step_index: int, contact: Contact,
                  variant: str | None = None) -> dict[str, Any]:
    """The step as ``contact`` will get it: its own A/B variant, or the ``variant`` asked for."""
    sequence, steps = await services.store.get_sequence(sequence_id)
    if not 0 <= step_index < len(steps):
        raise NotFound(f"sequence {sequence_id} has no step {step_index} (it has {len(steps)})",
                       details={"sequenceId": sequence_id, "stepIndex": step_index})
    step = steps[step_index]
    if step.type is not StepType.EMAIL:
        raise ValidationError("stepIndex", f"step {step_index} is a {step.type.value} step; only email steps render")
    names = [v.name for v in step.variants]
    if variant is not None and variant not in names:
        raise ValidationError("variant", f"step {step_index} has no variant {variant!r}"
                              + (f" (it has {', '.join(names)})" if names else " (it has no variants)"))
    mailbox = services.config.mailbox(sequence.settings.mailbox_id)
    if mailbox is None:
        raise ValidationError("mailboxId", f"mailbox {sequence.settings.mailbox_id!r} is not configured")
    engine = services.engine
    enrollment_id = await services.store.latest_enrollment(sequence_id, contact.id)
    ctx = await services.store.run_context(enrollment_id) if enrollment_id is not None else None
    earlier = [s for s in steps[:step_index] if s.type is StepType.EMAIL]
    if ctx is None:
        enrollment = Enrollment(0, sequence_id, contact.id, mailbox.id, EnrollmentStatus.ACTIVE, 0, None)
        ctx = RunContext(enrollment, sequence, steps, contact, [], Signals(), None)
    # The thread this step replies into: what the contact was really sent, then the earlier
    # emails not sent yet as they would render.
    thread = list(ctx.thread[:len(earlier)])
    for number, earlier_step in enumerate(earlier[len(thread):], start=len(thread)):
        partial = RunContext(ctx.enrollment, sequence, steps, ctx.contact, list(thread), ctx.signals, ctx.suppressed)
        earlier_variant = await engine.variant_for(partial, earlier_step)
        subject = engine.render_step(partial, with_variant(earlier_step, earlier_variant)).subject
        thread.append((render.make_message_id(mailbox.message_id_domain, f"preview.{number}"), subject))
    ctx = RunContext(ctx.enrollment, sequence, steps, ctx.contact, thread, ctx.signals, ctx.suppressed)
    message_id = render.make_message_id(mailbox.message_id_domain, f"preview.{sequence_id}.{step.id}")
    if variant is None:
        variant = await engine.variant_for(ctx, step)
    envelope, rendered = engine.compose(ctx, mailbox, with_variant(step, variant), message_id, services.clock.now())
    data = render.build_message(envelope, rendered)
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(data)
    headers = {name: str(value) for name, value in parsed.items() if not name.lower().startswith("content-")}
    return {"sequenceId": sequence_id, "stepIndex": step_index, "contactId": contact.id, "subject": rendered.subject,
            "html": rendered.html, "text": rendered.text, "headers": headers, "missing": list(rendered.missing),
            "variant": variant, "variants": names}
