"""dripctl against the real daemon over its real Unix socket, and when the daemon is down."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import shutil
from pathlib import Path
from typing import Any

from dripd.ctl.main import main
from tests.integration.daemon_process import DRIPCTL, DripdProcess, running_dripd

EXAMPLES = Path(__file__).resolve().parents[2] / "etc" / "sequences"


def run(dripd: DripdProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """dripctl's main() in this process (fast), still over the daemon's real socket; the
    process-level behaviour (exit status, a dead daemon, the progress bar) is tested below."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["-s", str(dripd.socket), *args])
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def ok(dripd: DripdProcess, *args: str) -> str:
    result = run(dripd, *args)
    assert result.returncode == 0, f"dripctl {' '.join(args)}: {result.stderr}"
    return result.stdout


def as_json(dripd: DripdProcess, *args: str) -> Any:
    return json.loads(ok(dripd, "--json", *args))


def test_daemon_down_is_one_clear_line(tmp_path: Path) -> None:
    socket = tmp_path / "dripd.sock"
    result = subprocess.run([str(DRIPCTL), "-s", str(socket), "status"], capture_output=True, text=True)
    assert result.returncode == 69
    assert result.stderr == f"dripctl: cannot reach dripd at {socket} (is it running?)\n"
    env_result = subprocess.run([str(DRIPCTL), "sequences", "list"], capture_output=True, text=True,
                                env={"DRIPD_SOCKET": str(socket), "PATH": "/usr/bin:/bin"})
    assert env_result.returncode == 69 and str(socket) in env_result.stderr


def test_status_and_mailboxes(dripd: DripdProcess) -> None:
    text = ok(dripd, "status")
    assert "queue depth:" in text and "uncertain sends:  0" in text
    table = ok(dripd, "mailboxes").splitlines()
    assert table[0].split()[:3] == ["ID", "ADDRESS", "TODAY"] and table[1].startswith("sales")
    assert as_json(dripd, "mailboxes", "pause", "sales", "--reason", "maintenance")["pausedReason"] == "maintenance"
    assert as_json(dripd, "mailboxes", "resume", "sales")["paused"] is False
    result = run(dripd, "mailboxes", "show", "nope")
    assert result.returncode == 1 and result.stderr.startswith("dripctl: no mailbox 'nope'") and "[not_found]" in result.stderr


def test_sequences_steps_enroll_preview(dripd: DripdProcess) -> None:
    created = ok(dripd, "sequences", "create", "ctl seq", "--mailbox", "sales", "--window", "0-24", "--no-weekdays-only")
    assert "status:" in created and "draft" in created
    ok(dripd, "steps", "add", "ctl seq", "--type", "email", "--subject", "Hi {{firstName}}",
       "--body", "<p>Hello {{firstName}} from {{company}}</p>")
    ok(dripd, "steps", "add", "ctl seq", "--type", "wait", "--ms", "200")
    ok(dripd, "steps", "add", "ctl seq", "--type", "email", "--subject", "", "--body", "<p>again</p>")
    assert "wait 1 day\n" in ok(dripd, "steps", "edit", "ctl seq", "1", "--days", "1")
    assert as_json(dripd, "steps", "edit", "ctl seq", "1", "--ms", "200")["delayMs"] == 200
    bad = run(dripd, "steps", "add", "ctl seq", "--type", "wait")
    assert bad.returncode == 1 and "--days" in bad.stderr and "waitDays" not in bad.stderr and "[validation_error]" in bad.stderr
    ok(dripd, "steps", "add", "ctl seq", "--type", "conditional", "--condition", "if_replied")
    assert "conditional" not in ok(dripd, "steps", "rm", "ctl seq", "3")

    out = ok(dripd, "enroll", "ctl seq", "--contact", "eve@example.org", "--field", "firstName=Eve",
             "--field", "company=Evil Corp")
    assert out.startswith("1 enrolled")
    dup = run(dripd, "enroll", "ctl seq", "--contact", "eve@example.org")
    assert dup.returncode == 1 and "[already_enrolled]" in dup.stderr
    preview = ok(dripd, "preview", "ctl seq", "--step", "0", "--contact", "eve@example.org")
    assert "Subject: Hi Eve" in preview and "Hello Eve from Evil Corp" in preview
    assert "<p>Hello Eve" in ok(dripd, "preview", "ctl seq", "--step", "0", "--contact", "eve@example.org", "--html")

    listing = ok(dripd, "sequences", "list").splitlines()
    header = listing[0].split()
    assert header[:5] == ["ID", "NAME", "STATUS", "MAILBOX", "STEPS"] and "ACTIVE" in header
    row = next(line for line in listing if "ctl seq" in line)
    assert "draft" in row
    assert "active" in ok(dripd, "sequences", "start", "ctl seq")
    messages = dripd.wait_for_messages(2)
    assert [str(m["Subject"]) for m in messages[:2]] == ["Hi Eve", "Re: Hi Eve"]
    progress = ok(dripd, "sequences", "contacts", "ctl seq").splitlines()
    assert progress[0].split()[:4] == ["ID", "EMAIL", "STATUS", "STEP"] and "eve@example.org" in progress[1]
    assert as_json(dripd, "sequences", "show", "ctl seq")["name"] == "ctl seq"
    clone = as_json(dripd, "sequences", "clone", "ctl seq", "--name", "ctl seq 2")
    assert clone["status"] == "draft" and len(clone["steps"]) == 3
    assert "paused" not in ok(dripd, "sequences", "update", "ctl seq 2", "--window", "9-17", "--weekdays-only")
    assert as_json(dripd, "sequences", "show", "ctl seq 2")["sendWindowEndHour"] == 17
    wrong = run(dripd, "sequences", "resume", "ctl seq 2")
    assert wrong.returncode == 1 and "[invalid_transition]" in wrong.stderr
    assert "active" in ok(dripd, "sequences", "start", "ctl seq 2")
    assert as_json(dripd, "sequences", "pause", "ctl seq 2")["status"] == "paused"
    # Enrolled and cancelled while paused, so nothing is sent meanwhile: its 9-17 window may be
    # open at the hour the test runs, and a running zed could finish before the cancel arrives.
    ok(dripd, "enroll", "ctl seq 2", "--contact", "zed@example.org")
    ok(dripd, "enroll", "ctl seq 2", "--contact", "yan@example.org")
    ok(dripd, "sequences", "cancel", "ctl seq 2", "zed@example.org")
    assert as_json(dripd, "sequences", "resume", "ctl seq 2")["status"] == "active"
    assert as_json(dripd, "sequences", "complete", "ctl seq 2", "--yes")["status"] == "completed"
    missing = run(dripd, "sequences", "show", "no such sequence")
    assert missing.returncode == 1 and "no sequence named" in missing.stderr


def test_contacts_and_lists(dripd: DripdProcess) -> None:
    added = ok(dripd, "contacts", "add", "Kim@Example.org", "--first-name", "Kim", "--field", "tier=gold")
    assert "kim@example.org" in added and "fields:     tier=gold" in added  # pairs, not raw JSON
    assert "Lee" in ok(dripd, "contacts", "update", "kim@example.org", "--last-name", "Lee")
    assert "kim@example.org" in ok(dripd, "contacts", "list", "--email", "kim")
    assert as_json(dripd, "contacts", "show", "kim@example.org")["lastName"] == "Lee"
    made = ok(dripd, "lists", "create", "vip", "kim@example.org", "lou@example.org")
    assert "2 member(s)" in made
    assert "3 member(s)" in ok(dripd, "lists", "add", "vip", "max@example.org")
    assert "2 member(s)" in ok(dripd, "lists", "remove", "vip", "lou@example.org")
    assert any(line.split()[1:] == ["vip", "2"] for line in ok(dripd, "lists", "list").splitlines()[1:])
    assert "kim@example.org" in ok(dripd, "lists", "show", "vip")
    ok(dripd, "sequences", "create", "list seq", "--mailbox", "sales")
    ok(dripd, "steps", "add", "list seq", "--type", "email", "--subject", "S", "--body", "<p>b</p>")
    assert ok(dripd, "enroll", "list seq", "--list", "vip").startswith("2 enrolled")
    ok(dripd, "contacts", "rm", "max@example.org")
    assert run(dripd, "contacts", "show", "max@example.org").returncode == 1
    ok(dripd, "lists", "rm", "vip")


def test_enroll_csv_with_progress(dripd: DripdProcess, tmp_path: Path) -> None:
    ok(dripd, "sequences", "create", "csv seq", "--mailbox", "sales")
    ok(dripd, "steps", "add", "csv seq", "--type", "email", "--subject", "Hi {{firstName}}", "--body", "<p>{{market}}</p>")
    good = tmp_path / "good.csv"
    good.write_text("email,firstName,market\n" + "".join(f"r{i}@example.org,R{i},EU\n" for i in range(5000)))
    result = dripd.dripctl("enroll", "csv seq", "--csv", str(good), "--progress")
    assert result.returncode == 0, result.stderr
    assert "5000 row(s): 5000 enrolled" in result.stdout and "100%" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("email,firstName\nnew1@example.org,A\nbroken,B\nnew2@example.org,C\n")
    refused = run(dripd, "enroll", "csv seq", "--csv", str(bad))
    assert refused.returncode == 1 and "line 3: email" in refused.stderr and "nothing was enrolled" in refused.stderr
    skipped = run(dripd, "enroll", "csv seq", "--csv", str(bad), "--skip-invalid")
    assert skipped.returncode == 0 and "2 enrolled" in skipped.stdout and "line 3: email" in skipped.stdout


def test_apply_and_export_examples(dripd: DripdProcess, tmp_path: Path) -> None:
    for example in ("cold-outreach.toml", "onboarding.toml"):
        path = tmp_path / example
        shutil.copy(EXAMPLES / example, path)
        plan = run(dripd, "apply", "-f", str(path), "--dry-run")
        assert plan.returncode == 0 and plan.stdout.startswith("+ create sequence") and "dry run" in plan.stdout
        applied = ok(dripd, "apply", "-f", str(path))
        assert "applied" in applied
        assert "up to date" in ok(dripd, "apply", "-f", str(path))
    # export writes what apply reads: a round trip changes nothing.
    exported = tmp_path / "exported.toml"
    ok(dripd, "export", "Cold outreach", "-o", str(exported))
    assert "up to date" in ok(dripd, "apply", "-f", str(exported))
    # Edit the file: the plan names each change, then applies it.
    text = exported.read_text().replace("waitDays = 5", "waitDays = 4").replace("sendWindowEndHour = 17",
                                                                                 "sendWindowEndHour = 18")
    text += '\n[[steps]]\ntype = "email"\nsubject = "Bonus"\nbody = "<p>bonus</p>"\n'
    exported.write_text(text)
    out = ok(dripd, "apply", "-f", str(exported))
    assert "~ sendWindowEndHour: 17 -> 18" in out and "~ step 4: wait 5 days -> wait 4 days" in out
    assert "+ step 6: email 'Bonus'" in out
    seq = as_json(dripd, "sequences", "show", "Cold outreach")
    assert seq["sendWindowEndHour"] == 18 and seq["steps"][4]["waitDays"] == 4 and len(seq["steps"]) == 7
    shorter = exported.read_text().split("\n[[steps]]\ntype = \"email\"\nsubject = \"Bonus\"")[0]
    exported.write_text(shorter)
    assert "- step 6: email 'Bonus'" in ok(dripd, "apply", "-f", str(exported))
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n')
    result = run(dripd, "apply", "-f", str(broken))
    assert result.returncode == 1 and "mailboxId is required" in result.stderr


def test_contacts_verify_and_bounced(tmp_path: Path) -> None:
    with running_dripd(tmp_path) as process:
        bad = process.dripctl("contacts", "verify", "not an address")
        assert bad.returncode == 1, bad.stderr
        assert "syntax" in bad.stdout and "FAIL" in bad.stdout and "invalid" in bad.stdout
        # The domain check depends on this machine's DNS (none, or a resolver that answers
        # NXDOMAIN for everything): whatever it says, it says it per check, with a reason.
        maybe = process.dripctl("--json", "contacts", "verify", "someone@example.org")
        result = json.loads(maybe.stdout)
        assert maybe.returncode == (1 if result["verdict"] == "invalid" else 0), maybe.stderr
        checks = {c["name"]: c for c in result["checks"]}
        assert checks["syntax"]["ok"] is True and checks["domain"]["detail"]
        with process.client() as client:
            assert client.post("/api/suppressions", json={"email": "gone@example.org", "reason": "bounced"}).status_code in (200, 201)
        listed = process.dripctl("contacts", "bounced")
        assert listed.returncode == 0 and "gone@example.org" in listed.stdout
