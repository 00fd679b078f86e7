"""Enrollment (JSON and CSV), contacts, lists, suppressions, preview, mailboxes and status on the
real daemon over its real Unix socket."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

import httpx
import pytest

from tests.integration.api_client import EMAIL, create, error_of
from tests.integration.daemon_process import DripdProcess, fast_mailbox, running_dripd


@pytest.fixture(scope="module")
def dripd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DripdProcess]:
    root = tmp_path_factory.mktemp("api-enroll")
    boxes = [fast_mailbox(root), fast_mailbox(root, "warm", daily_cap=50, hourly_cap=10, burst=1,
                                               warmup=[[7, 10], [14, 25]], warmup_start=dt.date(2020, 1, 1))]
    with running_dripd(root, mailboxes=boxes) as process:
        yield process


def enroll(api: httpx.Client, sequence_id: int, body: dict[str, Any]) -> httpx.Response:
    return api.post(f"/api/sequences/{sequence_id}/enroll", json=body)


def test_contacts_crud_and_search(api: httpx.Client) -> None:
    made = api.post("/api/contacts", json={"email": "Ann@Example.org", "firstName": "Ann", "company": "Acme",
                                           "fields": {"market": "EU"}})
    assert made.status_code == 201
    ann = made.json()
    assert ann["email"] == "ann@example.org" and ann["fields"] == {"market": "EU"}
    assert api.get(f"/api/contacts/{ann['id']}").json() == ann
    error_of(api.post("/api/contacts", json={"email": "ann@example.org"}), 409, "conflict")
    assert error_of(api.post("/api/contacts", json={"email": "not-an-address"}), 422,
                    "validation_error")["details"]["field"] == "email"
    updated = api.patch(f"/api/contacts/{ann['id']}", json={"lastName": "Lee", "fields": {"tier": "gold"}}).json()
    assert updated["lastName"] == "Lee" and updated["fields"] == {"market": "EU", "tier": "gold"}
    found = api.get("/api/contacts", params={"email": "ann@"}).json()["contacts"]
    assert [c["id"] for c in found] == [ann["id"]]
    assert api.delete(f"/api/contacts/{ann['id']}").status_code == 204
    error_of(api.get(f"/api/contacts/{ann['id']}"), 404, "not_found")
    error_of(api.delete(f"/api/contacts/{ann['id']}"), 404, "not_found")


def test_lists(api: httpx.Client) -> None:
    made = api.post("/api/lists", json={"name": "prospects", "emails": ["p1@example.org", "p2@example.org"]})
    assert made.status_code == 201 and made.json()["memberCount"] == 2
    list_id = made.json()["id"]
    error_of(api.post("/api/lists", json={"name": "prospects"}), 409, "conflict")
    added = api.post(f"/api/lists/{list_id}/members", json={"emails": ["p3@example.org"]}).json()
    assert [m["email"] for m in added["members"]] == ["p1@example.org", "p2@example.org", "p3@example.org"]
    removed = api.delete(f"/api/lists/{list_id}/members/{added['members'][0]['id']}").json()
    assert removed["memberCount"] == 2
    assert {"id": list_id, "name": "prospects", "memberCount": 2} in api.get("/api/lists").json()["lists"]
    error_of(api.get("/api/lists/999"), 404, "not_found")
    error_of(api.post("/api/lists/999/members", json={"emails": ["x@example.org"]}), 404, "not_found")
    assert error_of(api.post(f"/api/lists/{list_id}/members", json={"emails": ["bad"]}), 422,
                    "validation_error")["details"]["field"] == "emails[0]"
    throwaway = api.post("/api/lists", json={"name": "temp"}).json()["id"]
    assert api.delete(f"/api/lists/{throwaway}").status_code == 204
    error_of(api.delete(f"/api/lists/{throwaway}"), 404, "not_found")


def test_enroll_by_list_ids_and_email_with_409s(api: httpx.Client) -> None:
    seq = create(api, "enrolling", steps=[EMAIL])
    sid = seq["id"]
    list_id = api.post("/api/lists", json={"name": "batch", "emails": ["b1@example.org", "b2@example.org"]}).json()["id"]
    result = enroll(api, sid, {"listId": list_id})
    assert result.status_code == 201 and result.json()["enrolled"] == 2
    # Seed 003: enrolling an already-active contact is an error, and nothing is half-written.
    c3 = api.post("/api/contacts", json={"email": "b3@example.org"}).json()["id"]
    b1 = api.get("/api/contacts", params={"email": "b1@example.org"}).json()["contacts"][0]["id"]
    error = error_of(enroll(api, sid, {"contactIds": [c3, b1]}), 409, "already_enrolled")
    assert error["details"]["email"] == "b1@example.org"
    assert api.get(f"/api/sequences/{sid}").json()["contacts"]["active"] == 2
    skipped = enroll(api, sid, {"contactIds": [c3, b1], "skipInvalid": True}).json()
    assert skipped["enrolled"] == 1 and skipped["skipped"][0]["reason"] == "already_enrolled"
    one = enroll(api, sid, {"contactEmail": "New@Example.org", "mergeFields": {"firstName": "Nia", "market": "APAC"}})
    assert one.json()["enrolled"] == 1
    error_of(enroll(api, sid, {"contactEmail": "new@example.org"}), 409, "already_enrolled")
    # Bad bodies and unknown ids.
    assert error_of(enroll(api, sid, {"contactEmail": "no-at-sign"}), 422,
                    "validation_error")["details"]["field"] == "contactEmail"
    error_of(enroll(api, sid, {}), 422, "validation_error")
    error_of(enroll(api, sid, {"listId": 1, "contactIds": [1]}), 422, "validation_error")
    error_of(enroll(api, sid, {"listId": 999}), 404, "not_found")
    error_of(enroll(api, sid, {"contactIds": [99999]}), 404, "not_found")
    error_of(enroll(api, 9999, {"contactIds": [c3]}), 404, "not_found")

    progress = api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]
    assert len(progress) == 4 and {p["status"] for p in progress} == {"active"}
    assert set(progress[0]) >= {"contactId", "email", "status", "stepIndex", "nextRunAt", "lastEventAt"}
    assert progress[0]["stepIndex"] == 0 and progress[0]["nextRunAt"] is None  # draft: held
    assert progress[0]["lastEventAt"].endswith("Z")

    # Cancel one contact; it may then be enrolled again (seed 003).
    assert api.post(f"/api/sequences/{sid}/contacts/{c3}/cancel").json()["status"] == "cancelled"
    error_of(api.post(f"/api/sequences/{sid}/contacts/{c3}/cancel"), 404, "not_found")
    assert enroll(api, sid, {"contactIds": [c3]}).json()["enrolled"] == 1
    rollup = api.get(f"/api/sequences/{sid}").json()["contacts"]
    assert rollup["active"] == 4 and rollup["cancelled"] == 1 and rollup["total"] == 5


def test_suppressed_address_is_409(api: httpx.Client) -> None:
    seq = create(api, "suppression", steps=[EMAIL])
    made = api.post("/api/suppressions", json={"email": "gone@example.org", "reason": "unsubscribed"})
    assert made.status_code == 201
    error_of(enroll(api, seq["id"], {"contactEmail": "gone@example.org"}), 409, "suppressed")
    listed = api.get("/api/suppressions").json()["suppressions"]
    assert any(s["email"] == "gone@example.org" and s["reason"] == "unsubscribed" for s in listed)
    assert api.delete("/api/suppressions/gone@example.org").status_code == 204
    error_of(api.delete("/api/suppressions/gone@example.org"), 404, "not_found")
    assert enroll(api, seq["id"], {"contactEmail": "gone@example.org"}).json()["enrolled"] == 1


def test_preview(api: httpx.Client) -> None:
    seq = create(api, "preview", steps=[
        {"type": "email", "subject": "Hey {{firstName}}, quick question",
         "body": "<p>Hi {{firstName}},</p><p>{{company}} expanded into {{market}}.</p>"},
        {"type": "wait", "waitDays": 3},
        {"type": "email", "subject": "", "body": "<p>Bumping this, {{firstName}}</p>"},
    ])
    contact = api.post("/api/contacts", json={"email": "alice@acme.com", "firstName": "Alice",
                                              "company": "Acme Corp"}).json()
    url = f"/api/sequences/{seq['id']}/preview"
    first = api.post(url, json={"stepIndex": 0, "contactId": contact["id"]}).json()
    assert first["subject"] == "Hey Alice, quick question"
    assert "Acme Corp expanded into {{market}}" in first["html"] and "Alice" in first["text"]
    assert first["missing"] == ["market"]
    assert first["headers"]["To"] == "Alice <alice@acme.com>" and first["headers"]["From"] == "Sales <sales@example.com>"
    follow = api.post(url, json={"stepIndex": 2, "contactEmail": "alice@acme.com"}).json()
    assert follow["subject"] == "Re: Hey Alice, quick question" and "In-Reply-To" in follow["headers"]
    assert error_of(api.post(url, json={"stepIndex": 1, "contactId": contact["id"]}), 422,
                    "validation_error")["details"]["field"] == "stepIndex"
    error_of(api.post(url, json={"stepIndex": 9, "contactId": contact["id"]}), 404, "not_found")
    error_of(api.post(url, json={"stepIndex": 0, "contactId": 99999}), 404, "not_found")
    error_of(api.post(url, json={"stepIndex": 0, "contactEmail": "nobody@example.org"}), 404, "not_found")
    assert error_of(api.post(url, json={"stepIndex": -1, "contactId": 1}), 422,
                    "validation_error")["details"]["field"] == "stepIndex"


def csv_post(api: httpx.Client, sequence_id: int, text: str, skip: bool = False) -> httpx.Response:
    return api.post(f"/api/sequences/{sequence_id}/enroll/csv", params={"skipInvalid": str(skip).lower()},
                    content=text.encode(), headers={"content-type": "text/csv"})


def test_csv_all_or_nothing_and_skip_invalid(api: httpx.Client) -> None:
    seq = create(api, "csv", steps=[EMAIL])
    text = ('email,firstName,company,market\n'
            'c1@example.org,Cy,"Acme, Inc.",EU\n'
            'not-an-email,X,Y,Z\n'
            'c2@example.org,Di,Beta,"multi\nline"\n'
            'c1@example.org,Dup,,\n')
    error = error_of(csv_post(api, seq["id"], text), 422, "validation_error")
    assert error["details"]["line"] == 3 and error["details"]["invalidCount"] == 2
    assert [bad["line"] for bad in error["details"]["invalid"]] == [3, 6]  # the quoted newline spans line 4-5
    assert api.get(f"/api/sequences/{seq['id']}").json()["contacts"]["total"] == 0  # nothing half-written

    result = csv_post(api, seq["id"], text, skip=True)
    assert result.status_code == 201
    body = result.json()
    assert (body["rows"], body["enrolled"], body["invalidCount"]) == (4, 2, 2)
    preview = api.post(f"/api/sequences/{seq['id']}/preview", json={"stepIndex": 0, "contactEmail": "c1@example.org"})
    assert preview.json()["missing"] == []
    # Already-enrolled rows: refused with their line, or skipped when asked.
    again = 'email\nc3@example.org\nc2@example.org\n'
    error = error_of(csv_post(api, seq["id"], again), 409, "already_enrolled")
    assert error["details"]["refused"][0]["line"] == 3
    skipped = csv_post(api, seq["id"], again, skip=True).json()
    assert skipped["enrolled"] == 1 and skipped["skipped"][0]["line"] == 3
    error_of(csv_post(api, seq["id"], "name\nx\n"), 422, "validation_error")  # no email column
    error_of(csv_post(api, seq["id"], ""), 422, "validation_error")
    error_of(csv_post(api, 9999, "email\nx@example.org\n"), 404, "not_found")


def test_csv_100k_rows(api: httpx.Client) -> None:
    seq = create(api, "big csv", steps=[EMAIL])
    lines = ["email,firstName,company,market"] + [f"big{i}@example.org,N{i},Co{i % 97},M{i % 5}" for i in range(100_000)]
    response = csv_post(api, seq["id"], "\n".join(lines) + "\n")  # how fast: bench/bench_api.py
    assert response.status_code == 201, response.text
    assert response.json()["enrolled"] == 100_000
    assert api.get(f"/api/sequences/{seq['id']}").json()["contacts"]["active"] == 100_000


def test_mailboxes_and_status(api: httpx.Client) -> None:
    boxes = {m["id"]: m for m in api.get("/api/mailboxes").json()["mailboxes"]}
    assert set(boxes) == {"sales", "warm"}
    warm = boxes["warm"]
    assert (warm["dailyCap"], warm["hourlyCap"], warm["dailyCapToday"]) == (50, 10, 50)
    assert warm["warmup"]["done"] is True and warm["tokensNow"] == 1 and warm["sendsToday"] == 0
    assert warm["nextSendAt"].endswith("Z") and warm["paused"] is False
    paused = api.post("/api/mailboxes/warm/pause", json={"reason": "checking DNS"}).json()
    assert paused["paused"] is True and paused["pausedReason"] == "checking DNS"
    assert api.post("/api/mailboxes/warm/resume").json()["paused"] is False
    error_of(api.get("/api/mailboxes/nope"), 404, "not_found")
    error_of(api.post("/api/mailboxes/nope/resume"), 404, "not_found")
    status = api.get("/api/status").json()
    assert status["version"] and status["uptimeSeconds"] >= 0 and status["mailboxes"] == 2
    assert status["queueDepth"] >= 0 and status["uncertainSends"] == 0
