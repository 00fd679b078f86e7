"""Both product pages end to end on the real daemon, checked in its Maildir output.

Sends respect the send window and caps in real time here, so the sequences use an always-open
window and the mailbox generous caps; waits are short (delayMs) to keep the module fast.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.integration.api_client import error_of
from tests.integration.daemon_process import DripdProcess
from tests.integration.waiting import wait_until


def recipient(message: object) -> str:
    return str(message["To"]).split("<")[-1].rstrip(">")  # type: ignore[index]


def test_seed_000_getting_started(dripd: DripdProcess, api: httpx.Client) -> None:
    # 1. The mailbox is connected through the config. 2. Create a sequence with its window.
    seq = api.post("/api/sequences", json={"name": "Getting started", "mailboxId": "sales", "timezone": "UTC",
                                           "autoComplete": True,
                                           "weekdaysOnly": False, "sendWindowStartHour": 0, "sendWindowEndHour": 24,
                                           "autoPauseOnReply": True}).json()
    sid = seq["id"]
    # 3. Step 1 is an email; follow-ups come as wait + email pairs, with merge tags.
    for step in ({"type": "email", "subject": "{{firstName}}, a question about {{company}}",
                  "body": "<p>Hi {{firstName}}, how does {{company}} handle deliverability?</p>"},
                 {"type": "wait", "delayMs": 300},
                 {"type": "email", "subject": "", "body": "<p>Following up, {{firstName}}.</p>"},
                 {"type": "wait", "delayMs": 300},
                 {"type": "email", "subject": "Last note for {{company}}", "body": "<p>Bye {{firstName}}</p>"}):
        assert api.post(f"/api/sequences/{sid}/steps", json=step).status_code == 201
    # 4. Enroll a saved list and a pasted address; preview against a real contact.
    people = api.post("/api/lists", json={"name": "leads"}).json()
    for email, first, company in (("ada@lovelace.dev", "Ada", "Engines"), ("alan@turing.dev", "Alan", "Bombe")):
        contact = api.post("/api/contacts", json={"email": email, "firstName": first, "company": company}).json()
        api.post(f"/api/lists/{people['id']}/members", json={"contactIds": [contact["id"]]})
    assert api.post(f"/api/sequences/{sid}/enroll", json={"listId": people["id"]}).json()["enrolled"] == 2
    assert api.post(f"/api/sequences/{sid}/enroll", json={
        "contactEmail": "grace@hopper.dev", "mergeFields": {"firstName": "Grace", "company": "COBOL"}}).json()["enrolled"] == 1
    preview = api.post(f"/api/sequences/{sid}/preview", json={"stepIndex": 0, "contactId": 1}).json()
    assert preview["subject"] == "Ada, a question about Engines" and preview["missing"] == []
    assert dripd.messages() == []  # draft: nothing sent
    # 5. Hit Start: draft -> active; sends go out, follow-ups thread, the sequence completes.
    assert api.post(f"/api/sequences/{sid}/start").json()["status"] == "active"
    messages = dripd.wait_for_messages(9)
    by_person: dict[str, list[Any]] = {}
    for message in messages:
        by_person.setdefault(recipient(message), []).append(message)
    assert set(by_person) == {"ada@lovelace.dev", "alan@turing.dev", "grace@hopper.dev"}
    first, second, third = by_person["grace@hopper.dev"]
    assert str(first["Subject"]) == "Grace, a question about COBOL"
    assert "how does COBOL handle deliverability" in first.get_body(("plain",)).get_content()
    assert str(second["Subject"]) == "Re: Grace, a question about COBOL"
    assert str(second["In-Reply-To"]) == str(first["Message-ID"])
    assert str(third["Subject"]) == "Last note for COBOL"
    assert str(first["From"]) == "Sales <sales@example.com>" and first["List-Unsubscribe"]
    wait_until(lambda: api.get(f"/api/sequences/{sid}").json()["status"] == "completed")
    contacts = api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]
    assert {c["status"] for c in contacts} == {"completed"} and all(c["lastEventAt"] for c in contacts)
    summary = api.get("/api/sequences").json()["sequences"]
    assert next(s for s in summary if s["id"] == sid)["contacts"]["completed"] == 3
    # Completed is read-only; clone to re-run.
    error_of(api.patch(f"/api/sequences/{sid}", json={"name": "x"}), 409, "read_only")
    assert api.post(f"/api/sequences/{sid}/clone").json()["status"] == "draft"


def test_seed_003_merge_fields_pause_resume_complete(dripd: DripdProcess, api: httpx.Client) -> None:
    before = len(dripd.messages())
    seq = api.post("/api/sequences", json={"name": "Seed 003", "mailboxId": "sales", "autoComplete": False, "steps": [
        {"type": "send_email", "subject": "Hey {{firstName}}, quick question",
         "html": "<p>Hi {{firstName}},</p><p>I noticed {{company}} recently expanded into {{market}}.</p>"},
        {"type": "delay", "delayMs": 800},
        {"type": "send_email", "subject": "", "html": "<p>First follow-up</p>"},
        {"type": "delay", "delayMs": 300},
        {"type": "send_email", "subject": "", "html": "<p>Second follow-up (final)</p>"},
    ]}).json()
    sid = seq["id"]
    assert api.post(f"/api/sequences/{sid}/start").json()["status"] == "active"
    # Seed 003: enrollment starts immediately on an active sequence.
    enrolled = api.post(f"/api/sequences/{sid}/enroll", json={
        "contactEmail": "alice@acme.com",
        "mergeFields": {"firstName": "Alice", "company": "Acme Corp", "market": "Southeast Asia"}})
    assert enrolled.status_code == 201
    error_of(api.post(f"/api/sequences/{sid}/enroll", json={"contactEmail": "alice@acme.com"}), 409, "already_enrolled")
    first = dripd.wait_for_messages(before + 1)[-1]
    assert str(first["Subject"]) == "Hey Alice, quick question"
    html = first.get_body(("html",))
    assert html is not None and "Acme Corp recently expanded into Southeast Asia" in html.get_content()
    # Pausing holds the pending step; resuming continues from there, not from the start.
    assert api.post(f"/api/sequences/{sid}/pause").json()["status"] == "paused"
    time.sleep(1.2)
    assert len(dripd.messages()) == before + 1
    held = api.get(f"/api/sequences/{sid}/contacts").json()["contacts"][0]
    assert held["status"] == "active" and held["stepIndex"] == 2  # waiting out the delay for step 2
    assert api.post(f"/api/sequences/{sid}/resume").json()["status"] == "active"
    rest = dripd.wait_for_messages(before + 3)[before:]
    assert [str(m["Subject"]) for m in rest] == ["Hey Alice, quick question", "Re: Hey Alice, quick question",
                                                 "Re: Hey Alice, quick question"]
    last_html = rest[-1].get_body(("html",))
    assert last_html is not None and "Second follow-up" in last_html.get_content()
    wait_until(lambda: api.get(f"/api/sequences/{sid}/contacts").json()["contacts"][0]["status"] == "completed")
    # A completed contact can be enrolled again (seed 003).
    assert api.post(f"/api/sequences/{sid}/enroll", json={"contactEmail": "alice@acme.com"}).json()["enrolled"] == 1


def test_seed_003_complete_cancels_active_enrollments(dripd: DripdProcess, api: httpx.Client) -> None:
    seq = api.post("/api/sequences", json={"name": "to complete", "mailboxId": "sales", "steps": [
        {"type": "email", "subject": "One", "body": "<p>1</p>"}, {"type": "wait", "waitDays": 3},
        {"type": "email", "subject": "Two", "body": "<p>2</p>"}]}).json()
    sid = seq["id"]
    for address in ("k1@example.org", "k2@example.org"):
        api.post(f"/api/sequences/{sid}/enroll", json={"contactEmail": address})
    api.post(f"/api/sequences/{sid}/start")
    wait_until(lambda: all(c["sentCount"] == 1 for c in api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]))
    done = api.post(f"/api/sequences/{sid}/complete").json()
    assert done["status"] == "completed" and done["contacts"]["cancelled"] == 2 and done["contacts"]["active"] == 0
    error_of(api.post(f"/api/sequences/{sid}/enroll", json={"contactEmail": "k3@example.org"}), 409, "read_only")
    error_of(api.post(f"/api/sequences/{sid}/start"), 409, "invalid_transition")
