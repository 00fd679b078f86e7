"""Sequences, steps, enrollments: their values, statuses and allowed transitions. Pure."""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from dripd.errors import InvalidTransition, ValidationError
from dripd.window import SendWindow


class SequenceStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class EnrollmentStatus(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    REPLIED = "replied"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"  # a step could not be built or sent after its ledger claim (the reason is kept)


# Seed 003: completed or cancelled contacts can be enrolled again; the others stay stopped.
REENROLLABLE = frozenset({EnrollmentStatus.COMPLETED, EnrollmentStatus.CANCELLED})


class StepType(enum.StrEnum):
    EMAIL = "email"
    WAIT = "wait"
    CONDITIONAL = "conditional"


STEP_TYPE_ALIASES = {"send_email": StepType.EMAIL, "delay": StepType.WAIT}


class Condition(enum.StrEnum):
    IF_REPLIED = "if_replied"
    IF_OPENED = "if_opened"
    IF_CLICKED = "if_clicked"


class Action(enum.StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"


# (from, action) -> to. Seed 000: /start moves draft or paused to active; seed 003: complete
# is explicit and irreversible. Completed is read-only, so nothing leaves it.
_TRANSITIONS: dict[tuple[SequenceStatus, Action], SequenceStatus] = {
    (SequenceStatus.DRAFT, Action.START): SequenceStatus.ACTIVE,
    (SequenceStatus.PAUSED, Action.START): SequenceStatus.ACTIVE,
    (SequenceStatus.ACTIVE, Action.PAUSE): SequenceStatus.PAUSED,
    (SequenceStatus.PAUSED, Action.RESUME): SequenceStatus.ACTIVE,
    (SequenceStatus.DRAFT, Action.COMPLETE): SequenceStatus.COMPLETED,
    (SequenceStatus.ACTIVE, Action.COMPLETE): SequenceStatus.COMPLETED,
    (SequenceStatus.PAUSED, Action.COMPLETE): SequenceStatus.COMPLETED,
}


def transition(status: SequenceStatus, action: Action) -> SequenceStatus:
    """The status after ``action``, or InvalidTransition naming both."""
    try:
        return _TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(
            f"cannot {action.value} a {status.value} sequence",
            details={"status": status.value, "action": action.value},
        ) from None


@dataclass(frozen=True)
class SequenceSettings:
    """Everything about a sequence a user may edit (API names in comments)."""

    name: str
    mailbox_id: str  # mailboxId
    timezone: str = "UTC"
    weekdays_only: bool = False  # weekdaysOnly
    start_hour: int = 0  # sendWindowStartHour
    end_hour: int = 24  # sendWindowEndHour (exclusive; 24 = midnight)
    auto_pause_on_reply: bool = True  # autoPauseOnReply
    auto_complete: bool = True  # autoComplete
    track_opens: bool = False  # trackOpens
    track_clicks: bool = False  # trackClicks
    list_unsubscribe: bool = True  # listUnsubscribe: headers off for one-to-one cold email
    stop_on_domain_reply: bool = False  # stopOnDomainReply
    on_auto_reply: str = "ignore"  # onAutoReply: "ignore" | "delay"
    auto_reply_delay_days: float = 3.0  # autoReplyDelayDays: when no return date is stated
    bounce_pause_threshold: float = 0.05  # bouncePauseThreshold over the last 50 sends

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("name", "must not be empty")
        # The window's own rules (known zone, 0 <= start < end <= 24) with the API's field names.
        SendWindow(self.timezone, self.weekdays_only, self.start_hour, self.end_hour)
        if self.on_auto_reply not in ("ignore", "delay"):
            raise ValidationError("onAutoReply", "must be 'ignore' or 'delay'")
        if not 0 < self.bounce_pause_threshold <= 1:
            raise ValidationError("bouncePauseThreshold", "must be in (0, 1]")
        if self.auto_reply_delay_days <= 0:
            raise ValidationError("autoReplyDelayDays", "must be positive")

    def replace(self, **changes: Any) -> "SequenceSettings":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Sequence:
    id: int
    settings: SequenceSettings
    status: SequenceStatus
    status_reason: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class Step:
    """One step. ``id`` is stable; ``ord`` orders steps and never changes once given."""

    type: StepType
    id: int = 0
    ord: int = 0
    subject: str = ""
    body: str = ""  # HTML
    text: str | None = None  # plain-text fallback; generated from the HTML when absent
    wait_seconds: float = 0.0
    condition: Condition | None = None
    thread: bool = True  # follow-ups go into the first email's thread unless off


_DURATION_KEYS = {"waitDays": 86400.0, "waitHours": 3600.0, "waitMinutes": 60.0, "delayMs": 0.001}


def step_from_fields(data: Mapping[str, Any], *, where: str = "") -> Step:
    """Build a step from API-shaped fields (seed names), naming the field of any broken rule."""
    prefix = f"{where}." if where else ""
    raw_type = data.get("type")
    if not isinstance(raw_type, str):
        raise ValidationError(f"{prefix}type", "must be one of email, wait, conditional")
    step_type = STEP_TYPE_ALIASES.get(raw_type)
    if step_type is None:
        try:
            step_type = StepType(raw_type)
        except ValueError:
            raise ValidationError(
                f"{prefix}type", "must be one of email, wait, conditional (or send_email, delay)"
            ) from None
    if step_type is StepType.EMAIL:
        subject = data.get("subject", "")
        body = data.get("body", data.get("html"))
        if not isinstance(subject, str):
            raise ValidationError(f"{prefix}subject", "must be a string")
        if "\r" in subject or "\n" in subject:
            raise ValidationError(f"{prefix}subject", "must not contain line breaks")
        if not isinstance(body, str) or not body.strip():
            raise ValidationError(f"{prefix}body", "an email step needs a non-empty HTML body")
        text = data.get("text")
        if text is not None and not isinstance(text, str):
            raise ValidationError(f"{prefix}text", "must be a string")
        thread = data.get("thread", True)
        if not isinstance(thread, bool):
            raise ValidationError(f"{prefix}thread", "must be true or false")
        return Step(StepType.EMAIL, subject=subject, body=body, text=text, thread=thread)
    if step_type is StepType.WAIT:
        given = [k for k in _DURATION_KEYS if data.get(k) is not None]
        if not given:
            raise ValidationError(
                f"{prefix}waitDays", "a wait step needs one of waitDays, waitHours, waitMinutes, delayMs"
            )
        if len(given) > 1:
            raise ValidationError(f"{prefix}{given[1]}", f"give only one duration (also got {given[0]})")
        value = data[given[0]]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValidationError(f"{prefix}{given[0]}", "must be a positive number")
        return Step(StepType.WAIT, wait_seconds=float(value) * _DURATION_KEYS[given[0]])
    condition = data.get("condition")
    try:
        return Step(StepType.CONDITIONAL, condition=Condition(condition))
    except ValueError:
        raise ValidationError(
            f"{prefix}condition", "must be one of if_replied, if_opened, if_clicked"
        ) from None


def step_to_fields(step: Step) -> dict[str, Any]:
    """The API shape of a step (inverse of step_from_fields, durations in the largest whole unit)."""
    if step.type is StepType.EMAIL:
        out: dict[str, Any] = {"type": "email", "subject": step.subject, "body": step.body}
        if step.text is not None:
            out["text"] = step.text
        if not step.thread:
            out["thread"] = False
        return out
    if step.type is StepType.WAIT:
        for key, unit in _DURATION_KEYS.items():
            if step.wait_seconds % unit == 0 or key == "delayMs":
                value = step.wait_seconds / unit
                return {"type": "wait", key: int(value) if value == int(value) else value}
    return {"type": "conditional", "condition": step.condition.value if step.condition else None}


def check_step_list(steps: list[Step]) -> None:
    """Rules on the whole list: the first step must be an email (both seeds), and only a
    threaded follow-up may leave its subject empty (it becomes "Re: <first subject>")."""
    if steps and steps[0].type is not StepType.EMAIL:
        raise ValidationError("steps[0].type", "the first step must be an email")
    for index, step in enumerate(steps):
        if step.type is StepType.EMAIL and not step.subject.strip() and (index == 0 or not step.thread):
            raise ValidationError(
                f"steps[{index}].subject",
                "needs a non-empty subject (only a threaded follow-up may leave it empty)",
            )


@dataclass(frozen=True)
class Contact:
    id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)

    def merge_fields(self) -> dict[str, str]:
        out = {"email": self.email}
        if self.first_name:
            out["firstName"] = self.first_name
        if self.last_name:
            out["lastName"] = self.last_name
        if self.company:
            out["company"] = self.company
        out.update(self.fields)
        return out


_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


def normalize_email(value: object, *, field_name: str = "email") -> str:
    """Lower-cased address if it is well-formed, else ValidationError naming ``field_name``."""
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL_RE.match(value.strip()):
        raise ValidationError(field_name, "must be a valid email address")
    return value.strip().lower()


@dataclass(frozen=True)
class Enrollment:
    id: int
    sequence_id: int
    contact_id: int
    mailbox_id: str
    status: EnrollmentStatus
    cursor_ord: int  # the next step to run is the first live step with ord >= cursor_ord
    due_at: float | None  # when the next step is planned (kept while the sequence is paused)
    merge_fields: Mapping[str, str] = field(default_factory=dict)
    sent_count: int = 0
    enrolled_at: float = 0.0
    last_event_at: float | None = None
    anchor_at: float | None = None  # when the enrollment reached its cursor (waits count from here)
