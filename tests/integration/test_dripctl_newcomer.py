"""Issue 21.1-3 through dripctl's real process against the real daemon: auto-complete's rule,
the real next run and what holds it, the per-contact log, and the first-time user's polish."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from dripd.ctl.main import main
from tests.integration.api_client import error_of
from tests.integration.daemon_process import DRIPCTL, DripdProcess, fast_mailbox, running_dripd
from tests.integration.servers import smtp_sink
from tests.integration.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "etc" / "sequences"


@pytest.fixture(scope="module")
def dripd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DripdProcess]:
    root = tmp_path_factory.mktemp("newcomer")
    # "slow" sends one message an hour: the second contact's next run is held by the cap.
    slow = fast_mailbox(root, "slow", hourly_cap=1, burst=1)
    with running_dripd(root, mailboxes=[fast_mailbox(root), slow]) as process:
        yield process


@pytest.fixture
def api(dripd: DripdProcess) -> Iterator[httpx.Client]:
    with dripd.client() as client:
        yield client


def ctl(dripd: DripdProcess, *args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
    """dripctl as its own process; stdin is an empty pipe, never this terminal."""
    result = dripd.dripctl(*args, input=b"")
    assert result.returncode == status, f"dripctl {' '.join(args)} -> {result.returncode}: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def out(dripd: DripdProcess, *args: str) -> str:
    """dripctl's main() in this process over the daemon's real socket (fast, for set-up and
    tables); what only a process shows (exit status, stdin, pipes) goes through ``ctl``."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["-s", str(dripd.socket), *args])
    assert status == 0, f"dripctl {' '.join(args)} -> {status}: {stderr.getvalue()}"
    return stdout.getvalue()


def as_json(dripd: DripdProcess, *args: str) -> Any:
    return json.loads(out(dripd, *args, "--json"))  # --json after the subcommand


def email_sequence(dripd: DripdProcess, name: str, *flags: str, mailbox: str = "sales") -> None:
    out(dripd, "sequences", "create", name, "--mailbox", mailbox, "--window", "0-24", *flags)
    out(dripd, "steps", "add", name, "--type", "email", "--subject", f"About {name}", "--body", "<p>hi</p>")


def contact_status(api: httpx.Client, name: str, email: str) -> str | None:
    sid = api.get("/api/sequences", params={"name": name}).json()["sequences"][0]["id"]
    rows = api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]
    return next((c["status"] for c in rows if c["email"] == email), None)


def test_auto_complete_is_off_by_default_so_later_enrollments_still_land(dripd: DripdProcess, api: httpx.Client) -> None:
    email_sequence(dripd, "always on")
    shown = out(dripd, "sequences", "show", "always on")
    assert "auto-complete:" in shown and "off: the sequence stays open for new enrollments" in shown
    out(dripd, "sequences", "start", "always on")
    out(dripd, "enroll", "always on", "--contact", "first@user.example")
    wait_until(lambda: contact_status(api, "always on", "first@user.example") == "completed",
               timeout=30, what="the first contact never completed")
    assert as_json(dripd, "sequences", "show", "always on")["status"] == "active"  # not completed by itself
    assert out(dripd, "enroll", "always on", "--contact", "later@user.example").startswith("1 enrolled")
    # Re-enrolling a completed contact (seed 003) works too.
    assert out(dripd, "enroll", "always on", "--contact", "first@user.example").startswith("1 enrolled")

    # A one-shot campaign opts in; `show` says when it fires, then that it fired.
    email_sequence(dripd, "one shot", "--auto-complete")
    out(dripd, "enroll", "one shot", "--contact", "only@user.example")
    assert "on: once started, completes when its last active contact finishes (1 active now)" in out(
        dripd, "sequences", "show", "one shot")
    out(dripd, "sequences", "start", "one shot")
    wait_until(lambda: as_json(dripd, "sequences", "show", "one shot")["status"] == "completed", timeout=30,
               what="the autoComplete sequence did not complete")
    assert "completed: no new enrollments" in out(dripd, "sequences", "show", "one shot")
    refused = ctl(dripd, "enroll", "one shot", "--contact", "late@user.example", status=1)
    assert "[read_only]" in refused.stderr

    # The example campaign file asks for it explicitly and keeps it.
    out(dripd, "apply", "-f", str(EXAMPLES / "cold-outreach.toml"))
    assert as_json(dripd, "sequences", "show", "Cold outreach")["autoComplete"] is True
    out(dripd, "apply", "-f", str(EXAMPLES / "onboarding.toml"))
    assert as_json(dripd, "sequences", "show", "Onboarding")["autoComplete"] is False


def test_next_run_says_what_holds_it_and_the_log_shows_the_contact(dripd: DripdProcess, api: httpx.Client) -> None:
    email_sequence(dripd, "capped", mailbox="slow")
    out(dripd, "steps", "add", "capped", "--type", "wait", "--days", "2")
    out(dripd, "steps", "add", "capped", "--type", "email", "--subject", "", "--body", "<p>again</p>")
    out(dripd, "enroll", "capped", "--contact", "a@user.example")
    out(dripd, "enroll", "capped", "--contact", "b@user.example")
    draft = as_json(dripd, "sequences", "contacts", "capped")["contacts"]
    assert {c["nextRunReason"] for c in draft} == {"sequence not started (dripctl sequences start)"}
    out(dripd, "sequences", "start", "capped")
    sent = dripd.wait_for_messages(1, "slow", timeout=30)
    first = str(sent[0]["To"])

    def held() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = as_json(dripd, "sequences", "contacts", "capped")["contacts"]
        return rows if all(c["nextRunReason"] not in (None, "due now") for c in rows) else None

    rows = {c["email"]: c for c in wait_until(held, timeout=30, what="no hold reported")}
    waiting = next(c for email, c in rows.items() if email != first)
    assert waiting["status"] == "active" and waiting["state"] == "active"
    assert waiting["nextRunReason"] == "hourly cap" and waiting["nextRunAt"] > waiting["dueAt"]
    assert rows[first]["nextRunReason"] == "step wait"  # its two-day wait, not a cap
    table = ctl(dripd, "sequences", "contacts", "capped").stdout
    line = next(row for row in table.splitlines() if waiting["email"] in row)
    assert ": hourly cap" in line and "in " in line and " UTC)" in line

    # The mailboxes table: usage over cap this hour, words for the bucket, a relative next send.
    boxes = out(dripd, "mailboxes").splitlines()
    assert "THIS HOUR" in boxes[0] and "READY NOW" in boxes[0] and "TOKENS" not in boxes[0]
    slow_row = next(row for row in boxes if row.startswith("slow"))
    assert " 1/1 " in slow_row and "0 of 1" in slow_row and "in " in slow_row
    shown = out(dripd, "mailboxes", "show", "slow")
    assert "{" not in shown and "health:" in shown

    out(dripd, "mailboxes", "pause", "slow", "--reason", "checking DNS")
    try:
        paused = as_json(dripd, "sequences", "contacts", "capped", "--status", "active")["contacts"]
        assert {c["nextRunReason"] for c in paused} == {"mailbox paused: checking DNS"}
        assert all(c["nextRunAt"] is None for c in paused)
    finally:
        out(dripd, "mailboxes", "resume", "slow")

    log = ctl(dripd, "sequences", "log", "capped", first).stdout
    assert f"{first} (contact" in log and "About capped" in log and "SENT AT" in log
    assert as_json(dripd, "sequences", "log", "capped", first)["messages"][0]["stepIndex"] == 0
    never = ctl(dripd, "sequences", "log", "always on", first, status=1)
    assert "never enrolled" in never.stderr


def test_contacts_are_paged_and_the_status_is_checked(dripd: DripdProcess, api: httpx.Client) -> None:
    out(dripd, "sequences", "create", "paged", "--mailbox", "sales")
    for n in range(5):
        out(dripd, "enroll", "paged", "--contact", f"p{n}@user.example")
    page = out(dripd, "sequences", "contacts", "paged", "--limit", "2").splitlines()
    assert len(page) == 4 and "p0@" in page[1] and "p1@" in page[2]
    assert page[3] == "(1-2 of 5; next page: --offset 2)"
    last = out(dripd, "sequences", "contacts", "paged", "--limit", "2", "--offset", "4").splitlines()
    assert "p4@" in last[1] and last[-1] == "(5-5 of 5)"
    bogus = ctl(dripd, "sequences", "contacts", "paged", "--status", "bogus", status=2)
    assert "--status" in bogus.stderr and "invalid choice: 'bogus'" in bogus.stderr
    sid = as_json(dripd, "sequences", "show", "paged")["id"]
    error = error_of(api.get(f"/api/sequences/{sid}/contacts", params={"status": "bogus"}), 422, "validation_error")
    assert error["details"]["field"] == "query.status"
    assert api.get(f"/api/sequences/{sid}/contacts", params={"status": "failed"}).json()["contacts"] == []


def test_polish_for_a_first_time_user(dripd: DripdProcess, tmp_path: Path) -> None:
    # No action: the actions, not "arguments are required".
    bare = ctl(dripd, "sequences", status=2)
    assert "required" not in bare.stderr
    assert all(f"  {action} " in bare.stderr for action in ("list", "show", "complete", "contacts", "log"))
    # --json anywhere, and errors as JSON under it (usage errors too).
    assert isinstance(as_json(dripd, "sequences", "list")["sequences"], list)
    missing = ctl(dripd, "sequences", "show", "no such", "--json", status=1)
    assert missing.stdout == "" and json.loads(missing.stderr)["error"]["message"] == "no sequence named 'no such'"
    usage = ctl(dripd, "--json", "steps", "add", status=2)
    assert json.loads(usage.stderr)["error"]["code"] == "usage"
    api_error = json.loads(ctl(dripd, "steps", "add", "nope", "--type", "wait", "--json", status=1).stderr)
    assert api_error["error"]["code"] == "error"  # resolved by name before any request
    # create prints no empty step table; a threaded follow-up reads "Re: <first subject>"; "1 day".
    created = out(dripd, "sequences", "create", "polish", "--mailbox", "sales", "--window", "0-24")
    assert "#  STEP" not in created and "no steps yet" in created
    out(dripd, "steps", "add", "polish", "--type", "email", "--subject", "Hello there", "--body", "<p>a</p>")
    assert "wait 1 day\n" in out(dripd, "steps", "add", "polish", "--type", "wait", "--days", "1")
    follow = out(dripd, "steps", "add", "polish", "--type", "email", "--subject", "", "--body", "<p>b</p>")
    assert "email 'Re: Hello there' (threaded reply)" in follow and "email ''" not in follow
    # Errors name the flags typed, not the API's fields.
    no_duration = ctl(dripd, "steps", "add", "polish", "--type", "wait", status=1)
    assert "--days" in no_duration.stderr and "waitDays" not in no_duration.stderr
    bad_window = ctl(dripd, "sequences", "update", "polish", "--window", "9-3", status=1)
    assert "--window" in bad_window.stderr and "sendWindow" not in bad_window.stderr
    # The --html stats page names the threaded follow-up too.
    out(dripd, "enroll", "polish", "--contact", "s@user.example")
    page = tmp_path / "stats.html"
    out(dripd, "stats", "polish", "--html", str(page))
    assert "Step 2: Re: Hello there" in page.read_text()
    assert "Re: Hello there" in out(dripd, "stats", "polish")
    # complete is irreversible: refused without a terminal unless --yes.
    out(dripd, "sequences", "start", "polish")
    refused = ctl(dripd, "sequences", "complete", "polish", status=2)
    assert "--yes" in refused.stderr and "cannot be undone" in refused.stderr
    assert as_json(dripd, "sequences", "show", "polish")["status"] == "active"
    assert as_json(dripd, "sequences", "complete", "polish", "--yes")["status"] == "completed"


def test_a_closed_pipe_is_no_traceback(dripd: DripdProcess) -> None:
    for n in range(3):
        out(dripd, "sequences", "create", f"pipe {n}", "--mailbox", "sales")
    proc = subprocess.Popen([str(DRIPCTL), "-s", str(dripd.socket), "sequences", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before dripctl writes: `dripctl ... | head -0`
    try:
        stderr = proc.stderr.read().decode()
        status = proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stderr.close()
    assert stderr == "" and status == 141


def test_retrying_and_bounced_contacts_say_so(tmp_path: Path) -> None:
    rules = [{"on": "rcpt", "match": "grey@", "reply": "450 4.2.0 greylisted, come back later"},
             {"on": "rcpt", "match": "gone@", "reply": "550 5.1.1 user unknown"}]
    with smtp_sink({"rules": rules}) as sink:
        box = {"id": "smtp", "address": "alice@example.com", "timezone": "UTC", "daily_cap": 1000,
               "hourly_cap": 1000, "burst": 10, "transport": "smtp", "smtp": sink.smtp_table()}
        with running_dripd(tmp_path, mailboxes=[box], daemon={"retry_base_seconds": 600}) as dripd:
            email_sequence(dripd, "faults", mailbox="smtp")
            out(dripd, "enroll", "faults", "--contact", "grey@example.org")
            out(dripd, "enroll", "faults", "--contact", "gone@example.org")
            out(dripd, "sequences", "start", "faults")

            def settled() -> dict[str, dict[str, Any]] | None:
                rows = {c["email"]: c for c in as_json(dripd, "sequences", "contacts", "faults")["contacts"]}
                done = rows["grey@example.org"]["state"] == "retrying" and rows["gone@example.org"]["status"] == "bounced"
                return rows if done else None

            rows = wait_until(settled, timeout=30, what=lambda: dripd.log())
            grey = rows["grey@example.org"]
            assert grey["status"] == "active" and grey["nextRunReason"].startswith(
                "retry after a temporary failure: attempt 1: ") and "450" in grey["nextRunReason"]
            table = ctl(dripd, "sequences", "contacts", "faults").stdout
            assert "retrying" in table and "bounced: " in table and "550" in table
            assert "active " not in table  # neither shows as plain active


def on_a_terminal(dripd: DripdProcess, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """dripctl with a real terminal as its stdin (a pty), answering ``answer`` to its question."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([str(DRIPCTL), "-s", str(dripd.socket), *args], stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(leader, answer.encode() + b"\n")
        try:
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    finally:
        os.close(leader)
        os.close(follower)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def test_complete_asks_on_a_terminal(dripd: DripdProcess) -> None:
    email_sequence(dripd, "to end")
    out(dripd, "enroll", "to end", "--contact", "end@user.example")
    out(dripd, "sequences", "start", "to end")
    kept = on_a_terminal(dripd, "no", "sequences", "complete", "to end")
    assert kept.returncode == 1 and "cannot be undone" in kept.stderr and "not completed" in kept.stderr
    assert as_json(dripd, "sequences", "show", "to end")["status"] == "active"
    done = on_a_terminal(dripd, "yes", "sequences", "complete", "to end")
    assert done.returncode == 0, done.stderr
    assert as_json(dripd, "sequences", "show", "to end")["status"] == "completed"
