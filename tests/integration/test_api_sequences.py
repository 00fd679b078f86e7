"""Seed 000's sequence and step endpoints, transitions and their error codes, on the real
daemon over its real Unix socket."""

from __future__ import annotations

import os
import stat
from typing import Any

import httpx
import pytest

from tests.integration.api_client import EMAIL, create, error_of
from tests.integration.daemon_process import DripdProcess


def test_socket_is_0660(dripd: DripdProcess) -> None:
    assert stat.S_ISSOCK(os.stat(dripd.socket).st_mode)
    assert stat.S_IMODE(os.stat(dripd.socket).st_mode) == 0o660


def test_create_get_list_patch(api: httpx.Client) -> None:
    seq = create(api, "Q1 outbound", timezone="Europe/Berlin", weekdaysOnly=True, sendWindowStartHour=9,
                 sendWindowEndHour=17, autoPauseOnReply=True, steps=[EMAIL, {"type": "wait", "waitDays": 2}])
    assert seq["id"] > 0 and seq["status"] == "draft" and seq["mailboxId"] == "sales"
    assert seq["sendWindowStartHour"] == 9 and seq["weekdaysOnly"] is True
    assert [s["type"] for s in seq["steps"]] == ["email", "wait"] and seq["steps"][1]["waitDays"] == 2
    assert seq["contacts"]["total"] == 0

    got = api.get(f"/api/sequences/{seq['id']}").json()
    assert got["name"] == "Q1 outbound" and len(got["steps"]) == 2
    listed = api.get("/api/sequences").json()["sequences"]
    mine = next(s for s in listed if s["id"] == seq["id"])
    assert mine["stepCount"] == 2 and set(mine["contacts"]) >= {"active", "completed", "replied", "cancelled",
                                                                "bounced", "total"}
    assert [s["id"] for s in api.get("/api/sequences", params={"name": "Q1 outbound"}).json()["sequences"]] == [seq["id"]]

    patched = api.patch(f"/api/sequences/{seq['id']}", json={"name": "Q1", "sendWindowEndHour": 24,
                                                              "trackOpens": True}).json()
    assert (patched["name"], patched["sendWindowEndHour"], patched["trackOpens"]) == ("Q1", 24, True)
    assert patched["sendWindowStartHour"] == 9  # untouched fields stay


def test_steps_append_edit_delete(api: httpx.Client) -> None:
    seq = create(api, "steps", steps=[EMAIL])
    base = f"/api/sequences/{seq['id']}/steps"
    added = api.post(base, json={"type": "wait", "waitHours": 36})
    assert added.status_code == 201 and added.json() == {"index": 1, "id": added.json()["id"], "type": "wait",
                                                          "waitHours": 36}
    assert api.post(base, json={"type": "conditional", "condition": "if_replied"}).status_code == 201
    assert api.post(base, json={"type": "send_email", "html": "<p>again</p>", "subject": ""}).json()["type"] == "email"
    # Partial edit keeps the other fields; a body with a type replaces the step.
    edited = api.patch(f"{base}/0", json={"subject": "New {{company}}"}).json()
    assert edited["subject"] == "New {{company}}" and edited["body"] == EMAIL["body"]
    assert api.patch(f"{base}/1", json={"waitDays": 1}).json() == {"index": 1, "id": added.json()["id"],
                                                                   "type": "wait", "waitDays": 1}
    replaced = api.patch(f"{base}/3", json={"type": "email", "subject": "X", "body": "<p>x</p>", "text": "x"}).json()
    assert replaced["text"] == "x" and "thread" not in replaced
    remaining = api.delete(f"{base}/1").json()["steps"]
    assert [s["index"] for s in remaining] == [0, 1, 2]
    assert [s["type"] for s in remaining] == ["email", "conditional", "email"]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "mailboxId": "sales", "steps": [{"type": "wait", "waitDays": 1}]}, "steps[0].type"),
    ({"name": "x", "mailboxId": "sales", "steps": [EMAIL, {"type": "wait"}]}, "steps[1].waitDays"),
    ({"name": "x", "mailboxId": "sales", "steps": [EMAIL, {"type": "conditional", "condition": "if_bored"}]},
     "steps[1].condition"),
    ({"name": "x", "mailboxId": "sales", "steps": [{"type": "fax"}]}, "steps[0].type"),
    ({"name": "x", "mailboxId": "sales", "steps": [{"type": "email", "subject": 3, "body": "b"}]}, "steps[0].subject"),
    ({"name": "x", "mailboxId": "nope"}, "mailboxId"),
    ({"mailboxId": "sales"}, "name"),
    ({"name": "x", "mailboxId": "sales", "sendWindowStartHour": 24}, "sendWindowStartHour"),
    ({"name": "x", "mailboxId": "sales", "sendWindowStartHour": 10, "sendWindowEndHour": 9}, "sendWindowEndHour"),
    ({"name": "x", "mailboxId": "sales", "timezone": "Mars/Olympus"}, "timezone"),
    ({"name": "x", "mailboxId": "sales", "colour": "red"}, "colour"),
])
def test_bad_bodies_name_the_field(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    error = error_of(api.post("/api/sequences", json=body), 422, "validation_error")
    assert error["details"]["field"] == field, error
    assert error["details"]["rule"]


def test_malformed_json_is_400_as_documented(api: httpx.Client) -> None:
    response = api.post("/api/sequences", content=b"{nope", headers={"content-type": "application/json"})
    error_of(response, 400, "bad_request")


def test_step_errors(api: httpx.Client) -> None:
    seq = create(api, "step errors", steps=[EMAIL])
    base = f"/api/sequences/{seq['id']}/steps"
    assert error_of(api.post(base, json={"type": "wait", "waitDays": -1}), 422, "validation_error")["details"]["field"] == "waitDays"
    assert error_of(api.post(base, json={"type": "wait", "waitDays": 1, "delayMs": 5}), 422,
                    "validation_error")["details"]["field"] == "delayMs"
    error_of(api.patch(f"{base}/7", json={"subject": "x"}), 404, "not_found")
    error_of(api.delete(f"{base}/7"), 404, "not_found")
    # The first step must stay an email.
    assert error_of(api.patch(f"{base}/0", json={"type": "wait", "waitDays": 1}), 422,
                    "validation_error")["details"]["field"] == "steps[0].type"


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    for method, path in (("GET", "/api/sequences/9999"), ("PATCH", "/api/sequences/9999"),
                         ("POST", "/api/sequences/9999/start"), ("POST", "/api/sequences/9999/steps"),
                         ("GET", "/api/sequences/9999/contacts"), ("GET", "/api/nothing-here")):
        body = {"name": "x"} if method == "PATCH" else EMAIL if path.endswith("steps") else None
        error_of(api.request(method, path, json=body), 404, "not_found")


def test_transitions_and_their_409s(api: httpx.Client) -> None:
    seq = create(api, "transitions", steps=[EMAIL])
    url = f"/api/sequences/{seq['id']}"
    error_of(api.post(f"{url}/resume"), 409, "invalid_transition")
    error_of(api.post(f"{url}/pause"), 409, "invalid_transition")
    assert api.post(f"{url}/start").json()["status"] == "active"
    error_of(api.post(f"{url}/start"), 409, "invalid_transition")
    assert api.post(f"{url}/pause").json()["status"] == "paused"
    assert api.post(f"{url}/resume").json()["status"] == "active"
    done = api.post(f"{url}/complete").json()
    assert done["status"] == "completed"
    # Completed is read-only: edits, steps and enrollment are refused; clone to re-run.
    error_of(api.patch(url, json={"name": "again"}), 409, "read_only")
    error_of(api.post(f"{url}/steps", json=EMAIL), 409, "read_only")
    error_of(api.patch(f"{url}/steps/0", json={"subject": "x"}), 409, "read_only")
    error_of(api.delete(f"{url}/steps/0"), 409, "read_only")
    error_of(api.post(f"{url}/enroll", json={"contactEmail": "z@example.org"}), 409, "read_only")
    error_of(api.post(f"{url}/resume"), 409, "invalid_transition")
    clone = api.post(f"{url}/clone", json={"name": "transitions v2"})
    assert clone.status_code == 201
    assert clone.json()["status"] == "draft" and clone.json()["name"] == "transitions v2"
    assert len(clone.json()["steps"]) == 1
    assert api.post(f"{url}/clone").json()["name"] == "transitions (copy)"


def test_start_without_steps_is_409(api: httpx.Client) -> None:
    seq = create(api, "empty")
    error_of(api.post(f"/api/sequences/{seq['id']}/start"), 409, "conflict")


def test_openapi_document(api: httpx.Client) -> None:
    doc = api.get("/api/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/sequences", "/api/sequences/{sequence_id}", "/api/sequences/{sequence_id}/steps",
                 "/api/sequences/{sequence_id}/steps/{index}", "/api/sequences/{sequence_id}/enroll",
                 "/api/sequences/{sequence_id}/enroll/csv", "/api/sequences/{sequence_id}/start",
                 "/api/sequences/{sequence_id}/pause", "/api/sequences/{sequence_id}/resume",
                 "/api/sequences/{sequence_id}/complete", "/api/sequences/{sequence_id}/clone",
                 "/api/sequences/{sequence_id}/contacts", "/api/sequences/{sequence_id}/preview",
                 "/api/contacts", "/api/contacts/{contact_id}", "/api/lists", "/api/lists/{list_id}/members",
                 "/api/mailboxes", "/api/status"):
        assert path in paths, path
    assert set(paths["/api/sequences/{sequence_id}/steps/{index}"]) == {"patch", "delete"}
