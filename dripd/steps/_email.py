"""The email step: a subject and an HTML body (with an optional plain-text part) sent to the
contact, in the first email's thread unless ``thread`` is off; optionally A/B ``variants`` that
override the subject, body or text, with an ``autoWinner`` rule (which one a contact gets is
``dripd.variants``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dripd.errors import ValidationError
from dripd.model import Step, StepType
from dripd.render import spintax_problem, template_problem

# RFC 5322's line limit: a subject longer than a header line is never what an author meant, and
# an unbounded one (100,000 characters were accepted) would be folded into a wall of lines.
MAX_SUBJECT_CHARS = 998
from dripd.steps._kind import Hold, Outcome, Send, StepKind, Walk
from dripd.variants import MAX_VARIANTS, MAX_WEIGHT, METRICS, NAME_PATTERN, AutoWinner, Variant


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
    _check_parts(prefix, subject, body, text)
    variants = _parse_variants(data.get("variants"), f"{prefix}variants")
    auto_winner = _parse_auto_winner(data.get("autoWinner"), f"{prefix}autoWinner")
    if data.get("variants") == []:
        auto_winner = None  # "variants: []" removes them, and a step edit merges the old rule in
    if auto_winner is not None and not variants:
        raise ValidationError(f"{prefix}autoWinner", "needs variants to choose between")
    return Step(StepType.EMAIL, subject=subject, body=body, text=text, thread=thread, variants=variants,
                auto_winner=auto_winner)


def _check_parts(prefix: str, subject: str | None, body: str | None, text: str | None) -> None:
    for name, part in (("subject", subject), ("body", body), ("text", text)):
        problem = (template_problem(part) or spintax_problem(part)) if part else None
        if problem is not None:
            raise ValidationError(f"{prefix}{name}", problem)


def _optional_text(data: Mapping[str, Any], key: str, prefix: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{prefix}{key}", "must be a string")
    return value


def _parse_variants(raw: Any, where: str) -> tuple[Variant, ...]:
    """``[{name?, weight?, subject?, body?, text?}, ...]``: none, or 2 to 10 variants."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError(where, "must be a list of variants")
    if raw and not 2 <= len(raw) <= MAX_VARIANTS:
        raise ValidationError(where, f"needs 2 to {MAX_VARIANTS} variants (or none)")
    out: list[Variant] = []
    for i, item in enumerate(raw):
        prefix = f"{where}[{i}]."
        if not isinstance(item, Mapping):
            raise ValidationError(f"{where}[{i}]", "must be an object with name, weight, subject, body, text")
        unknown = sorted(set(item) - {"name", "weight", "subject", "body", "text"})
        if unknown:
            raise ValidationError(f"{prefix}{unknown[0]}", "is not a variant field (name, weight, subject, body, text)")
        name = item.get("name", chr(ord("A") + i))  # A, B, C... when not named
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            raise ValidationError(f"{prefix}name", "must be 1-32 letters, digits, '-' or '_'")
        if any(v.name == name for v in out):
            raise ValidationError(f"{prefix}name", f"{name!r} names two variants")
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ValidationError(f"{prefix}weight", f"must be a whole number from 0 to {MAX_WEIGHT}")
        subject, body, text = (_optional_text(item, key, prefix) for key in ("subject", "body", "text"))
        if subject is not None and ("\r" in subject or "\n" in subject):
            raise ValidationError(f"{prefix}subject", "must not contain line breaks")
        if body is not None and not body.strip():
            raise ValidationError(f"{prefix}body", "must not be empty (leave it out to use the step's body)")
        _check_parts(prefix, subject, body, text)
        out.append(Variant(name, weight, subject, body, text))
    if out and not any(v.weight > 0 for v in out):
        raise ValidationError(where, "at least one variant needs a weight above 0")
    return tuple(out)


def _parse_auto_winner(raw: Any, where: str) -> AutoWinner | None:
    """``{after: N, metric: "replied" | "opened" | "clicked"}``."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError(where, "must be an object with after and metric")
    unknown = sorted(set(raw) - {"after", "metric"})
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", "is not an autoWinner field (after, metric)")
    after = raw.get("after")
    if isinstance(after, bool) or not isinstance(after, int) or not 1 <= after <= 1_000_000:
        raise ValidationError(f"{where}.after", "must be a whole number of sends per variant from 1 to 1000000")
    metric = raw.get("metric", "replied")
    if metric not in METRICS:
        raise ValidationError(f"{where}.metric", f"must be one of {', '.join(METRICS)}")
    return AutoWinner(after, metric)


def with_variant(step: Step, name: str | None) -> Step:
    """The step as variant ``name`` sends it (its own fields where the variant leaves one out).
    An unknown name (a pinned variant since deleted) sends the step's own content."""
    variant = next((v for v in step.variants if v.name == name), None)
    if variant is None:
        return step
    return dataclasses.replace(
        step, subject=step.subject if variant.subject is None else variant.subject,
        body=step.body if variant.body is None else variant.body,
        text=step.text if variant.text is None else variant.text)


def serialise(step: Step) -> dict[str, Any]:
    """The API shape; ``text`` and ``thread`` only when they differ from the defaults."""
    out: dict[str, Any] = {"type": "email", "subject": step.subject, "body": step.body}
    if step.text is not None:
        out["text"] = step.text
    if not step.thread:
        out["thread"] = False
    if step.variants:
        out["variants"] = [{k: v for k, v in dataclasses.asdict(variant).items() if v is not None}
                           for variant in step.variants]
    if step.auto_winner is not None:
        out["autoWinner"] = dataclasses.asdict(step.auto_winner)
    return out


def check(steps: Sequence[Step], index: int) -> None:
    """Only a threaded follow-up may leave its subject empty: it becomes "Re: <first subject>"."""
    step = steps[index]
    if index > 0 and step.thread:
        return
    rule = "needs a non-empty subject (only a threaded follow-up may leave it empty)"
    if not step.subject.strip() and (not step.variants or any(v.subject is None for v in step.variants)):
        raise ValidationError(f"steps[{index}].subject", rule)
    for i, variant in enumerate(step.variants):
        if variant.subject is not None and not variant.subject.strip():
            raise ValidationError(f"steps[{index}].variants[{i}].subject", rule)


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
                fields=frozenset({"subject", "body", "html", "text", "thread", "variants", "autoWinner"}))
