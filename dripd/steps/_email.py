"""The email step: a subject and an HTML body (with an optional plain-text part) sent to the
contact, in the first email's thread unless ``thread`` is off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dripd.errors import ValidationError
from dripd.model import Step, StepType
from dripd.render import spintax_problem, template_problem

# RFC 5322's line limit: a subject longer than a header line is never what an author meant, and
# an unbounded one (100,000 characters were accepted) would be folded into a wall of lines.
MAX_SUBJECT_CHARS = 998
from dripd.steps._kind import Hold, Outcome, Send, StepKind, Walk


def parse(data: Mapping[str, Any], prefix: str) -> Step:
    """An email step from ``subject``, ``body`` (or the seed's ``html``), ``text`` and ``thread``."""
    subject = data.get("subject", "")
    body = data.get("body", data.get("html"))
    if not isinstance(subject, str):
        raise ValidationError(f"{prefix}subject", "must be a string")
    if "\r" in subject or "\n" in subject:
        raise ValidationError(f"{prefix}subject", "must not contain line breaks")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise ValidationError(f"{prefix}subject", f"must be at most {MAX_SUBJECT_CHARS} characters "
                                                  f"(got {len(subject)})")
    if not isinstance(body, str) or not body.strip():
        raise ValidationError(f"{prefix}body", "an email step needs a non-empty HTML body")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise ValidationError(f"{prefix}text", "must be a string")
    thread = data.get("thread", True)
    if not isinstance(thread, bool):
        raise ValidationError(f"{prefix}thread", "must be true or false")
    for name, part in (("subject", subject), ("body", body), ("text", text)):
        problem = (template_problem(part) or spintax_problem(part)) if part else None
        if problem is not None:
            raise ValidationError(f"{prefix}{name}", problem)
    return Step(StepType.EMAIL, subject=subject, body=body, text=text, thread=thread)


def serialise(step: Step) -> dict[str, Any]:
    """The API shape; ``text`` and ``thread`` only when they differ from the defaults."""
    out: dict[str, Any] = {"type": "email", "subject": step.subject, "body": step.body}
    if step.text is not None:
        out["text"] = step.text
    if not step.thread:
        out["thread"] = False
    return out


def check(steps: Sequence[Step], index: int) -> None:
    """Only a threaded follow-up may leave its subject empty: it becomes "Re: <first subject>"."""
    step = steps[index]
    if not step.subject.strip() and (index == 0 or not step.thread):
        raise ValidationError(
            f"steps[{index}].subject",
            "needs a non-empty subject (only a threaded follow-up may leave it empty)",
        )


def plan(step: Step, walk: Walk) -> Outcome:
    """Send once the window is open.

    Re-checked against "now", not only the planned time: a step that fell due while the window
    was open but is run after it closed (throttled, paused, daemon down) waits for it to reopen.
    """
    send_at = walk.window.next_open(max(walk.at, walk.now))
    if send_at > walk.now:
        return Hold(send_at, walk.at)
    return Send(walk.at)


# html is the seed's name for body (echoed as body); send_email is the seed's name for email.
KIND = StepKind(StepType.EMAIL, ("send_email",), parse, serialise, check, plan,
                fields=frozenset({"subject", "body", "html", "text", "thread"}))
