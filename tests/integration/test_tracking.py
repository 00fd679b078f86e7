"""Tracking on the real daemon with real HTTP: opens and clicks move the funnel and drive
if_opened / if_clicked; prefetchers and scanners are recorded but do not count; forged tokens
and foreign redirect targets are refused; one-click unsubscribes stop the next step; /metrics
parses with prometheus-client's own parser and matches the scenario.

Waits are a few seconds of real time: the hits land between a first email and its conditional.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.daemon_process import DripdProcess, MakeDripd, free_port, running_dripd
from tests.integration.waiting import wait_until

BASE = "https://t.example.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
SECRET = b"s3cret-key-for-tests-0123456789abcdef"
SCANNER_SECONDS = 1.5


class Env:
    def __init__(self, process: DripdProcess, tracking_port: int, metrics_port: int) -> None:
        self.process = process
        self.public = httpx.Client(base_url=f"http://127.0.0.1:{tracking_port}", follow_redirects=False, timeout=10)
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.api = process.client()

    def hit(self, url: str, method: str = "GET", ua: str = BROWSER, **kwargs: Any) -> httpx.Response:
        """A request to a URL from a message, through the listener (the proxy's job in production)."""
        assert url.startswith(BASE + "/"), url
        return self.public.request(method, url[len(BASE):], headers={"User-Agent": ua}, **kwargs)

    def sequence(self, name: str, steps: list[dict[str, Any]], contacts: list[str], **settings: Any) -> int:
        seq = self.api.post("/api/sequences", json={"name": name, "mailboxId": "sales", "steps": steps, **settings})
        assert seq.status_code == 201, seq.text
        sid = seq.json()["id"]
        for email in contacts:
            r = self.api.post(f"/api/sequences/{sid}/enroll", json={"contactEmail": email,
                                                                      "mergeFields": {"firstName": email.split("@")[0]}})
            assert r.status_code == 201, r.text
        assert self.api.post(f"/api/sequences/{sid}/start").status_code == 200
        return int(sid)

    def stats(self, sid: int) -> dict[str, Any]:
        r = self.api.get(f"/api/sequences/{sid}/stats")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def events(self, sid: int) -> list[Any]:
        """Every event of every contact in the sequence (the per-contact logs)."""
        out = []
        for c in self.api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]:
            out += self.api.get(f"/api/sequences/{sid}/contacts/{c['contactId']}").json()["events"]
        return out

    def status_of(self, sid: int) -> dict[str, str]:
        return {c["email"]: c["status"] for c in self.api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("tracking")
    (root / "tracking.key").write_bytes(SECRET + b"\n")
    tracking_port, metrics_port = free_port(), free_port()
    extra = {"tracking": {"listen": f"127.0.0.1:{tracking_port}", "base_url": BASE,
                          "secret_file": str(root / "tracking.key"), "scanner_seconds": SCANNER_SECONDS},
             "metrics": {"listen": f"127.0.0.1:{metrics_port}"}}
    with running_dripd(root, extra=extra) as process:
        e = Env(process, tracking_port, metrics_port)
        yield e
        e.public.close()
        e.api.close()
    assert SECRET.decode() not in process.log()  # the key is never logged


# -- helpers ------------------------------------------------------------------------------------------


def to(message: Any) -> str:
    return str(message["To"]).split("<")[-1].rstrip(">")


def html_of(message: Any) -> str:
    return str(message.get_body(("html",)).get_content())


def links(message: Any, kind: str) -> list[str]:
    return re.findall(re.escape(BASE) + f"/{kind}/[A-Za-z0-9_.-]+", html_of(message))


def wait_for(env: Env, check: Any) -> Any:
    """``wait_until`` with the daemon's recent log as the failure message."""
    return wait_until(check, interval=0.03, what=lambda: env.process.log()[-3000:])


def inbox(env: Env, subject_prefix: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for message in env.process.messages():
        if str(message["Subject"]).startswith(subject_prefix) or str(message["Subject"]).startswith("Re: " + subject_prefix):
            out.setdefault(to(message), []).append(message)
    return out


def first_messages(env: Env, prefix: str, people: list[str]) -> dict[str, Any]:
    found = wait_for(env, lambda: (lambda box: box if all(p in box for p in people) else None)(inbox(env, prefix)))
    return {p: found[p][0] for p in people}


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(samples: dict[Any, float], name: str, **labels: Any) -> float:
    key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
    return samples.get(key, 0.0)


def forge(payload: str, key: bytes) -> str:
    """A token built like dripd's but signed with another key."""
    raw = payload.encode()
    sig = hmac.new(key, b"dripd-tracking-v1\x00" + raw, hashlib.sha256).digest()[:16]

    def enc(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    return f"{enc(raw)}.{enc(sig)}"


def step_ids(env: Env, sid: int) -> list[int]:
    return [s["id"] for s in env.api.get(f"/api/sequences/{sid}").json()["steps"]]


# -- the scenarios --------------------------------------------------------------------------------------


def test_opens_drive_if_opened_and_prefetchers_do_not(env: Env) -> None:
    people = ["reader@example.org", "nobody@example.org", "machine@example.org"]
    sid = env.sequence("opens", [
        {"type": "email", "subject": "Opens hello {{firstName}}", "body": "<html><body><p>Hi</p></body></html>"},
        {"type": "wait", "delayMs": 2000},
        {"type": "conditional", "condition": "if_opened"},
        {"type": "email", "subject": "Opens: did you see my note?", "body": "<p>Nudge</p>", "thread": False},
        {"type": "email", "subject": "Opens last", "body": "<p>Bye</p>", "thread": False},
    ], people, trackOpens=True)
    first = first_messages(env, "Opens", people)
    pixels = {p: links(m, "o") for p, m in first.items()}
    assert all(len(v) == 1 for v in pixels.values()), pixels
    assert "</body>" in html_of(first["reader@example.org"]).split(pixels["reader@example.org"][0])[1]

    r = env.hit(pixels["reader@example.org"][0])
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif" and r.content[:6] == b"GIF89a"
    assert "no-store" in r.headers["cache-control"]
    # Apple MPP's bare user agent, then Gmail's proxy's first fetch: recorded, flagged.
    assert env.hit(pixels["machine@example.org"][0], ua="Mozilla/5.0").status_code == 200
    assert env.hit(pixels["machine@example.org"][0], ua=GMAIL_PROXY).status_code == 200

    final = wait_for(env, lambda: (lambda box: box if sum(map(len, box.values())) >= 8 else None)(inbox(env, "Opens")))
    time.sleep(0.3)
    final = inbox(env, "Opens")
    # Sorted: back-to-back files can share a file-system timestamp, so Maildir order is not send order.
    subjects = {p: sorted(str(m["Subject"]) for m in final[p]) for p in people}
    assert subjects["reader@example.org"] == ["Opens hello reader", "Opens last"]
    assert subjects["nobody@example.org"] == ["Opens hello nobody", "Opens last", "Opens: did you see my note?"]
    assert subjects["machine@example.org"] == ["Opens hello machine", "Opens last", "Opens: did you see my note?"]

    stats = env.stats(sid)
    first_step, nudge, last = stats["steps"]
    # By hand: 3 first emails, one real open, one machine-only; 2 nudges; 3 last emails; nothing
    # delivered yet (no DSN, bounce window of 24 h not over).
    assert {k: first_step[k] for k in ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed",
                                       "flaggedOpens")} == {
        "sent": 3, "delivered": 0, "opened": 1, "clicked": 0, "replied": 0, "bounced": 0, "unsubscribed": 0,
        "flaggedOpens": 1}
    assert first_step["rates"]["opened"] == round(1 / 3, 4)
    assert (nudge["stepIndex"], nudge["sent"], nudge["opened"]) == (3, 2, 0)
    assert (last["stepIndex"], last["sent"]) == (4, 3)
    assert stats["total"]["sent"] == 8 and stats["total"]["opened"] == 1

    ids = step_ids(env, sid)
    for url in (env.metrics_url,):
        samples = metric_samples(httpx.get(url, timeout=10).text)
        assert metric(samples, "dripd_events_total", mailbox="sales", sequence=sid, step=ids[0], kind="opened") == 1
        assert metric(samples, "dripd_flagged_hits_total", mailbox="sales", sequence=sid, step=ids[0],
                      kind="opened") == 2
        for index, count in ((0, 3), (3, 2), (4, 3)):
            assert metric(samples, "dripd_sends_total", mailbox="sales", sequence=sid, step=ids[index],
                          outcome="accepted") == count
        assert metric(samples, "dripd_enrollments", sequence=sid, status="completed") == 3

    # The per-contact log shows the flagged hits with their reason, in order.
    contact = env.api.get("/api/contacts", params={"email": "machine@example.org"}).json()["contacts"][0]
    log = env.api.get(f"/api/sequences/{sid}/contacts/{contact['id']}").json()
    opens = [e for e in log["events"] if e["kind"] == "opened"]
    assert [(e["flagged"], e["data"]["flag"]) for e in opens] == [
        (True, "Apple Mail Privacy Protection prefetch"), (True, "Gmail image proxy first fetch")]
    assert [m["stepIndex"] for m in log["messages"]] == [0, 3, 4]

    # dripctl draws the same funnel, and writes it as a self-contained page.
    out = env.process.dripctl("stats", "opens")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.lstrip().startswith(("0 ", "3 ", "4 "))]
    assert len(rows) == 3 and "▒" in rows[0] and "bar: █ replied" in out.stdout
    page = env.process.root / "opens.html"
    out = env.process.dripctl("stats", str(sid), "--html", str(page))
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    assert "<html" in text and "Opens hello" in text and "src=" not in text and "<script" not in text


def test_clicks_drive_if_clicked_scanners_do_not_and_redirects_stay_in_the_message(env: Env) -> None:
    people = ["clicker@example.org", "scanned@example.org"]
    sid = env.sequence("clicks", [
        {"type": "email", "subject": "Clicks hello", "body": '<p><a href="https://example.org/pricing?a=1&amp;b=2">'
                                                            'pricing</a> <a href="mailto:me@example.com">mail</a> '
                                                            '<a href="{{unsubscribeUrl}}">unsubscribe</a></p>'},
        {"type": "wait", "delayMs": 3500},
        {"type": "conditional", "condition": "if_clicked"},
        {"type": "email", "subject": "Clicks: still interested?", "body": "<p>?</p>", "thread": False},
        {"type": "email", "subject": "Clicks bye", "body": "<p>bye</p>", "thread": False},
    ], people, trackClicks=True)
    first = first_messages(env, "Clicks", people)
    sent_at = {p: (env.process.maildir() / "new").stat().st_mtime for p in people}
    body = html_of(first["clicker@example.org"])
    assert "mailto:me@example.com" in body and "https://example.org/pricing" not in body
    assert len(links(first["clicker@example.org"], "u")) == 1  # the unsubscribe link is not click-tracked
    click = {p: links(m, "c") for p, m in first.items()}
    assert all(len(v) == 1 for v in click.values())

    # Scanners, right after delivery: a HEAD, a security gateway, a "person" within a second.
    url = click["scanned@example.org"][0]
    assert env.hit(url, "HEAD").status_code == 302
    assert env.hit(url, ua="Mimecast Security Scanner").status_code == 302
    assert env.hit(url).status_code == 302

    before = env.events(sid)
    # Forgeries: an altered token, a token of another key with a foreign URL, an open token as a
    # click, a target in the query string: 404 or the original target, and nothing recorded.
    token = click["clicker@example.org"][0].rsplit("/", 1)[1]
    payload, sig = token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    message_id = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split("\x1f")[1]
    for bad in (f"{flipped}.{sig}", f"{payload}.{sig[:-1]}", f"{payload}x.{sig}",
                forge(f"c\x1f{message_id}\x1f0\x1fhttps://evil.example/", b"another-key-0123456789"),
                forge(f"c\x1f{message_id}\x1f0\x1fhttps://evil.example/", SECRET[:-1]), "nothing", "a.b.c"):
        r = env.public.get(f"/c/{bad}", headers={"User-Agent": BROWSER})
        assert r.status_code == 404, (bad, r.status_code)
    assert env.public.get(f"/o/{token}").status_code == 404  # a click token is not an open token
    assert env.public.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click").status_code == 404
    assert env.public.get("/c/").status_code == 404 and env.public.get("/redirect?url=https://evil.example").status_code == 404
    assert env.events(sid) == before  # nothing recorded, nothing changed

    # A person, past the scanner window: redirected to exactly the URL in the message.
    time.sleep(max(0.0, sent_at["clicker@example.org"] + SCANNER_SECONDS + 0.3 - time.time()))
    r = env.hit(click["clicker@example.org"][0] + "?url=https://evil.example/")
    assert r.status_code == 302 and r.headers["location"] == "https://example.org/pricing?a=1&b=2"
    assert r.headers["referrer-policy"] == "no-referrer"

    wait_for(env, lambda: sum(map(len, inbox(env, "Clicks").values())) >= 5)
    time.sleep(0.3)
    final = inbox(env, "Clicks")
    assert sorted(str(m["Subject"]) for m in final["clicker@example.org"]) == ["Clicks bye", "Clicks hello"]
    assert sorted(str(m["Subject"]) for m in final["scanned@example.org"]) == [
        "Clicks bye", "Clicks hello", "Clicks: still interested?"]

    step = env.stats(sid)["steps"][0]
    assert (step["sent"], step["clicked"], step["flaggedClicks"], step["opened"]) == (2, 1, 1, 0)
    assert step["rates"]["clicked"] == 0.5
    ids = step_ids(env, sid)
    text = env.api.get("/metrics").text  # the control socket serves the same exposition
    samples = metric_samples(text)
    assert metric(samples, "dripd_events_total", mailbox="sales", sequence=sid, step=ids[0], kind="clicked") == 1
    # Two rows, not three: the gateway and the early "person" share a flag ("within 1.5s of the
    # send"), and a repeat of the same hit within tracking.dedupe_seconds is not stored.
    assert metric(samples, "dripd_flagged_hits_total", mailbox="sales", sequence=sid, step=ids[0],
                  kind="clicked") == 2


def test_one_click_unsubscribe_is_global_and_stops_the_next_step(env: Env) -> None:
    people = ["leaver@example.org", "stayer@example.org", "pager@example.org"]
    # Another sequence holds the same address (a draft: nothing sent), to show unsubscribing is global.
    other = env.api.post("/api/sequences", json={"name": "elsewhere", "mailboxId": "sales", "steps": [
        {"type": "email", "subject": "Elsewhere", "body": "<p>x</p>"}]}).json()["id"]
    env.api.post(f"/api/sequences/{other}/enroll", json={"contactEmail": "leaver@example.org"})
    sid = env.sequence("unsub", [
        {"type": "email", "subject": "Unsub hello", "body": '<p>Hi. <a href="{{unsubscribeUrl}}">Unsubscribe</a></p>'},
        {"type": "wait", "delayMs": 1500},
        {"type": "email", "subject": "Unsub follow-up", "body": "<p>again</p>", "thread": False},
    ], people)
    first = first_messages(env, "Unsub", people)
    message = first["leaver@example.org"]
    header = str(message["List-Unsubscribe"])
    https_url, mailto = re.findall(r"<([^>]+)>", header)
    assert https_url.startswith(BASE + "/u/") and mailto.startswith("mailto:sales@example.com")
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert https_url in html_of(message)  # {{unsubscribeUrl}} is the same link

    page = env.hit(https_url)  # GET shows a confirmation page and changes nothing
    assert page.status_code == 200 and 'method="post"' in page.text
    assert env.status_of(sid)["leaver@example.org"] == "active"

    r = env.public.post(  # RFC 8058, as a mailbox provider sends it
        https_url[len(BASE):], content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Gmail one-click"})
    assert r.status_code == 200
    pager_url = links(first["pager@example.org"], "u")[0]
    r = env.public.post(pager_url[len(BASE):], data={"confirm": "yes"}, headers={"User-Agent": BROWSER})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert env.public.post(https_url[len(BASE):], content=b"List-Unsubscribe=One-Click").status_code == 200  # again

    wait_for(env, lambda: len(inbox(env, "Unsub").get("stayer@example.org", [])) == 2)
    time.sleep(0.3)
    box = inbox(env, "Unsub")
    assert len(box["leaver@example.org"]) == 1 and len(box["pager@example.org"]) == 1
    assert env.status_of(sid) == {"leaver@example.org": "unsubscribed", "stayer@example.org": "completed",
                                  "pager@example.org": "unsubscribed"}
    assert env.status_of(other) == {"leaver@example.org": "unsubscribed"}  # global
    suppressed = env.api.get("/api/suppressions").json()
    assert "leaver@example.org" in str(suppressed)
    third = env.api.post("/api/sequences", json={"name": "later", "mailboxId": "sales", "steps": [
        {"type": "email", "subject": "Later", "body": "<p>x</p>"}]}).json()["id"]
    r = env.api.post(f"/api/sequences/{third}/enroll", json={"contactEmail": "leaver@example.org"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "suppressed"

    step = env.stats(sid)["steps"][0]
    assert (step["sent"], step["unsubscribed"], step["rates"]["unsubscribed"]) == (3, 2, round(2 / 3, 4))
    ids = step_ids(env, sid)
    samples = metric_samples(httpx.get(env.metrics_url, timeout=10).text)
    assert metric(samples, "dripd_events_total", mailbox="sales", sequence=sid, step=ids[0], kind="unsubscribed") == 2
    assert metric(samples, "dripd_sends_total", mailbox="sales", sequence=sid, step=ids[2], outcome="accepted") == 1


def test_without_list_unsubscribe_headers_the_body_link_still_works(env: Env) -> None:
    env.sequence("quiet", [{"type": "email", "subject": "Quiet hello",
                            "body": '<p>1:1 <a href="{{unsubscribeUrl}}">stop</a></p>'}],
                 ["quiet@example.org"], listUnsubscribe=False)
    message = first_messages(env, "Quiet", ["quiet@example.org"])["quiet@example.org"]
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    url = links(message, "u")[0]
    assert env.hit(url).status_code == 200


def test_metrics_exposition_is_valid(env: Env) -> None:
    # A send of its own, so the test does not depend on the module's earlier tests having sent.
    env.sequence("metrics", [{"type": "email", "subject": "Metrics hello", "body": "<p>hi</p>"}],
                 ["metrics@example.org"])
    first_messages(env, "Metrics", ["metrics@example.org"])
    text = httpx.get(env.metrics_url, timeout=10).text
    families = {f.name for f in text_string_to_metric_families(text)}
    for name in ("dripd_sends", "dripd_events", "dripd_retries", "dripd_send_latency_seconds",
                 "dripd_schedule_lateness_seconds", "dripd_queue_depth", "dripd_heap_size", "dripd_enrollments",
                 "dripd_mailbox_tokens", "dripd_mailbox_sends_today", "dripd_mailbox_healthy", "dripd_uncertain_sends",
                 "dripd_send_slot_seconds"):
        assert name in families, name
    slot_seconds = {s.labels["state"]: s.value for f in text_string_to_metric_families(text)
                    if f.name == "dripd_send_slot_seconds" for s in f.samples if s.labels["mailbox"] == "sales"}
    assert set(slot_seconds) == {"on_the_wire", "waiting_for_claim", "waiting_for_prepare", "idle"}
    assert slot_seconds["on_the_wire"] > 0  # it has sent
    assert "@" not in text  # never an address in a label
    # Mailbox health: in the API, its stats endpoint and dripctl's table (too few sends to judge yet).
    assert env.api.get("/api/mailboxes").json()["mailboxes"][0]["health"]["status"] in ("unknown", "ok")
    stats = env.api.get("/api/mailboxes/sales/stats").json()
    assert stats["health"]["recent"]["sends"] > 0 and stats["windowDays"] == 7
    assert env.api.get("/api/mailboxes/nope/stats").status_code == 404
    out = env.process.dripctl("mailboxes")
    assert out.returncode == 0 and "HEALTH" in out.stdout.splitlines()[0]
    assert httpx.get(env.metrics_url.replace("/metrics", "/other"), timeout=10).status_code == 404
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool missing: make deps-debian installs Debian's prometheus"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_and_dashboard_use_only_metrics_dripd_exports(env: Env) -> None:
    text = httpx.get(env.metrics_url, timeout=10).text
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    etc = Path(__file__).resolve().parents[2] / "etc"
    rules, dashboard = etc / "prometheus" / "dripd.rules.yml", etc / "grafana" / "dripd-dashboard.json"
    used = set(re.findall(r"dripd_[a-z_]+", rules.read_text() + dashboard.read_text()))
    never_moved = {"dripd_retries_total"}  # a labelled counter has no sample until it first moves
    assert used and used <= exported | never_moved, used - exported
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool missing: make deps-debian installs Debian's prometheus"
    for args in (["check", "rules", str(rules)], ["check", "config", str(etc / "prometheus" / "prometheus.yml")]):
        checked = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_missing_tracking_secret_stops_the_start_with_a_clear_error(tmp_path: Path, dripd_process: MakeDripd) -> None:
    extra = {"tracking": {"listen": f"127.0.0.1:{free_port()}", "base_url": BASE,
                          "secret_file": str(tmp_path / "absent")}}
    process = dripd_process(tmp_path, extra=extra)
    with pytest.raises(RuntimeError, match="dripd exited with 78"):  # a config error: systemd stops retrying
        process.start(timeout=10)
    assert "tracking.secret_file: cannot read the tracking secret" in process.log()
