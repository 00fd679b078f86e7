"""Rows <-> domain values. The only place that knows how a model is laid out in a row: any
backend whose rows can be indexed by column name (sqlite3.Row, a dict) uses the same layout."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Callable, Protocol

from dripd.model import (
    Condition,
    Contact,
    Enrollment,
    EnrollmentStatus,
    Sequence,
    SequenceSettings,
    SequenceStatus,
    Step,
    StepType,
)
from dripd.variants import AutoWinner, Variant


class Row(Protocol):
    def __getitem__(self, column: str) -> Any: ...


def settings_to_json(settings: SequenceSettings) -> str:
    return json.dumps(dataclasses.asdict(settings), sort_keys=True)


@functools.lru_cache(maxsize=256)
def auto_complete_of(settings: str) -> bool:
    """``auto_complete`` from a sequence's settings JSON, parsed once per distinct text (the
    store reads it after every contact that finishes). A row without the key reads as the
    model's default, as ``sequence_from_row`` reads it."""
    return bool(json.loads(settings).get("auto_complete", SequenceSettings.auto_complete))


def sequence_from_row(row: Row) -> Sequence:
    known = {f.name for f in dataclasses.fields(SequenceSettings)}
    data = {k: v for k, v in json.loads(row["settings"]).items() if k in known}
    return Sequence(
        id=row["id"],
        settings=SequenceSettings(**data),
        status=SequenceStatus(row["status"]),
        status_reason=row["status_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def step_data(step: Step) -> str:
    data: dict[str, Any] = {
        "subject": step.subject,
        "body": step.body,
        "text": step.text,
        "wait_seconds": step.wait_seconds,
        "wait_unit": step.wait_unit,
        "condition": step.condition.value if step.condition else None,
        "thread": step.thread,
    }
    if step.variants:  # only then, so a step without variants stores what it always did
        data["variants"] = [dataclasses.asdict(v) for v in step.variants]
    if step.auto_winner is not None:
        data["auto_winner"] = dataclasses.asdict(step.auto_winner)
    return json.dumps(data, sort_keys=True)


def step_from_row(row: Row) -> Step:
    data = json.loads(row["data"])
    return Step(
        type=StepType(row["type"]),
        id=row["id"],
        ord=row["ord"],
        subject=data.get("subject", ""),
        body=data.get("body", ""),
        text=data.get("text"),
        wait_seconds=data.get("wait_seconds", 0.0),
        wait_unit=data.get("wait_unit", ""),  # absent in steps stored before it was kept
        condition=Condition(data["condition"]) if data.get("condition") else None,
        thread=data.get("thread", True),
        variants=tuple(Variant(**v) for v in data.get("variants", ())),
        auto_winner=AutoWinner(**data["auto_winner"]) if data.get("auto_winner") else None,
    )


# The decoder's C scanner, called without ``json.loads``'s Python layers (decode, raw_decode and
# two whitespace matches): 0.7 us for a contact's three fields against 3.3 us.
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # not in typeshed


def json_value(text: str) -> Any:
    """``json.loads``, faster for what the store wrote itself (three decodes per send: issue 14).

    The common empty object and list (no custom or merge fields, no ledger row yet) are made
    without the decoder; other text goes to the C scanner, and to ``json.loads`` (its errors and
    its tolerance of surrounding whitespace) when the scanner does not take it all. Each call
    returns a new value, as ``json.loads`` does."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # the scanner's "no value here"
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def contact_from_row(row: Row) -> Contact:
    return Contact(
        id=row["id"],
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        company=row["company"],
        fields=json_value(row["fields"]),
    )


# The columns of an enrollment that make its model, in the order ``enrollment_from_values`` takes.
ENROLLMENT_COLUMNS = ("id", "sequence_id", "contact_id", "mailbox_id", "status", "cursor_ord", "due_at",
                      "merge_fields", "sent_count", "enrolled_at", "last_event_at", "anchor_at")


# A status by its value through a dict: EnrollmentStatus(value) runs the enum's Python __call__
# and __new__ (0.6 us) on every send; an unknown value still raises as it did.
_ENROLLMENT_STATUS = {status.value: status for status in EnrollmentStatus}


def enrollment_from_values(values: tuple[Any, ...]) -> Enrollment:
    """The enrollment from its ``ENROLLMENT_COLUMNS`` by position (a plain tuple row). The send
    path's context read takes it so: a sqlite3.Row finds each column by comparing names, and its
    twenty-one lookups were ~1.5 % of the event loop's thread in the headline (issue 14)."""
    (id_, sequence_id, contact_id, mailbox_id, status, cursor_ord, due_at, merge_fields, sent_count, enrolled_at,
     last_event_at, anchor_at) = values
    return Enrollment(
        id=id_,
        sequence_id=sequence_id,
        contact_id=contact_id,
        mailbox_id=mailbox_id,
        status=_ENROLLMENT_STATUS.get(status) or EnrollmentStatus(status),
        cursor_ord=cursor_ord,
        due_at=due_at,
        merge_fields=json_value(merge_fields),
        sent_count=sent_count,
        enrolled_at=enrolled_at,
        last_event_at=last_event_at,
        anchor_at=anchor_at,
    )


def enrollment_from_row(row: Row) -> Enrollment:
    return enrollment_from_values(tuple(row[name] for name in ENROLLMENT_COLUMNS))
