"""Hardening of the tracking listener and the message itself, on the real daemon (issue 20, items
7 and 8): replayed pixels do not fill the database, contact data cannot put a javascript: link
in a message, encoded header lines stay within RFC 2047's 76 characters, List-Id goes out with
List-Unsubscribe, log_level = "debug" logs at debug, and the public listener does not announce
its server software."""

from __future__ import annotations

import email.policy
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.integration.daemon_process import DripdProcess, free_port, running_dripd
from tests.integration.waiting import wait_until

BASE = "https://t.example.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
HITS = 3000


class Env:
    def __init__(self, process: DripdProcess, port: int) -> None:
        self.process = process
        self.public = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        self.api = process.client()

    def sequence(self, name: str, steps: list[dict[str, Any]], contacts: dict[str, dict[str, str]],
                 **settings: Any) -> int:
        r = self.api.post("/api/sequences", json={"name": name, "mailboxId": "sales", "steps": steps, **settings})
        assert r.status_code == 201, r.text
        sid = int(r.json()["id"])
        for address, fields in contacts.items():
            r = self.api.post(f"/api/sequences/{sid}/enroll", json={"contactEmail": address, "mergeFields": fields})
            assert r.status_code == 201, r.text
        assert self.api.post(f"/api/sequences/{sid}/start").status_code == 200
        return sid

    def message_to(self, address: str, subject_start: str) -> Any:
        def found() -> Any:
            for message in self.process.messages():
                if address in str(message["To"]) and str(message["Subject"]).startswith(subject_start):
                    return message
            return None

        return wait_until(found, timeout=30, what=lambda: f"a message to {address}:\n{self.process.log()[-2000:]}")

    def contact_events(self, sid: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for contact in self.api.get(f"/api/sequences/{sid}/contacts").json()["contacts"]:
            out += self.api.get(f"/api/sequences/{sid}/contacts/{contact['contactId']}").json()["events"]
        return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("tracking-hardening")
    (root / "tracking.key").write_bytes(b"another-secret-for-hardening-tests\n")
    port = free_port()
    extra = {"tracking": {"listen": f"127.0.0.1:{port}", "base_url": BASE, "secret_file": str(root / "tracking.key"),
                          "scanner_seconds": 0}}
    with running_dripd(root, extra=extra, daemon={"log_level": "debug"}) as process:
        e = Env(process, port)
        yield e
        e.public.close()
        e.api.close()


def html_of(message: Any) -> str:
    return str(message.get_body(("html",)).get_content())


def test_3000_gets_of_one_pixel_store_one_row_and_leave_the_funnel_alone(env: Env) -> None:
    sid = env.sequence("Pixel", [{"type": "email", "subject": "Pixel hello", "body": "<p>Hi</p>"}],
                       {"px@example.org": {}, "other@example.org": {}}, trackOpens=True)
    message = env.message_to("px@example.org", "Pixel hello")
    pixel = re.findall(re.escape(BASE) + r"/o/[A-Za-z0-9_.-]+", html_of(message))[0][len(BASE):]

    def fetch_many(count: int) -> list[tuple[int, bytes]]:
        with httpx.Client(base_url=str(env.public.base_url), timeout=10) as client:
            return [(r.status_code, r.content[:6]) for r in
                    (client.get(pixel, headers={"User-Agent": BROWSER}) for _ in range(count))]

    # Four keep-alive clients at once, as a replaying proxy would (and a quicker test).
    with ThreadPoolExecutor(4) as pool:
        answers = [a for batch in pool.map(fetch_many, [HITS // 4] * 4) for a in batch]
    assert answers == [(200, b"GIF89a")] * HITS  # every visitor is still answered
    # A prefetcher's hit has another flag: it is stored too, and does not hide the person's open.
    assert env.public.get(pixel, headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    opens = [e for e in env.contact_events(sid) if e["kind"] == "opened"]
    assert [(e["flagged"], e["data"].get("flag")) for e in opens] == [
        (False, None), (True, "Apple Mail Privacy Protection prefetch")]
    step = env.api.get(f"/api/sequences/{sid}/stats").json()["steps"][0]
    assert (step["sent"], step["opened"], step["flaggedOpens"]) == (2, 1, 0)
    assert "not stored (repeat within the window" in env.process.log()


def test_one_token_writes_at_most_max_hits_per_message(env: Env) -> None:
    sid = env.sequence("Links", [{"type": "email", "subject": "Links hello", "body": "".join(
        f'<a href="https://example.org/{n}">{n}</a> ' for n in range(120))}], {"links@example.org": {}},
        trackClicks=True)
    message = env.message_to("links@example.org", "Links hello")
    clicks = re.findall(re.escape(BASE) + r"/c/[A-Za-z0-9_.-]+", html_of(message))
    assert len(clicks) == 120
    for url in clicks:
        assert env.public.get(url[len(BASE):], headers={"User-Agent": BROWSER}).status_code == 302
    stored = [e for e in env.contact_events(sid) if e["kind"] == "clicked"]
    assert len(stored) == 100  # tracking.max_hits_per_message's default
    assert env.api.get(f"/api/sequences/{sid}/stats").json()["steps"][0]["clicked"] == 1


def test_contact_data_cannot_make_a_javascript_link(env: Env) -> None:
    body = ('<p><a href="{{website}}">site</a> <a href="{{blog}}">blog</a> '
            '<a href="https://example.org/?ref={{website}}">ref</a></p>')
    env.sequence("Links from data", [{"type": "email", "subject": "Data links", "body": body}], {
        "js@example.org": {"website": "javascript:alert(document.cookie)", "blog": "https://blog.example.org/x"},
        "tab@example.org": {"website": " jav\tascript:alert(1)", "blog": "data:text/html,<script>x</script>"}})
    for address in ("js@example.org", "tab@example.org"):
        html = html_of(env.message_to(address, "Data links"))
        assert 'href="#">site</a>' in html
        assert "javascript:" not in html.split("?ref=")[0] and "data:" not in html
    html = html_of(env.message_to("js@example.org", "Data links"))
    assert 'href="https://blog.example.org/x">blog</a>' in html  # http(s) from data stays


def test_headers_encoded_lines_list_id_and_debug_log(env: Env) -> None:
    subject = "Grüße aus Köln, {{firstName}}: " + "ünïcödé wörds " * 8
    sid = env.sequence("Headers", [{"type": "email", "subject": subject, "body": "<p>Hallo</p>"}],
                       {"koeln@example.org": {"firstName": "Jürgen-Maximilian Müller-Lüdenscheidt"}})
    message = env.message_to("koeln@example.org", "Grüße")
    raw = next(p for p in (env.process.maildir() / "new").iterdir()
               if b"koeln@example.org" in p.read_bytes()).read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    encoded = [line for line in head.split("\r\n") if "=?" in line]
    assert encoded and max(map(len, encoded)) <= 76, encoded
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]).startswith("Grüße aus Köln, Jürgen-Maximilian")
    assert message["List-Unsubscribe"] and message["List-Id"] == f"<s{sid}.example.com>"
    assert re.search(r" DEBUG dripd\.engine: enrollment \d+ step \d+: mailbox sales transport answered accepted",
                     env.process.log())


def test_list_id_only_where_list_unsubscribe_goes_out(env: Env) -> None:
    env.sequence("One to one", [{"type": "email", "subject": "Personal note", "body": "<p>Hi</p>"}],
                 {"solo@example.org": {}}, listUnsubscribe=False)
    message = env.message_to("solo@example.org", "Personal note")
    assert message["List-Unsubscribe"] is None and message["List-Id"] is None


def test_the_public_listener_does_not_announce_its_server(env: Env) -> None:
    for path in ("/healthz", "/o/forged.token", "/nothing"):
        response = env.public.get(path)
        assert "server" not in response.headers, (path, response.headers)
