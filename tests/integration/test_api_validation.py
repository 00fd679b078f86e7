"""Hostile and careless input at the API and CSV edge of the real daemon (issue 20 items 4-5,
issue 21 items 4, 5 and 7): every refusal is a 4xx naming the field and its rule, never a 500;
what is allowed but probably a mistake is answered with a warning; echoes match the input."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.api_client import EMAIL, create, error_of
from tests.integration.daemon_process import DripdProcess, MakeDripd
from tests.integration.waiting import wait_until

JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}


def _post_raw(api: httpx.Client, path: str, raw: str) -> httpx.Response:
    """A JSON body as written (NaN, Infinity and lone surrogates are not what httpx would send)."""
    return api.post(path, content=raw.encode("utf-8", "surrogatepass"), headers=JSON)


def _field(response: httpx.Response) -> str:
    return str(error_of(response, 422, "validation_error")["details"]["field"])


# -- issue 20.4: numbers and text no room behind the API can hold ------------------------------


@pytest.mark.parametrize(("raw", "field"), [
    ('{"type": "wait", "waitDays": 1e308}', "waitDays"),
    ('{"type": "wait", "waitDays": NaN}', "waitDays"),
    ('{"type": "wait", "waitDays": Infinity}', "waitDays"),
    ('{"type": "wait", "waitDays": -Infinity}', "waitDays"),
    ('{"type": "wait", "waitHours": 1e20}', "waitHours"),
    ('{"type": "wait", "delayMs": 1e300}', "delayMs"),
])
def test_a_duration_no_clock_can_hold_is_refused(api: httpx.Client, raw: str, field: str) -> None:
    sequence = create(api, f"durations {raw}", steps=[EMAIL])
    assert _field(_post_raw(api, f"/api/sequences/{sequence['id']}/steps", raw)) == field


def test_the_waits_of_a_sequence_add_up_to_ten_years_at_most(api: httpx.Client) -> None:
    sequence = create(api, "ten years", steps=[EMAIL, {"type": "wait", "waitDays": 3000}])
    path = f"/api/sequences/{sequence['id']}"
    error = error_of(api.post(f"{path}/steps", json={"type": "wait", "waitHours": 24 * 700}), 422, "validation_error")
    assert error["details"]["field"] == "steps[2].waitHours" and "3650 days" in error["details"]["rule"]
    assert api.post(f"{path}/steps", json={"type": "wait", "waitDays": 650}).status_code == 201
    # Every due time computed from the longest allowed sequence still prints as a date.
    assert api.post(f"{path}/enroll", json={"contactEmail": "decade@example.org"}).status_code == 201
    assert api.post(f"{path}/start").status_code == 200
    contacts = api.get(f"{path}/contacts")
    assert contacts.status_code == 200, contacts.text


def test_auto_reply_delay_days_no_clock_can_hold_is_refused(api: httpx.Client) -> None:
    sequence = create(api, "auto reply delay")
    for raw in ('{"autoReplyDelayDays": 1e308}', '{"autoReplyDelayDays": NaN}'):
        response = api.patch(f"/api/sequences/{sequence['id']}", content=raw, headers=JSON)
        assert _field(response) == "autoReplyDelayDays"


@pytest.mark.parametrize(("path", "raw", "field"), [
    ("/api/contacts", '{"email": "s1@example.org", "firstName": "\\ud800"}', "firstName"),
    ("/api/contacts", '{"email": "s2@example.org", "company": "\\udfff"}', "company"),
    ("/api/contacts", '{"email": "s3@example.org", "fields": {"plan": "\\ud800x"}}', "fields.plan"),
    ("/api/contacts", '{"email": "s4\\ud800@example.org"}', "email"),
])
def test_a_lone_surrogate_is_refused_by_field(api: httpx.Client, path: str, raw: str, field: str) -> None:
    assert _field(_post_raw(api, path, raw)) == field


def test_a_csv_field_over_the_limit_invalidates_its_row_not_the_daemon(api: httpx.Client) -> None:
    sequence = create(api, "long csv field", steps=[EMAIL])
    path = f"/api/sequences/{sequence['id']}/enroll/csv"
    text = f"email,note\nlong@example.org,{'x' * 131_073}\nshort@example.org,ok\n".encode()
    error = error_of(api.post(path, content=text, headers=CSV), 422, "validation_error")
    # the import's own field limit ([api.limits] string_chars) names the column
    assert error["details"]["invalid"] == [{"line": 2, "field": "note",
                                            "rule": "is longer than 100000 characters"}]
    skipped = api.post(path, params={"skipInvalid": "true"}, content=text, headers=CSV)
    assert skipped.status_code == 201, skipped.text
    assert skipped.json()["enrolled"] == 1 and skipped.json()["invalidCount"] == 1


# -- issue 20.5: contact data that could never be sent -----------------------------------------


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"email": "n1@example.org", "firstName": "Sam\r\nBcc: x@evil.example"}, "firstName", "CR or LF"),
    ({"email": "n2@example.org", "lastName": "Lee\x07"}, "lastName", "control characters"),
    ({"email": "jos\u00e9@example.org"}, "email", "SMTPUTF8"),
    ({"email": "a\\b@example.org"}, "email", "backslash"),
    ({"email": "a\x01b@example.org"}, "email", "control characters"),
])
def test_contact_data_that_cannot_be_sent_is_refused_at_the_api(api: httpx.Client, body: dict[str, Any],
                                                                field: str, words: str) -> None:
    error = error_of(api.post("/api/contacts", json=body), 422, "validation_error")
    assert error["details"]["field"] == field and words in error["details"]["rule"], error


def test_unsendable_contacts_are_refused_at_enrollment_and_csv_and_never_counted(
        dripd: DripdProcess, api: httpx.Client) -> None:
    sequence = create(api, "unsendable", steps=[EMAIL])
    path = f"/api/sequences/{sequence['id']}"
    error = error_of(api.post(f"{path}/enroll", json={"contactEmail": "zo\u00eb@example.org"}), 422,
                     "validation_error")
    assert error["details"]["field"] == "contactEmail"
    error = error_of(api.post(f"{path}/enroll", json={"contactEmail": "ok@example.org",
                                                      "mergeFields": {"firstName": "A\nB"}}), 422, "validation_error")
    assert error["details"]["field"] == "mergeFields.firstName"
    rows = ('email,firstName\nsendable1@example.org,Ann\nb\u00e4d@example.org,Bo\nback\\slash@example.org,Cy\n'
            'sendable2@example.org,"Di\r\nBcc: x@evil.example"\nsendable3@example.org,Ed\n')
    error = error_of(api.post(f"{path}/enroll/csv", content=rows.encode(), headers=CSV), 422, "validation_error")
    assert [(bad["line"], bad["field"]) for bad in error["details"]["invalid"]] == [
        (3, "email"), (4, "email"), (5, "firstName")]
    written_before = len(dripd.messages())
    enrolled = api.post(f"{path}/enroll/csv", params={"skipInvalid": "true"}, content=rows.encode(), headers=CSV)
    assert enrolled.status_code == 201 and enrolled.json()["enrolled"] == 2, enrolled.text
    assert api.post(f"{path}/start").status_code == 200
    dripd.wait_for_messages(written_before + 2)

    def counted_as_written() -> bool:
        return bool(api.get("/api/status").json()["sendsToday"] == len(dripd.messages()))

    # Every send counted today is a message written: none claimed for a contact it cannot reach.
    wait_until(counted_as_written, timeout=30, what=lambda: f"sendsToday {api.get('/api/status').json()} "
                                                            f"against {len(dripd.messages())} written")
    statuses = [c["status"] for c in api.get(f"{path}/contacts").json()["contacts"]]
    assert "failed" not in statuses, statuses


# -- issue 21.4: echoes that match the input ----------------------------------------------------


def test_a_wait_and_the_seed_names_are_echoed_as_documented(api: httpx.Client) -> None:
    sequence = create(api, "echoes", steps=[{"type": "send_email", "subject": "Hi", "html": "<p>Hi</p>"}])
    path = f"/api/sequences/{sequence['id']}"
    assert sequence["steps"][0] == {"index": 0, "id": sequence["steps"][0]["id"], "type": "email",
                                    "subject": "Hi", "body": "<p>Hi</p>"}
    added = api.post(f"{path}/steps", json={"type": "delay", "waitDays": 0.0007})
    assert added.status_code == 201 and added.json()["waitDays"] == 0.0007, added.text
    api.post(f"{path}/steps", json={"type": "wait", "waitHours": 48})
    waits = [s for s in api.get(path).json()["steps"] if s["type"] == "wait"]
    assert [{k: v for k, v in s.items() if k.startswith("wait")} for s in waits] == [
        {"waitDays": 0.0007}, {"waitHours": 48}]


# -- issue 21.5: silently accepted before --------------------------------------------------------


@pytest.mark.parametrize(("step", "field", "words"), [
    ({**EMAIL, "waitDays": 2}, "waitDays", "does not apply to an email step"),
    ({"type": "wait", "waitDays": 1, "subject": "x"}, "subject", "does not apply to a wait step"),
    ({**EMAIL, "subject": "Hi {{firstName"}, "subject", "unclosed merge tag"),
    ({**EMAIL, "body": "<p>Hi {{firstName|there</p>"}, "body", "unclosed merge tag"),
    ({**EMAIL, "subject": "s" * 100_000}, "subject", "at most 998 characters"),
])
def test_a_step_that_cannot_be_meant_is_refused_by_field(api: httpx.Client, step: dict[str, Any], field: str,
                                                         words: str) -> None:
    sequence = create(api, f"refused {field} {words}", steps=[EMAIL])
    error = error_of(api.post(f"/api/sequences/{sequence['id']}/steps", json=step), 422, "validation_error")
    assert error["details"]["field"] == field and words in error["details"]["rule"], error
    error = error_of(api.post("/api/sequences", json={"name": "x", "mailboxId": "sales", "steps": [EMAIL, step]}),
                     422, "validation_error")
    assert error["details"]["field"] == f"steps[1].{field}", error


@pytest.mark.parametrize("name", ["nul\x00name", "two\nlines", "bell\x07"])
def test_a_name_with_control_characters_is_refused(api: httpx.Client, name: str) -> None:
    error = error_of(api.post("/api/sequences", json={"name": name, "mailboxId": "sales"}), 422, "validation_error")
    assert error["details"]["field"] == "name" and "control characters" in error["details"]["rule"]
    sequence = create(api, "renamed later")
    assert _field(api.patch(f"/api/sequences/{sequence['id']}", json={"name": name})) == "name"
    assert _field(api.post("/api/lists", json={"name": name})) == "name"


def test_a_duplicate_name_and_a_trailing_conditional_are_warned_about(dripd: DripdProcess,
                                                                      api: httpx.Client) -> None:
    first = create(api, "Twice")
    assert "warnings" not in first
    second = create(api, "Twice", steps=[EMAIL])
    assert second["warnings"] == [{"field": "name", "message": f"sequence {first['id']} has the same name; "
                                                               f"refer to this one by its id {second['id']}"}]
    path = f"/api/sequences/{second['id']}/steps"
    trailing = api.post(path, json={"type": "conditional", "condition": "if_replied"}).json()
    assert [w["field"] for w in trailing["warnings"]] == ["steps[1]"]
    guarded = api.post(path, json={**EMAIL, "subject": "", "body": "<p>again</p>"}).json()
    assert "warnings" not in guarded
    wait_until(lambda: "steps[1] is the last step" in dripd.log(), timeout=10, what=dripd.log)


# -- issue 21.7: the errors the docs list --------------------------------------------------------


def test_unreadable_and_mistyped_bodies_answer_as_documented(api: httpx.Client) -> None:
    error = error_of(api.post("/api/contacts", content=b'{"email":', headers=JSON), 400, "bad_request")
    assert "not valid JSON" in error["message"]
    error = error_of(api.post("/api/contacts", content=b'{"email": "a@example.org"}'), 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    error_of(api.post("/api/contacts", content=b"email=a@example.org",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type")
    sequence = create(api, "csv type", steps=[EMAIL])
    csv_path = f"/api/sequences/{sequence['id']}/enroll/csv"
    for content_type in ("application/json", "text/plain", None):
        headers = {"Content-Type": content_type} if content_type else {}
        error = error_of(api.post(csv_path, content=b"email\nct@example.org\n", headers=headers), 415,
                         "unsupported_media_type")
        assert "text/csv" in error["message"]
    assert api.post(csv_path, content=b"email\nct@example.org\n",
                    headers={"Content-Type": "text/csv; charset=utf-8"}).status_code == 201
    # No body, no Content-Type needed; JSON with a charset is still JSON.
    assert api.post(f"/api/sequences/{sequence['id']}/clone").status_code == 201
    assert api.post("/api/contacts", content=b'{"email": "b@example.org"}',
                    headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 201


def test_no_docs_page_from_a_cdn_and_transition_errors_read_well(api: httpx.Client) -> None:
    error_of(api.get("/api/docs"), 404, "not_found")
    assert api.get("/api/openapi.json").status_code == 200
    sequence = create(api, "grammar", steps=[EMAIL])
    assert api.post(f"/api/sequences/{sequence['id']}/start").status_code == 200
    error = error_of(api.post(f"/api/sequences/{sequence['id']}/start"), 409, "invalid_transition")
    assert error["message"] == "cannot start an active sequence"


def test_dripctl_shows_the_warnings_on_stderr(dripd: DripdProcess) -> None:
    first = dripd.dripctl("sequences", "create", "ctl twice", "--mailbox", "sales")
    assert first.returncode == 0 and "warning" not in first.stderr, first.stderr
    second = dripd.dripctl("--json", "sequences", "create", "ctl twice", "--mailbox", "sales")
    assert second.returncode == 0, second.stderr
    assert "warning: name: sequence" in second.stderr and "has the same name" in second.stderr, second.stderr
    assert json.loads(second.stdout)["warnings"][0]["field"] == "name"  # stdout stays one JSON document


def test_the_log_names_a_step_by_its_index_as_the_api_does(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    tmp = process.maildir() / "tmp"
    shutil.rmtree(tmp)
    tmp.write_text("not a directory: every write fails, transiently")
    with process.client() as api:
        create(api, "earlier", steps=[EMAIL, EMAIL, EMAIL])  # takes step ids 1-3
        sequence = create(api, "logged", steps=[EMAIL])
        assert sequence["steps"][0]["id"] != 0
        path = f"/api/sequences/{sequence['id']}"
        assert api.post(f"{path}/enroll", json={"contactEmail": "logged@example.org"}).status_code == 201
        assert api.post(f"{path}/start").status_code == 200
    line = wait_until(lambda: next((x for x in process.log().splitlines() if "transient failure" in x), None),
                      timeout=30, what=process.log)
    assert "enrollment 1 step 0: transient failure" in line, line
    assert process.stop() == 0


def test_an_unsendable_contact_stored_before_the_rule_fails_without_being_counted(
        tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path)
    process.start()
    with process.client() as api:
        sequence = create(api, "stored before", steps=[EMAIL])
        path = f"/api/sequences/{sequence['id']}"
        for address in ("old1@example.org", "old2@example.org", "fine@example.org"):
            assert api.post(f"{path}/enroll", json={"contactEmail": address}).status_code == 201
    assert process.stop() == 0
    # What a daemon from before the API's rule may have stored: a non-ASCII local part, a CR/LF name.
    with sqlite3.connect(process.state_dir / "dripd.sqlite3") as db:
        db.execute("UPDATE contacts SET email = 'zo\u00eb@example.org' WHERE email = 'old1@example.org'")
        db.execute("UPDATE contacts SET first_name = 'Old\r\nBcc: x@evil.example' WHERE email = 'old2@example.org'")
    db.close()
    process.start()
    with process.client() as api:
        assert api.post(f"{path}/start").status_code == 200

        def settled() -> dict[str, str] | None:
            found = {c["email"]: c["status"] for c in api.get(f"{path}/contacts").json()["contacts"]}
            return found if "active" not in found.values() else None

        statuses = wait_until(settled, timeout=30, what=process.log)
        assert statuses == {"zo\u00eb@example.org": "failed", "old2@example.org": "failed",
                            "fine@example.org": "completed"}, statuses
        assert len(process.wait_for_messages(1)) == 1
        assert api.get("/api/status").json()["sendsToday"] == 1  # the one written, not three
    log = process.log()
    assert "step 0: failed: the contact's email must be ASCII" in log, log[-2000:]
    assert "step 0: failed: the contact's name must not contain CR or LF" in log, log[-2000:]
    assert process.stop() == 0
