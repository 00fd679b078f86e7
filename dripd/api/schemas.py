"""Request bodies (pydantic, at the edge) and the JSON shapes of responses (camelCase, as the seeds).

Request models check types only; the domain rules (a wait needs a duration, the first step is an
email, a window opens before it closes) live in model.py and window.py and name the field there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dripd.cadence import live_index
from dripd.clock import iso
from dripd.model import Contact, EnrollmentStatus, Sequence, SequenceSettings, Step
from dripd.steps import step_to_fields
from dripd.store import ContactProgress

DbId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a SQLite INTEGER row id


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False, strict=True)


# API name of each SequenceSettings field (the seed's camelCase; the window hours keep theirs).
SETTINGS_NAMES = {
    "name": "name", "mailbox_id": "mailboxId", "timezone": "timezone", "weekdays_only": "weekdaysOnly",
    "start_hour": "sendWindowStartHour", "end_hour": "sendWindowEndHour",
    "auto_pause_on_reply": "autoPauseOnReply", "auto_complete": "autoComplete", "track_opens": "trackOpens",
    "track_clicks": "trackClicks", "list_unsubscribe": "listUnsubscribe",
    "stop_on_domain_reply": "stopOnDomainReply", "on_auto_reply": "onAutoReply",
    "auto_reply_delay_days": "autoReplyDelayDays", "bounce_pause_threshold": "bouncePauseThreshold",
}


class StepBody(_Body):
    """One step: ``email`` (subject, body or html, text?), ``wait`` (one duration) or ``conditional``."""

    type: str
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    text: str | None = None
    thread: bool | None = None
    wait_days: float | None = None
    wait_hours: float | None = None
    wait_minutes: float | None = None
    delay_ms: float | None = None
    condition: str | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class StepPatch(StepBody):
    type: str | None = None  # type: ignore[assignment]


class SettingsPatch(_Body):
    """Sequence metadata; every field optional (PATCH)."""

    name: str | None = Field(None, min_length=1)
    mailbox_id: str | None = None
    timezone: str | None = None
    weekdays_only: bool | None = None
    start_hour: int | None = Field(None, ge=0, le=23, alias="sendWindowStartHour")
    end_hour: int | None = Field(None, ge=1, le=24, alias="sendWindowEndHour")
    auto_pause_on_reply: bool | None = None
    auto_complete: bool | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    list_unsubscribe: bool | None = None
    stop_on_domain_reply: bool | None = None
    on_auto_reply: str | None = None
    auto_reply_delay_days: float | None = None
    bounce_pause_threshold: float | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k in SETTINGS_NAMES}


class SequenceBody(SettingsPatch):
    """A new sequence: name and mailboxId are required; steps may come along."""

    name: str = Field(min_length=1)  # type: ignore[assignment]
    mailbox_id: str  # type: ignore[assignment]
    steps: list[StepBody] = []

    def settings(self) -> SequenceSettings:
        return SequenceSettings(**{k: v for k, v in self.changes().items() if v is not None})


class CloneBody(_Body):
    name: str | None = Field(None, min_length=1)


class EnrollBody(_Body):
    """One of: ``listId``, ``contactIds``, or ``contactEmail`` (+ ``mergeFields``, seed 003)."""

    list_id: DbId | None = None
    contact_ids: list[DbId] | None = None
    contact_email: str | None = None
    merge_fields: dict[str, str] | None = None
    skip_invalid: bool = False


class PreviewBody(_Body):
    step_index: int = Field(ge=0, le=2**63 - 1)
    contact_id: DbId | None = None
    contact_email: str | None = None


class ContactBody(_Body):
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    fields: dict[str, str] = {}


class ContactPatch(_Body):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    fields: dict[str, str] | None = None


class ListBody(_Body):
    name: str = Field(min_length=1)
    contact_ids: list[DbId] = []
    emails: list[str] = []


class MembersBody(_Body):
    contact_ids: list[DbId] = []
    emails: list[str] = []


class PauseBody(_Body):
    reason: str = "paused by an operator"


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
    email: str
    reason: Literal["unsubscribed", "bounced", "complaint", "manual"] = "manual"
    detail: str | None = None
