"""A contact's first and last name form the To header's display name: the API refuses one that
cannot stand in a header (422 naming the field, the CSV line and column) on every path that
creates or updates a contact, so no send can fail on it after its ledger claim (issue 13).
Other text may hold line breaks: merged into a subject they become one space."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from tests.integration.daemon_process import DripdProcess, running_dripd

EMAIL = {"type": "email", "subject": "For {{company}}", "body": "<p>Hello {{firstName}}</p>"}
BAD_NAMES = [("Ann\r\nBcc: all@example.org", "must not contain CR or LF"),
             ("Ann\nLee", "must not contain CR or LF"),
             ("Ann\x07", "must not contain control characters"),
             ("Ann\x00", "must not contain control characters")]


@pytest.fixture(scope="module")
def dripd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DripdProcess]:
    with running_dripd(tmp_path_factory.mktemp("api-names")) as process:
        yield process
        assert "ERROR" not in process.log(), process.log()[-3000:]


@pytest.fixture
def api(dripd: DripdProcess) -> Iterator[httpx.Client]:
    with dripd.client() as client:
        yield client


def refused(response: httpx.Response, field: str, rule: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["field"] == field, error
    assert error["details"]["rule"] == rule, error
    return error  # type: ignore[no-any-return]


def sequence(api: httpx.Client, name: str) -> int:
    response = api.post("/api/sequences", json={"name": name, "mailboxId": "sales", "steps": [EMAIL]})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.mark.parametrize("value, rule", BAD_NAMES)
@pytest.mark.parametrize("field", ["firstName", "lastName"])
def test_a_contact_create_or_update_refuses_the_name(api: httpx.Client, field: str, value: str, rule: str) -> None:
    email = f"{field.lower()}.{len(value)}.{ord(value[-1])}@example.org"
    refused(api.post("/api/contacts", json={"email": email, field: value}), field, rule)
    assert api.get("/api/contacts", params={"email": email}).json()["contacts"] == []
    contact = api.post("/api/contacts", json={"email": email, field: "Ann"}).json()
    refused(api.patch(f"/api/contacts/{contact['id']}", json={field: value}), field, rule)
    assert api.get(f"/api/contacts/{contact['id']}").json()[field] == "Ann"


@pytest.mark.parametrize("value, rule", BAD_NAMES)
@pytest.mark.parametrize("field", ["firstName", "lastName"])
def test_enrollment_refuses_the_name_in_its_merge_fields(api: httpx.Client, field: str, value: str, rule: str) -> None:
    seq = sequence(api, f"enroll {field} {ord(value[-1])}")
    response = api.post(f"/api/sequences/{seq}/enroll",
                        json={"contactEmail": f"merge.{seq}@example.org", "mergeFields": {field: value}})
    refused(response, f"mergeFields.{field}", rule)
    assert api.get(f"/api/sequences/{seq}/contacts").json()["total"] == 0


def test_csv_enrollment_names_the_line_and_the_column(api: httpx.Client) -> None:
    seq = sequence(api, "csv names")
    text = ('email,First Name,lastName,company\n'
            'ok1@example.org,Ann,Lee,Acme\n'
            'bad1@example.org,"Bo\nBcc: all@example.org",Lee,Acme\n'
            'bad2@example.org,Cy,"Ray\x07",Acme\n'
            'ok2@example.org,Di,Tab\there,"Multi\nline Inc"\n')
    url = f"/api/sequences/{seq}/enroll/csv"
    headers = {"Content-Type": "text/csv"}
    error = refused(api.post(url, content=text.encode(), headers=headers), "csv",
                    "line 3: First Name: must not contain CR or LF (and 1 more); nothing was enrolled")
    assert [(bad["line"], bad["field"]) for bad in error["details"]["invalid"]] == [(3, "First Name"), (5, "lastName")]
    assert api.get(f"/api/sequences/{seq}/contacts").json()["total"] == 0

    result = api.post(url, params={"skipInvalid": "true"}, content=text.encode(), headers=headers)
    assert result.status_code == 201, result.text
    assert result.json()["enrolled"] == 2 and result.json()["invalidCount"] == 2
    enrolled = {c["email"] for c in api.get(f"/api/sequences/{seq}/contacts").json()["contacts"]}
    assert enrolled == {"ok1@example.org", "ok2@example.org"}


def test_other_fields_may_hold_line_breaks_and_the_message_still_goes(api: httpx.Client, dripd: DripdProcess) -> None:
    contact = api.post("/api/contacts", json={"email": "lines@example.org", "firstName": "Eve\tTab",
                                              "company": "Multi\r\nline Inc", "fields": {"note": "a\nb"}})
    assert contact.status_code == 201, contact.text
    seq = sequence(api, "line breaks")
    assert api.post(f"/api/sequences/{seq}/enroll", json={"contactIds": [contact.json()["id"]]}).status_code == 201
    assert api.post(f"/api/sequences/{seq}/start").status_code == 200
    sent = [m for m in dripd.wait_for_messages(1) if m["To"].addresses[0].addr_spec == "lines@example.org"]
    assert len(sent) == 1 and sent[0]["Subject"] == "For Multi line Inc"
