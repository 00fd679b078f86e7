"""Every example sequence (etc/sequences/), sent by the real daemon as a real setup would (https
tracking, List-Unsubscribe with one-click, List-Id), scored by SpamAssassin with network tests off
(issue 20.9). Structural rules (broken MIME, missing or invalid headers) fail the test; content
rules (the open pixel on a short message, HTML_IMAGE_ONLY_*) only add to the printed score, and
docs/deliverability.md says what they cost.

SpamAssassin is Debian's package (``make deps-debian`` installs it).
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dripd.ctl import seqfile
from tests.integration.daemon_process import free_port, running_dripd

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "etc" / "sequences").glob("*.toml"))
EMAIL_STEPS = ("email", "send_email")
# Rule-name prefixes that mean the message itself is malformed (not that its content looks spammy).
STRUCTURAL = ("MISSING_", "INVALID_", "MIME_", "MPART_ALT_DIFF", "HTML_MIME_NO_HTML_TAG", "BAD_ENC_HEADER",
              "HEADER_", "MALFORMED", "FROM_EXCESS_BASE64", "SUBJ_ILLEGAL_CHARS", "DATE_IN_", "TVD_SPACE_RATIO")
FIELDS = {"firstName": "Sam", "company": "Acme", "plan": "Pro", "timezone": "Europe/Berlin"}


def sendable_now(sequence: dict[str, Any], suffix: int) -> dict[str, Any]:
    """The example with its email steps back to back and its window open around the clock:
    the messages are the example's own, without waiting days for them."""
    out = {k: v for k, v in sequence.items() if k not in ("holidays", "blackoutDates", "weekdaysOnly", "windowZone")}
    out.update(name=f"{sequence['name']} {suffix}", timezone="UTC", sendWindowStartHour=0, sendWindowEndHour=24)
    out["steps"] = [s for s in sequence["steps"] if s["type"] in EMAIL_STEPS]
    return out


def scored(mbox: Path, home: Path) -> list[tuple[str, float, list[str]]]:
    spamassassin = shutil.which("spamassassin")
    assert spamassassin is not None, "spamassassin missing: make deps-debian installs Debian's spamassassin"
    prefs = home / "user_prefs"
    prefs.write_text("")
    result = subprocess.run(
        [spamassassin, "--local", "--test-mode", "--mbox", "-p", str(prefs), "--cf=use_bayes 0",
         "--cf=bayes_auto_learn 0"], stdin=mbox.open("rb"), capture_output=True, timeout=120,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = []
    for chunk in re.split(rb"^From dripd .*\n", result.stdout, flags=re.MULTILINE)[1:]:
        message = email.message_from_bytes(chunk, policy=email.policy.default)
        # The header folds after a comma of the rule list: join the list back before reading it.
        status = re.sub(r",\s+", ",", re.sub(r"\s+", " ", str(message["X-Spam-Status"])))
        score = float(re.search(r"score=(-?[\d.]+)", status).group(1))  # type: ignore[union-attr]
        tests = re.search(r"tests=(\S*)", status).group(1)  # type: ignore[union-attr]
        out.append((str(message["Subject"]), score, [t for t in tests.split(",") if t and t != "none"]))
    return out


def test_every_example_sequence_scores_clean_structurally(tmp_path: Path) -> None:
    (tmp_path / "tracking.key").write_bytes(b"spamassassin-test-secret-0123456789\n")
    extra = {"tracking": {"listen": f"127.0.0.1:{free_port()}", "base_url": "https://t.example.com",
                          "secret_file": str(tmp_path / "tracking.key")}}
    expected = 0
    with running_dripd(tmp_path, extra=extra) as process, process.client() as api:
        # Each example as written, then each with open and click tracking on (the pixel's cost).
        variants = [(path, {}) for path in EXAMPLES] + [(path, {"trackOpens": True, "trackClicks": True})
                                                        for path in EXAMPLES]
        for index, (path, tracking) in enumerate(variants):
            sequence = {**sendable_now(seqfile.load(path), index), **tracking}
            created = api.post("/api/sequences", json=sequence)
            assert created.status_code == 201, (path.name, created.text)
            sid = created.json()["id"]
            enrolled = api.post(f"/api/sequences/{sid}/enroll",
                                json={"contactEmail": f"reader{index}@user.example", "mergeFields": FIELDS})
            assert enrolled.status_code == 201, enrolled.text
            assert api.post(f"/api/sequences/{sid}/start").status_code == 200
            expected += len(sequence["steps"])
        assert len(EXAMPLES) >= 2 and expected >= 4
        process.wait_for_messages(expected)
        files = sorted((process.maildir() / "new").iterdir())
    mbox = tmp_path / "sent.mbox"
    with mbox.open("wb") as out:
        for file in files:
            out.write(b"From dripd Thu Jan  1 00:00:00 2026\n" + file.read_bytes().replace(b"\r\n", b"\n") + b"\n")
    results = scored(mbox, tmp_path)
    print()
    assert len(results) == expected
    for subject, score, tests in results:
        print(f"{score:5.1f}  {subject}  {','.join(tests)}")  # the figures, for docs/deliverability.md
    broken = [(subject, t) for subject, _, tests in results for t in tests if t.startswith(STRUCTURAL)]
    assert broken == [], broken
    # List-Unsubscribe now travels with a List-Id: the "partial list headers" rule never fires.
    assert all("LIST_PARTIAL_SHORT_MSG" not in tests for _, _, tests in results)
