"""The cold-outreach settings through the real daemon's API, dripctl and sequence files:
spintax refused at save with its position and sent as previewed, the contact's time zone from
the API and a CSV column, holidays and blackout dates, the out-of-office default."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.integration.api_client import error_of
from tests.integration.daemon_process import DripdProcess
from tests.integration.waiting import wait_until

EMAIL = {"type": "email", "subject": "{Hi|Hello|Hey} {{firstName|there}}",
         "body": "<p>{Quick|Short} question about {{company|your team}}</p>"}


def test_spintax_is_checked_at_save_and_sent_as_previewed(dripd: DripdProcess, api: httpx.Client) -> None:
    broken = api.post("/api/sequences", json={"name": "broken", "mailboxId": "sales", "steps": [
        {"type": "email", "subject": "Hello {Hi|Hey there", "body": "<p>x</p>"}]})
    error = error_of(broken, 422, "validation_error")
    assert error["details"]["field"] == "steps[0].subject"
    assert error["details"]["rule"] == "spintax group opened at position 6 is never closed"

    seq = api.post("/api/sequences", json={"name": "spun", "mailboxId": "sales", "autoComplete": False,
                                           "steps": [EMAIL]}).json()
    csv = "email,firstName\n" + "".join(f"s{i}@example.org,P{i}\n" for i in range(8))
    assert api.post(f"/api/sequences/{seq['id']}/enroll/csv", content=csv.encode(),
                    headers={"content-type": "text/csv"}).status_code == 201
    previews = {f"s{i}@example.org": api.post(f"/api/sequences/{seq['id']}/preview", json={
        "stepIndex": 0, "contactEmail": f"s{i}@example.org"}).json() for i in range(8)}
    before = len(dripd.messages())
    api.post(f"/api/sequences/{seq['id']}/start")
    sent = dripd.wait_for_messages(before + 8)[before:]
    for message in sent:
        address = str(message["To"]).split("<")[-1].rstrip(">")
        assert str(message["Subject"]) == previews[address]["subject"]
        body = message.get_body(("plain",))
        assert body is not None and previews[address]["text"].strip() in body.get_content()
    assert len({str(m["Subject"]).split()[0] for m in sent}) > 1  # not everyone got the same words


def test_contact_time_zones_holidays_and_defaults(api: httpx.Client) -> None:
    refused = api.post("/api/contacts", json={"email": "tz@example.org", "timezone": "Mars/Olympus"})
    assert error_of(refused, 422, "validation_error")["details"]["field"] == "timezone"
    refused = api.post("/api/contacts", json={"email": "tz@example.org", "fields": {"timezone": "UTC+25"}})
    assert error_of(refused, 422, "validation_error")["details"]["field"] == "fields.timezone"
    contact = api.post("/api/contacts", json={"email": "tz@example.org", "timezone": "America/Chicago"}).json()
    assert contact["fields"]["timezone"] == "America/Chicago"

    seq = api.post("/api/sequences", json={"name": "zones", "mailboxId": "sales", "windowZone": "contact",
                                           "holidays": ["us", "DE-BY"], "blackoutDates": ["2026-12-31"],
                                           "steps": [EMAIL]}).json()
    assert (seq["windowZone"], seq["holidays"], seq["blackoutDates"]) == ("contact", ["US", "DE-BY"], ["2026-12-31"])
    assert seq["onAutoReply"] == "delay"  # out of office pauses the contact by default
    bad = api.patch(f"/api/sequences/{seq['id']}", json={"holidays": ["US", "Atlantis"]})
    assert error_of(bad, 422, "validation_error")["details"]["field"] == "holidays[1]"
    bad = api.patch(f"/api/sequences/{seq['id']}", json={"blackoutDates": ["31/12/2026"]})
    assert error_of(bad, 422, "validation_error")["details"]["field"] == "blackoutDates[0]"
    bad = api.patch(f"/api/sequences/{seq['id']}", json={"windowZone": "recipient"})
    assert error_of(bad, 422, "validation_error")["details"]["field"] == "windowZone"

    csv = "email,timezone\nok@example.org,Europe/Madrid\nbad@example.org,Europe/Atlantis\n"
    refused = api.post(f"/api/sequences/{seq['id']}/enroll/csv", content=csv.encode(),
                       headers={"content-type": "text/csv"})
    [problem] = error_of(refused, 422, "validation_error")["details"]["invalid"]
    assert (problem["line"], problem["field"]) == (3, "timezone")
    assert api.post(f"/api/sequences/{seq['id']}/enroll/csv", params={"skipInvalid": "true"}, content=csv.encode(),
                    headers={"content-type": "text/csv"}).json()["enrolled"] == 1
    preview = api.post(f"/api/sequences/{seq['id']}/preview", json={"stepIndex": 0, "contactEmail": "ok@example.org"})
    assert preview.status_code == 200


def test_the_settings_round_trip_through_dripctl_and_a_sequence_file(dripd: DripdProcess, tmp_path: Path) -> None:
    created = dripd.dripctl("--json", "sequences", "create", "Holiday aware", "--mailbox", "sales",
                            "--window-zone", "contact", "--holidays", "US,GB", "--blackout", "2026-12-24,2026-12-31")
    assert created.returncode == 0, created.stderr
    sequence_id = json.loads(created.stdout)["id"]
    exported = tmp_path / "holiday.toml"
    result = dripd.dripctl("export", str(sequence_id), "-o", str(exported))
    assert result.returncode == 0, result.stderr
    text = exported.read_text()
    assert 'windowZone = "contact"' in text and 'holidays = [\n    "US",\n    "GB",\n]' in text.replace("\r", "")
    assert "blackoutDates" in text
    changed = text.replace('"GB"', '"DE-BY"')
    exported.write_text(changed)
    applied = dripd.dripctl("apply", "-f", str(exported))
    assert applied.returncode == 0, applied.stderr
    with dripd.client() as api:
        wait_until(lambda: api.get(f"/api/sequences/{sequence_id}").json()["holidays"] == ["US", "DE-BY"])


def test_a_rotation_pool_is_checked_and_the_seed_mailbox_id_stays_valid(api: httpx.Client) -> None:
    refused = api.post("/api/sequences", json={"name": "pool", "mailboxIds": ["sales", "nope"]})
    error = error_of(refused, 422, "validation_error")
    assert error["details"]["field"] == "mailboxIds[1]" and "unknown mailbox 'nope'" in error["details"]["rule"]
    error = error_of(api.post("/api/sequences", json={"name": "none"}), 422, "validation_error")
    assert error["details"]["field"] == "mailboxId"
    pooled = api.post("/api/sequences", json={"name": "pool", "mailboxIds": ["sales"]}).json()
    assert (pooled["mailboxId"], pooled["mailboxIds"]) == ("sales", ["sales"])
    single = api.post("/api/sequences", json={"name": "single", "mailboxId": "sales"}).json()
    assert (single["mailboxId"], single["mailboxIds"]) == ("sales", [])
    stats = api.get(f"/api/sequences/{single['id']}/stats").json()
    assert stats["mailboxes"] == []  # nothing sent yet; each sending mailbox gets its funnel
