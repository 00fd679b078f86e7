"""A/B variants end to end: through the real daemon's API, dripctl and sequence files with the
Maildir transport (sent as previewed, stats per variant with their intervals, the contact's log
keeping what was sent), and through the SMTP transport against a real sink."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from pathlib import Path

import httpx

from dripd.model import Action, SequenceSettings
from dripd.steps import step_from_fields
from dripd.store import ContactInput
from tests.conftest import make_config, running_daemon
from tests.integration.api_client import error_of
from tests.integration.daemon_process import DripdProcess
from tests.integration.servers import smtp_sink
from tests.integration.waiting import wait_until, wait_until_async

STEP = {"type": "email", "subject": "Hello {{firstName|there}}", "body": "<p>Version A</p>",
        "variants": [{"name": "A"}, {"name": "B", "weight": 1, "subject": "Quick question",
                                     "body": "<p>Version B</p>"}],
        "autoWinner": {"after": 50, "metric": "opened"}}


def test_variants_through_the_api_are_sent_as_previewed_and_counted(dripd: DripdProcess, api: httpx.Client,
                                                                    tmp_path: Path) -> None:
    bad = {**STEP, "variants": [{"name": "A"}, {"name": "B", "body": "<p>{Hi|Hey</p>"}]}
    refused = api.post("/api/sequences", json={"name": "bad", "mailboxId": "sales", "steps": [bad]})
    assert error_of(refused, 422, "validation_error")["details"]["field"] == "steps[0].variants[1].body"
    refused = api.post("/api/sequences", json={"name": "bad", "mailboxId": "sales", "steps": [
        {**STEP, "variants": [{"name": "A", "weight": 5000}, {}]}]})
    assert error_of(refused, 422, "validation_error")["details"]["field"] == "steps[0].variants[0].weight"

    seq = api.post("/api/sequences", json={"name": "ab", "mailboxId": "sales", "autoComplete": False,
                                           "steps": [STEP]}).json()
    assert seq["steps"][0]["variants"][1] == {"name": "B", "weight": 1, "subject": "Quick question",
                                              "body": "<p>Version B</p>"}
    assert seq["steps"][0]["autoWinner"] == {"after": 50, "metric": "opened"}
    csv = "email,firstName\n" + "".join(f"v{i}@example.org,P{i}\n" for i in range(10))
    assert api.post(f"/api/sequences/{seq['id']}/enroll/csv", content=csv.encode(),
                    headers={"content-type": "text/csv"}).status_code == 201
    previews = {f"v{i}@example.org": api.post(f"/api/sequences/{seq['id']}/preview", json={
        "stepIndex": 0, "contactEmail": f"v{i}@example.org"}).json() for i in range(10)}
    assert {p["variant"] for p in previews.values()} == {"A", "B"}
    # Any variant renders on request, whatever the contact's own.
    forced = api.post(f"/api/sequences/{seq['id']}/preview", json={"stepIndex": 0, "contactEmail": "v0@example.org",
                                                                   "variant": "B"}).json()
    assert (forced["subject"], forced["variant"], forced["variants"]) == ("Quick question", "B", ["A", "B"])
    unknown = api.post(f"/api/sequences/{seq['id']}/preview", json={"stepIndex": 0, "contactEmail": "v0@example.org",
                                                                    "variant": "C"})
    assert error_of(unknown, 422, "validation_error")["details"]["field"] == "variant"

    before = len(dripd.messages())
    api.post(f"/api/sequences/{seq['id']}/start")
    sent = dripd.wait_for_messages(before + 10)[before:]
    for message in sent:
        address = str(message["To"]).split("<")[-1].rstrip(">")
        assert str(message["Subject"]) == previews[address]["subject"]

    def counted() -> dict[str, object] | None:
        stats = api.get(f"/api/sequences/{seq['id']}/stats").json()
        ab = stats["steps"][0].get("abTest")
        return ab if ab and sum(v["sent"] for v in ab["variants"]) == 10 else None

    ab = wait_until(counted, what="ten sends counted per variant")
    assert ab["metric"] == "opened" and ab["winner"] is None  # 50 sends per variant first
    rows = {v["name"]: v for v in ab["variants"]}
    assert set(rows) == {"A", "B"}
    assert all(v["intervals"]["replied"] is not None for v in rows.values())
    [comparison] = ab["comparisons"]["replied"]  # no replies: both rates equal, nothing to tell apart
    assert comparison["pValue"] == 1.0 and comparison["significant"] is False

    b_address = next(a for a, p in previews.items() if p["variant"] == "B")
    contact_id = api.get("/api/contacts", params={"email": b_address}).json()
    contact_id = contact_id["contacts"][0]["id"] if "contacts" in contact_id else contact_id["id"]
    log = api.get(f"/api/sequences/{seq['id']}/contacts/{contact_id}").json()
    [message] = log["messages"]
    assert (message["variant"], message["subject"]) == ("B", "Quick question")
    assert "Version B" in message["html"] and "Version B" in message["text"]
    # An edit afterwards leaves what was sent, and its stats, as they were.
    api.patch(f"/api/sequences/{seq['id']}/steps/0", json={"variants": [{"name": "A"}, {"name": "C"}]})
    log = api.get(f"/api/sequences/{seq['id']}/contacts/{contact_id}").json()
    assert log["messages"][0]["subject"] == "Quick question"
    ab = api.get(f"/api/sequences/{seq['id']}/stats").json()["steps"][0]["abTest"]
    assert [(v["name"], v["deleted"]) for v in ab["variants"]] == [("A", False), ("C", False), ("B", True)]
    out = dripd.dripctl("stats", str(seq["id"]))
    assert out.returncode == 0, out.stderr
    assert "step 0 A/B on opened (auto-winner after 50 sends per variant: no winner yet)" in out.stdout
    assert "B (deleted): sent" in out.stdout and "95 % CI" in out.stdout
    page = tmp_path / "stats.html"
    assert dripd.dripctl("stats", str(seq["id"]), "--html", str(page)).returncode == 0
    assert "<th>replied rate</th>" in page.read_text() or "<th>opened rate</th>" in page.read_text()
    assert "B (deleted)" in page.read_text()


def test_variants_through_dripctl_and_a_sequence_file(dripd: DripdProcess, tmp_path: Path) -> None:
    created = dripd.dripctl("--json", "sequences", "create", "ab-ctl", "--mailbox", "sales")
    assert created.returncode == 0, created.stderr
    sequence_id = json.loads(created.stdout)["id"]
    added = dripd.dripctl("--json", "steps", "add", str(sequence_id), "--type", "email", "--subject", "Hi",
                          "--body", "<p>x</p>", "--variant", "A:3", "--variant-subject", "B=Hey there",
                          "--variant-body", "B=<p>y</p>", "--auto-winner", "100:clicked")
    assert added.returncode == 0, added.stderr
    step = json.loads(added.stdout)
    assert step["variants"] == [{"name": "A", "weight": 3}, {"name": "B", "weight": 1, "subject": "Hey there",
                                                             "body": "<p>y</p>"}]
    assert step["autoWinner"] == {"after": 100, "metric": "clicked"}
    bad = dripd.dripctl("steps", "edit", str(sequence_id), "0", "--variant", "A:x")
    assert bad.returncode != 0 and "whole number" in bad.stderr

    exported = tmp_path / "ab.toml"
    assert dripd.dripctl("export", str(sequence_id), "-o", str(exported)).returncode == 0
    text = exported.read_text()
    assert 'variants = [' in text and 'subject = "Hey there"' in text and "autoWinner" in text
    again = dripd.dripctl("apply", "-f", str(exported))
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout + again.stderr
    # A file may leave names and weights out: A, B... and 1, as the API fills them in.
    exported.write_text("""name = "ab-ctl"
mailboxId = "sales"

[[steps]]
type = "email"
subject = "Hi"
body = "<p>x</p>"
autoWinner = { after = 100, metric = "clicked" }

[[steps.variants]]

[[steps.variants]]
subject = "Hey there"
body = "<p>y</p>"
""")
    applied = dripd.dripctl("apply", "-f", str(exported))
    assert applied.returncode == 0, applied.stderr
    with dripd.client() as api:
        wait_until(lambda: api.get(f"/api/sequences/{sequence_id}").json()["steps"][0]["variants"][0]["weight"] == 1,
                   what="the file's weights applied")
    assert "up to date" in dripd.dripctl("apply", "-f", str(exported)).stdout
    removed = dripd.dripctl("--json", "steps", "edit", str(sequence_id), "0", "--no-variants")
    assert removed.returncode == 0, removed.stderr
    assert "variants" not in json.loads(removed.stdout) and "autoWinner" not in json.loads(removed.stdout)


async def test_variants_over_smtp(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        box = {"id": "alice", "address": "alice@example.com", "timezone": "UTC", "daily_cap": 1000,
               "hourly_cap": 1000, "burst": 100, "transport": "smtp", "smtp": sink.smtp_table()}
        config, plugins = make_config(tmp_path, [box])
        async with running_daemon(config, plugins, dt.datetime.now(dt.timezone.utc)) as daemon:
            seq = await daemon.control.create_sequence(SequenceSettings("ab-smtp", "alice"), [step_from_fields(STEP)])
            await daemon.control.enroll(seq.id, [ContactInput(f"s{i}@example.org") for i in range(8)])
            await daemon.control.transition(seq.id, Action.START)

            async def all_sent() -> bool:
                return len(sink.messages()) >= 8

            await wait_until_async(all_sent, what="eight messages at the SMTP sink")
            facts = await daemon.store.sequence_message_facts(seq.id)
        received = sink.messages()
    subjects = {str(email.message_from_bytes(m, policy=email.policy.default)["Subject"]) for m in received}
    expected = {"A": "Hello there", "B": "Quick question"}
    assert subjects == {expected[f.variant] for f in facts if f.variant}
