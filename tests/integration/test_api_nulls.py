"""Bodies that pass JSON and pydantic's types but used to break the domain behind them (issue 13):
a null in a PATCH, an infinite or absurd number, a lone surrogate. Each must be "not given" or a
422 naming the field, never a 500, on the real daemon over its Unix socket."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from tests.integration.daemon_process import DripdProcess, running_dripd

EMAIL = {"type": "email", "subject": "Hi {{firstName}}", "body": "<p>Hello {{firstName}}</p>"}
SETTINGS = ["name", "mailboxId", "timezone", "weekdaysOnly", "sendWindowStartHour", "sendWindowEndHour",
            "autoPauseOnReply", "autoComplete", "trackOpens", "trackClicks", "listUnsubscribe", "stopOnDomainReply",
            "onAutoReply", "autoReplyDelayDays", "bouncePauseThreshold"]


@pytest.fixture(scope="module")
def dripd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DripdProcess]:
    with running_dripd(tmp_path_factory.mktemp("api-nulls")) as process:
        yield process
        # Whatever a test sent, the daemon never answered it with an internal error.
        assert "ERROR dripd.api" not in process.log(), process.log()[-3000:]


@pytest.fixture
def api(dripd: DripdProcess) -> Iterator[httpx.Client]:
    with dripd.client() as client:
        yield client


def raw(api: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    """A body as written (NaN, Infinity and lone surrogates are JSON that Python's parser takes)."""
    return api.request(method, path, content=text.encode(), headers={"Content-Type": "application/json"})


def refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["field"] == field, error
    return str(error["details"]["rule"])


def sequence(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = api.post("/api/sequences", json={"name": "nulls", "mailboxId": "sales", "steps": [EMAIL], **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("field", SETTINGS)
def test_a_null_setting_in_a_sequence_patch_is_not_given(api: httpx.Client, field: str) -> None:
    before = sequence(api, weekdaysOnly=True, sendWindowStartHour=9)
    response = api.patch(f"/api/sequences/{before['id']}", json={field: None, "trackOpens": True})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["trackOpens"] is True
    for name in SETTINGS:
        if name != "trackOpens":
            assert after[name] == before[name], name  # kept: never stored as null


def test_a_null_setting_in_a_new_sequence_takes_the_default(api: httpx.Client) -> None:
    created = sequence(api, timezone=None, weekdaysOnly=None, autoReplyDelayDays=None)
    assert (created["timezone"], created["weekdaysOnly"], created["autoReplyDelayDays"]) == ("UTC", False, 3.0)
    refused(api.post("/api/sequences", json={"name": None, "mailboxId": "sales"}), "name")


@pytest.mark.parametrize("text, field", [
    ('{"autoReplyDelayDays": Infinity}', "autoReplyDelayDays"),
    ('{"autoReplyDelayDays": 1e308}', "autoReplyDelayDays"),
    ('{"bouncePauseThreshold": NaN}', "bouncePauseThreshold"),
    ('{"name": "\\ud800"}', "name"),
])
def test_numbers_and_text_the_domain_cannot_hold_are_refused_in_a_sequence_patch(api: httpx.Client, text: str,
                                                                                 field: str) -> None:
    seq = sequence(api)
    refused(raw(api, "PATCH", f"/api/sequences/{seq['id']}", text), field)
    # Nothing was stored that would break the sequence later (a clone copies every setting).
    assert api.post(f"/api/sequences/{seq['id']}/clone", json={}).status_code == 201


@pytest.mark.parametrize("text, field", [
    ('{"type": "wait", "waitDays": Infinity}', "waitDays"),
    ('{"type": "wait", "waitHours": NaN}', "waitHours"),
    ('{"type": "wait", "waitDays": 1e300}', "waitDays"),
    ('{"type": "wait", "delayMs": 1e300}', "delayMs"),
    ('{"type": "email", "subject": "\\udfff", "body": "<p>x</p>"}', "subject"),
])
def test_a_step_the_scheduler_cannot_plan_is_refused(api: httpx.Client, text: str, field: str) -> None:
    seq = sequence(api)
    refused(raw(api, "POST", f"/api/sequences/{seq['id']}/steps", text), field)
    refused(raw(api, "PATCH", f"/api/sequences/{seq['id']}/steps/0", text), field)


def test_nulls_in_a_step_edit_and_a_clone_are_not_given(api: httpx.Client) -> None:
    seq = sequence(api)
    edited = api.patch(f"/api/sequences/{seq['id']}/steps/0", json={"type": None, "subject": None, "text": None})
    assert edited.status_code == 200 and edited.json()["subject"] == EMAIL["subject"], edited.text
    clone = api.post(f"/api/sequences/{seq['id']}/clone", json={"name": None})
    assert clone.status_code == 201 and clone.json()["name"] != "", clone.text


def test_nulls_and_surrogates_in_contacts(api: httpx.Client) -> None:
    contact = api.post("/api/contacts", json={"email": "nulls@example.org", "firstName": "Ada"}).json()
    kept = api.patch(f"/api/contacts/{contact['id']}", json={"email": None, "firstName": None, "lastName": None,
                                                              "company": None, "fields": None})
    assert kept.status_code == 200 and kept.json()["firstName"] == "Ada", kept.text
    created = api.post("/api/contacts", json={"email": "n2@example.org", "firstName": None, "fields": None})
    assert created.status_code == 201 and created.json()["firstName"] == "" and created.json()["fields"] == {}
    assert refused(api.post("/api/contacts", json={"email": None}), "email") == "is required"
    refused(raw(api, "POST", "/api/contacts", '{"email": "\\ud800@example.org"}'), "email")
    refused(raw(api, "POST", "/api/contacts", '{"email": "n3@example.org", "company": "\\ud800"}'), "company")
    bad_key = raw(api, "POST", "/api/contacts", '{"email": "n4@example.org", "fields": {"\\ud800": "x"}}')
    assert bad_key.status_code == 422 and bad_key.json()["error"]["details"]["field"].startswith("fields."), bad_key.text
    refused(raw(api, "PATCH", f"/api/contacts/{contact['id']}", '{"fields": {"title": "\\ud800"}}'), "fields.title")


def test_surrogates_in_lists_suppressions_and_verify(api: httpx.Client) -> None:
    refused(raw(api, "POST", "/api/lists", '{"name": "l", "emails": ["\\ud800@example.org"]}'), "emails[0]")
    refused(api.post("/api/lists", json={"name": "   "}), "name")
    refused(raw(api, "POST", "/api/suppressions", '{"email": "s@example.org", "detail": "\\ud800"}'), "detail")
    refused(raw(api, "POST", "/api/contacts/verify", '{"email": "\\ud800"}'), "email")


def test_nulls_in_lists_preview_and_a_mailbox_pause(api: httpx.Client) -> None:
    made = api.post("/api/lists", json={"name": "nl", "emails": None, "contactIds": None})
    assert made.status_code == 201 and made.json()["memberCount"] == 0, made.text
    added = api.post(f"/api/lists/{made.json()['id']}/members", json={"emails": None, "contactIds": None})
    assert added.status_code == 200, added.text
    refused(raw(api, "POST", f"/api/lists/{made.json()['id']}/members", '{"emails": ["\\udc00@example.org"]}'),
            "emails[0]")
    seq = sequence(api)
    refused(api.post(f"/api/sequences/{seq['id']}/preview", json={"stepIndex": None, "contactId": None}), "stepIndex")
    paused = api.post("/api/mailboxes/sales/pause", json={"reason": None})
    assert paused.status_code == 200, paused.text
    assert api.post("/api/mailboxes/sales/resume").status_code == 200


def test_nulls_in_enrollment(api: httpx.Client) -> None:
    seq = sequence(api)
    ok = api.post(f"/api/sequences/{seq['id']}/enroll",
                  json={"contactEmail": "enr@example.org", "mergeFields": None, "listId": None})
    assert ok.status_code == 201 and ok.json()["enrolled"] == 1, ok.text
    refused(api.post(f"/api/sequences/{seq['id']}/enroll",
                     json={"contactEmail": "enr2@example.org", "mergeFields": {"x": None}}), "mergeFields.x")
