"""Sequences, steps, enrollments: their values, statuses and allowed transitions. Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from dripd.calendars import check_blackout_dates, check_calendars
from dripd.errors import InvalidTransition, ValidationError
from dripd.quick_init import quick_init
from dripd.render import address_problem
from dripd.variants import AutoWinner, Variant
from dripd.window import SendWindow, load_zone, zone_is_known

WINDOW_ZONES = ("sequence", "contact")


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
    """The kinds of step; each has its module in dripd.steps (parse, serialise, check, plan)."""

    EMAIL = "email"
    WAIT = "wait"
    CONDITIONAL = "conditional"


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


def allowed_actions(status: SequenceStatus) -> list[Action]:
    """What may be done to a sequence in ``status`` (the console offers only these)."""
    return [action for (source, action) in _TRANSITIONS if source is status]


def transition(status: SequenceStatus, action: Action) -> SequenceStatus:
    """The status after ``action``, or InvalidTransition naming both."""
    try:
        return _TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(
            f"cannot {action.value} {'an' if status.value[0] in 'aeiou' else 'a'} {status.value} sequence",
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
    # autoComplete: off by default, so a sequence enrolled as people come (seed 003's always-on
    # drip) never closes itself to new enrollments; a one-shot campaign opts in (policy.autocompletes).
    auto_complete: bool = False
    track_opens: bool = False  # trackOpens
    track_clicks: bool = False  # trackClicks
    list_unsubscribe: bool = True  # listUnsubscribe: headers off for one-to-one cold email
    stop_on_domain_reply: bool = False  # stopOnDomainReply
    # onAutoReply: "delay" pauses the contact until the day after the return date an out-of-office
    # states (else autoReplyDelayDays); "ignore" sends follow-ups into an empty office.
    on_auto_reply: str = "delay"
    auto_reply_delay_days: float = 3.0  # autoReplyDelayDays: when no return date is stated
    bounce_pause_threshold: float = 0.05  # bouncePauseThreshold over the last 50 sends
    mailbox_ids: tuple[str, ...] = ()  # mailboxIds: a rotation pool; empty = just mailboxId
    window_zone: str = "sequence"  # windowZone: "sequence" | "contact" (each contact's own zone)
    holidays: tuple[str, ...] = ()  # holidays: calendar names ("US", "DE-BY"), skipped like weekends
    blackout_dates: tuple[str, ...] = ()  # blackoutDates: ISO dates on which nothing is sent

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("name", "must not be empty")
        pool = tuple(dict.fromkeys(self.mailbox_ids))
        if any(not isinstance(m, str) or not m for m in pool):
            raise ValidationError("mailboxIds", "must be a list of mailbox ids")
        object.__setattr__(self, "mailbox_ids", pool)
        if pool:  # the first of the pool is the sequence's mailbox (the seed's mailboxId)
            object.__setattr__(self, "mailbox_id", pool[0])
        if not self.mailbox_id:
            raise ValidationError("mailboxId", "is required (or mailboxIds, a pool to rotate through)")
        if self.window_zone not in WINDOW_ZONES:
            raise ValidationError("windowZone", "must be 'sequence' or 'contact'")
        # Normalised here so that JSON lists and API input become the same tuples.
        object.__setattr__(self, "holidays", check_calendars(self.holidays))
        days = check_blackout_dates(self.blackout_dates)
        object.__setattr__(self, "blackout_dates", tuple(day.isoformat() for day in days))
        # The window's own rules (known zone, 0 <= start < end <= 24) with the API's field names.
        self.window()
        if self.on_auto_reply not in ("ignore", "delay"):
            raise ValidationError("onAutoReply", "must be 'ignore' or 'delay'")
        if not 0 < self.bounce_pause_threshold <= 1:
            raise ValidationError("bouncePauseThreshold", "must be in (0, 1]")
        if self.auto_reply_delay_days <= 0:
            raise ValidationError("autoReplyDelayDays", "must be positive")

    def replace(self, **changes: Any) -> "SequenceSettings":
        return dataclasses.replace(self, **changes)

    @property
    def pool(self) -> tuple[str, ...]:
        """The mailboxes new contacts are spread over (one for a sequence without mailboxIds)."""
        return self.mailbox_ids or (self.mailbox_id,)

    def window(self, contact_zone: str | None = None) -> SendWindow:
        """The send window; with windowZone "contact" it opens in ``contact_zone`` when the
        contact has a valid one, else in the sequence's zone."""
        zone = self.timezone
        if self.window_zone == "contact" and contact_zone and zone_is_known(contact_zone):
            zone = contact_zone
        return SendWindow(zone, self.weekdays_only, self.start_hour, self.end_hour, self.holidays,
                          frozenset(dt.date.fromisoformat(day) for day in self.blackout_dates))


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
    # The API key the wait was given in (waitDays, ...), so it is answered in it; "" (steps stored
    # before it was kept): the largest whole unit. Presentation only, so not part of equality.
    wait_unit: str = field(default="", compare=False)
    condition: Condition | None = None
    thread: bool = True  # follow-ups go into the first email's thread unless off
    variants: tuple[Variant, ...] = ()  # A/B variants of an email step (dripd/variants.py)
    auto_winner: AutoWinner | None = None


@quick_init
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


def contact_fields(fields: Mapping[str, str], timezone: str | None = None,
                   where: str = "fields") -> dict[str, str]:
    """A contact's extra fields with its ``timezone`` (given on its own or as a field) checked:
    an IANA zone name, so a window in the contact's zone can open in it."""
    out = dict(fields)
    if timezone is not None:
        out["timezone"], where = timezone, "timezone"
    elif "timezone" in out:
        where = f"{where}.timezone"
    zone = out.get("timezone")
    if zone is not None:
        out["timezone"] = load_zone(zone.strip(), where).key
    return out


_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


def normalize_email(value: object, *, field_name: str = "email") -> str:
    """Lower-cased address if it is well-formed, else ValidationError naming ``field_name``."""
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL_RE.match(value.strip()):
        raise ValidationError(field_name, "must be a valid email address")
    # Well-formed is not enough: refused here when no message could be addressed to it (render's
    # rule), rather than enrolled and failed at its first send.
    problem = address_problem(value.strip())
    if problem is not None:
        raise ValidationError(field_name, problem)
    return value.strip().lower()


@quick_init
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
