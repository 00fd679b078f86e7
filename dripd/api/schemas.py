"""Request bodies (pydantic, at the edge) and the JSON shapes of responses (camelCase, as the seeds).

Request models check types, and what a type alone cannot say but the rooms behind would trip
over: text must be valid Unicode (JSON lets a lone surrogate through, which neither SQLite nor
a JSON answer can encode), numbers must be finite and within what a clock can add, and a
contact's first and last name, which form the To header's display name, must be fit for a
header (``render.header_text_problem``). Other text may hold line breaks: merged into a
subject, a value's control characters become one space. The domain rules (a wait needs a
duration, the first step is an email, a window opens before it closes) live in model.py and
window.py and name the field there. In every body, a field given as ``null`` counts as not given.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from dripd.cadence import live_index
from dripd.clock import iso
from dripd.errors import ValidationError
from dripd.model import Contact, EnrollmentStatus, Sequence, SequenceSettings, Step
from dripd.render import header_text_problem
from dripd.steps import MAX_WAIT_DAYS, step_to_fields
from dripd.store import ContactProgress

DbId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a SQLite INTEGER row id


def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    return value


def _header_text(value: str) -> str:
    problem = header_text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_controls(value: str) -> str:
    # A name is shown in tables, logs and the stats page: a NUL or a line break there breaks them.
    found = _CONTROLS.search(value)
    if found is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(found.group()):04X} "
                         f"at character {found.start() + 1})")
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]
# The name of a sequence or a list: one line of printable text.
Name = Annotated[str, AfterValidator(_valid_unicode), AfterValidator(_no_controls), Field(min_length=1)]
# A contact's names form the To header's display name: refused here when they cannot stand in a
# header, rather than failing the send after its ledger claim.
HeaderText = Annotated[str, AfterValidator(_header_text)]
# The merge fields that name a new contact (enrollment by contactEmail).
NAME_MERGE_FIELDS = ("firstName", "lastName")
_HEADER_RULE = "no CR, LF or other control characters (the names form the To header's display name)"


class _Body(BaseModel):
    # allow_inf_nan: Python's JSON parser accepts NaN and Infinity, which no setting can hold.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False, strict=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_given(cls, data: Any) -> Any:
        """A field given as null is left out: an optional one takes its default (a PATCH keeps
        the current value), a required one is missing. One rule for every body, so no null
        reaches a room that expects a value."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


# API name of each SequenceSettings field (the seed's camelCase; the window hours keep theirs).
SETTINGS_NAMES = {
    "name": "name", "mailbox_id": "mailboxId", "timezone": "timezone", "weekdays_only": "weekdaysOnly",
    "start_hour": "sendWindowStartHour", "end_hour": "sendWindowEndHour",
    "auto_pause_on_reply": "autoPauseOnReply", "auto_complete": "autoComplete", "track_opens": "trackOpens",
    "track_clicks": "trackClicks", "list_unsubscribe": "listUnsubscribe",
    "stop_on_domain_reply": "stopOnDomainReply", "on_auto_reply": "onAutoReply",
    "auto_reply_delay_days": "autoReplyDelayDays", "bounce_pause_threshold": "bouncePauseThreshold",
    "mailbox_ids": "mailboxIds", "window_zone": "windowZone", "holidays": "holidays", "blackout_dates": "blackoutDates",
}


class VariantBody(_Body):
    """One A/B variant of an email step; a field left out uses the step's own."""

    name: Text | None = Field(None, description="1-32 letters, digits, '-' or '_' (A, B, C... when left out)")
    weight: int | None = Field(None, ge=0, le=1000, description="share of the traffic (1 when left out)")
    subject: Text | None = None
    body: Text | None = None
    text: Text | None = None


class AutoWinnerBody(_Body):
    """After ``after`` sends per variant, the best on ``metric`` takes the remaining traffic."""

    after: int = Field(ge=1, le=1_000_000)
    metric: Literal["replied", "opened", "clicked"] = "replied"


class StepBody(_Body):
    """One step: ``email`` (subject, body or html, text?), ``wait`` (one duration) or ``conditional``.

    The seed's names are accepted and answered in this API's: type ``send_email`` comes back as
    ``email``, ``delay`` as ``wait``, and ``html`` as ``body``. A wait comes back in the unit it
    was given in. A field that does not apply to the step's type (``waitDays`` on an email) is
    refused by name."""

    type: Text = Field(description="email (the seed's send_email), wait (or delay) or conditional; "
                       "answered as email, wait or conditional")
    subject: Text | None = Field(None, description="email: at most 998 characters; empty in a threaded "
                                 "follow-up means \"Re: <first subject>\"")
    body: Text | None = Field(None, description="email: the HTML body")
    html: Text | None = Field(None, description="email: the seed's name for body (answered as body)")
    text: Text | None = None
    thread: bool | None = None
    wait_days: float | None = Field(None, le=MAX_WAIT_DAYS)
    wait_hours: float | None = Field(None, le=MAX_WAIT_DAYS * 24, description="at most 3650 days")
    wait_minutes: float | None = Field(None, le=MAX_WAIT_DAYS * 24 * 60, description="at most 3650 days")
    delay_ms: float | None = Field(None, le=MAX_WAIT_DAYS * 86400 * 1000, description="at most 3650 days")
    condition: Text | None = None
    variants: list[VariantBody] | None = Field(None, description="A/B variants of an email step (2 to 10)")
    auto_winner: AutoWinnerBody | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class StepPatch(StepBody):
    """A step edit: with ``type`` the step is replaced, without it the given fields are merged."""

    # Optional here, required in StepBody: pydantic models narrow or widen fields this way, which
    # mypy sees as an incompatible override.
    type: Text | None = None  # type: ignore[assignment]


class SettingsPatch(_Body):
    """Sequence metadata; every field optional (PATCH): one left out or null is kept."""

    name: Name | None = None
    mailbox_id: Text | None = None
    timezone: Text | None = None
    weekdays_only: bool | None = None
    start_hour: int | None = Field(None, ge=0, le=23, alias="sendWindowStartHour")
    end_hour: int | None = Field(None, ge=1, le=24, alias="sendWindowEndHour")
    auto_pause_on_reply: bool | None = None
    auto_complete: bool | None = Field(None, description="complete the sequence (no new enrollments) when its last "
                                       "active contact finishes; false by default (docs/following-a-sequence.md)")
    track_opens: bool | None = None
    track_clicks: bool | None = None
    list_unsubscribe: bool | None = None
    stop_on_domain_reply: bool | None = None
    on_auto_reply: Text | None = None
    auto_reply_delay_days: float | None = Field(None, le=365)
    bounce_pause_threshold: float | None = None
    mailbox_ids: list[Text] | None = Field(None, max_length=100, description="inbox rotation: new contacts are "
                                           "spread over these mailboxes (the first is mailboxId); a contact stays "
                                           "on its mailbox for the whole thread")
    window_zone: Text | None = Field(None, description="'sequence' (default) or 'contact': open the window "
                                     "in each contact's own timezone field, falling back to the sequence's")
    holidays: list[Text] | None = Field(None, max_length=20, description="holiday calendars skipped like "
                                        "weekends: a country code ('US') or country-subdivision ('DE-BY')")
    blackout_dates: list[Text] | None = Field(None, max_length=366, description="ISO dates (YYYY-MM-DD) "
                                              "on which nothing is sent")

    def changes(self) -> dict[str, Any]:
        """The settings given, without the nulls: no setting can be unset, so null means "keep"."""
        return {k: v for k, v in self.model_dump(exclude_unset=True, exclude_none=True).items()
                if k in SETTINGS_NAMES}


class SequenceBody(SettingsPatch):
    """A new sequence: name and mailboxId (or mailboxIds) are required; steps may come along."""

    name: Name
    steps: list[StepBody] = []

    def settings(self) -> SequenceSettings:
        changes = self.changes()
        if not changes.get("mailbox_id") and not changes.get("mailbox_ids"):
            raise ValidationError("mailboxId", "is required (or mailboxIds, a pool to rotate through)")
        return SequenceSettings(**{"mailbox_id": "", **changes})


class CloneBody(_Body):
    name: Name | None = None


class EnrollBody(_Body):
    """One of: ``listId``, ``contactIds``, or ``contactEmail`` (+ ``mergeFields``, seed 003)."""

    list_id: DbId | None = None
    contact_ids: list[DbId] | None = None
    contact_email: Text | None = None
    merge_fields: dict[Text, Text] | None = Field(None, description="firstName and lastName: " + _HEADER_RULE)
    skip_invalid: bool = False

    def name_problem(self) -> tuple[str, str] | None:
        """(field, rule) of the first merge field that names the contact but cannot stand in a header."""
        for key in NAME_MERGE_FIELDS:
            problem = header_text_problem((self.merge_fields or {}).get(key, ""))
            if problem is not None:
                return f"mergeFields.{key}", problem
        return None


class PreviewBody(_Body):
    step_index: int = Field(ge=0, le=2**63 - 1)
    contact_id: DbId | None = None
    contact_email: Text | None = None
    variant: Text | None = Field(None, description="render this A/B variant (default: the contact's own)")


class ContactBody(_Body):
    email: Text
    first_name: HeaderText = Field("", description=_HEADER_RULE)
    last_name: HeaderText = Field("", description=_HEADER_RULE)
    company: Text = ""
    timezone: Text | None = Field(None, description="IANA zone, e.g. Europe/Berlin (kept as the 'timezone' field)")
    fields: dict[Text, Text] = {}


class ContactPatch(_Body):
    """A contact edit: a field left out or null is kept; ``fields`` are merged into the contact's."""

    email: Text | None = None
    first_name: HeaderText | None = Field(None, description=_HEADER_RULE)
    last_name: HeaderText | None = Field(None, description=_HEADER_RULE)
    company: Text | None = None
    timezone: Text | None = Field(None, description="IANA zone, e.g. Europe/Berlin (kept as the 'timezone' field)")
    fields: dict[Text, Text] | None = None


class ListBody(_Body):
    name: Name
    contact_ids: list[DbId] = []
    emails: list[Text] = []

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class MembersBody(_Body):
    contact_ids: list[DbId] = []
    emails: list[Text] = []


class PauseBody(_Body):
    reason: Text = "paused by an operator"


# -- responses --------------------------------------------------------------------------------

def rollup(counts: Mapping[str, int]) -> dict[str, int]:
    out = {status.value: int(counts.get(status.value, 0)) for status in EnrollmentStatus}
    out["total"] = sum(out.values())
    return out


def settings_json(settings: SequenceSettings) -> dict[str, Any]:
    return {api: getattr(settings, name) for name, api in SETTINGS_NAMES.items()}


def step_json(index: int, step: Step) -> dict[str, Any]:
    return {"index": index, "id": step.id, **step_to_fields(step)}


def sequence_json(sequence: Sequence, counts: Mapping[str, int], steps: list[Step] | None = None,
                  step_count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": sequence.id, **settings_json(sequence.settings), "status": sequence.status.value,
                           "statusReason": sequence.status_reason, "createdAt": iso(sequence.created_at),
                           "updatedAt": iso(sequence.updated_at), "contacts": rollup(counts)}
    if steps is not None:
        out["steps"] = [step_json(i, s) for i, s in enumerate(steps)]
        out["stepCount"] = len(steps)
    elif step_count is not None:
        out["stepCount"] = step_count
    return out


def contact_json(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "email": contact.email, "firstName": contact.first_name,
            "lastName": contact.last_name, "company": contact.company, "fields": dict(contact.fields)}


def progress_json(progress: ContactProgress, steps: list[Step]) -> dict[str, Any]:
    active = progress.status == EnrollmentStatus.ACTIVE.value
    return {
        "contactId": progress.contact_id, "enrollmentId": progress.enrollment_id, "email": progress.email,
        "status": progress.status,
        "stepIndex": live_index(steps, progress.cursor_ord) if active else None,
        "nextRunAt": iso(progress.due_at) if active else None,
        "lastEventAt": iso(progress.last_event_at), "enrolledAt": iso(progress.enrolled_at),
        "sentCount": progress.sent_count,
    }


class SuppressionBody(_Body):
    email: Text
    reason: Literal["unsubscribed", "bounced", "complaint", "manual"] = "manual"
    detail: Text | None = None
