"""The input rules at the API's edge, each on its own (the real-daemon tests are in
tests/integration/test_api_validation.py): Content-Type, CSV field length, sendable addresses,
merge-tag syntax, the sum of waits, representable resume times and step labels in logs."""

from __future__ import annotations

import datetime as dt

import pytest

MAX_FIELD_CHARS = 131_072  # the csv module's own field limit
from dripd.api.csv_import import parse_all
from dripd.api.media import media_problem
from dripd.errors import ValidationError
from dripd.model import Step, StepType, normalize_email
from dripd.policy import auto_reply_resume_at
from dripd.render import address_problem, template_problem
from dripd.steps import check_step_list, step_from_fields, step_label

EMAIL = {"type": "email", "subject": "Hi", "body": "<p>b</p>"}


@pytest.mark.parametrize(("method", "path", "content_type", "has_body", "expected"), [
    ("POST", "/api/contacts", "application/json", True, None),
    ("POST", "/api/contacts", "application/json; charset=utf-8", True, None),
    ("POST", "/api/contacts", "application/merge-patch+json", True, None),
    ("POST", "/api/contacts", None, True, "application/json (got none)"),
    ("PATCH", "/api/contacts/1", "text/plain", True, "application/json (got text/plain)"),
    ("POST", "/api/sequences/1/start", None, False, None),
    ("GET", "/api/contacts", "text/plain", True, None),
    ("POST", "/api/sequences/1/enroll/csv", "text/csv; charset=utf-8", True, None),
    ("POST", "/api/sequences/1/enroll/csv", "application/json", True, "text/csv (got application/json)"),
    ("POST", "/api/sequences/1/enroll/csv", None, True, "text/csv (got none)"),
])
def test_the_content_type_rule(method: str, path: str, content_type: str | None, has_body: bool,
                               expected: str | None) -> None:
    problem = media_problem(method, path, content_type, has_body)
    assert (problem is None) if expected is None else (problem is not None and problem.endswith(expected)), problem


def test_a_csv_field_over_the_limit_is_a_row_error_naming_its_column() -> None:
    rows = parse_all([b"email,note\n", b"a@example.org," + b"y" * (MAX_FIELD_CHARS + 1) + b"\nb@example.org,ok\n"])
    assert rows.invalid == [{"line": 2, "field": "note", "rule": "is longer than 100000 characters"}]
    assert [contact.email for _, contact, _ in rows.valid] == ["b@example.org"]


@pytest.mark.parametrize(("address", "words"), [
    ("jos\u00e9@example.org", "SMTPUTF8"),
    ("a\\b@example.org", "backslash"),
    ("a\x01b@example.org", "control characters"),
    ("a\x7fb@example.org", "control characters"),
])
def test_an_address_no_message_can_go_to_is_refused_where_it_enters(address: str, words: str) -> None:
    problem = address_problem(address)
    assert problem is not None and words in problem
    with pytest.raises(ValidationError) as caught:
        normalize_email(address, field_name="contactEmail")
    assert caught.value.field == "contactEmail" and words in caught.value.rule
    assert normalize_email("Ok.Name+tag@Example.org") == "ok.name+tag@example.org"


@pytest.mark.parametrize(("source", "unclosed"), [
    ("Hi {{firstName", True), ("{{a}} and {{b|x", True), ("Hi {{firstName}}", False),
    ("{{ }} stays literal", False), ("{{first name}} stays literal", False), ("{Hi|Hello}", False),
])
def test_an_unclosed_merge_tag(source: str, unclosed: bool) -> None:
    assert (template_problem(source) is not None) is unclosed


def test_the_waits_of_a_sequence_add_up_to_ten_years() -> None:
    steps = [step_from_fields(EMAIL), step_from_fields({"type": "wait", "waitDays": 3000}),
             step_from_fields({"type": "wait", "waitHours": 650 * 24})]
    check_step_list(steps)
    with pytest.raises(ValidationError) as caught:
        check_step_list(steps + [step_from_fields({"type": "wait", "waitMinutes": 1})])
    assert caught.value.field == "steps[3].waitMinutes"
    with pytest.raises(ValidationError, match="at most 3650 days"):
        step_from_fields({"type": "wait", "waitHours": 1e20})


def test_an_out_of_office_return_no_clock_can_hold_falls_back_to_the_delay() -> None:
    now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc).timestamp()
    assert auto_reply_resume_at(dt.date(9999, 12, 31), "Europe/Berlin", now, 3) == now + 3 * 86400
    back = auto_reply_resume_at(dt.date(2026, 12, 10), "UTC", now, 3)
    assert back == dt.datetime(2026, 12, 11, tzinfo=dt.timezone.utc).timestamp()


def test_a_step_is_named_by_its_index_in_logs() -> None:
    steps = [Step(StepType.EMAIL, id=7), Step(StepType.WAIT, id=9, wait_seconds=60)]
    assert step_label(steps, 9) == "step 1"
    assert step_label(steps, 8) == "a deleted step (id 8)"
