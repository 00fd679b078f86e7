"""The console's gate against the real daemon over TCP: login once with an API token, then a
session cookie (HttpOnly, SameSite=Strict); CSRF tokens on every state change; a strict CSP;
every value escaped (checked in the real browser too); no secret on any page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By

from tests.integration.console_browser import TOKEN, api_table, browser
from tests.integration.daemon_process import DripdProcess, MakeDripd, free_port


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def logged_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/app/login")
    answer = client.post("/app/login", data={"csrf": hidden_csrf(form.text), "token": TOKEN, "next": "/app/sequences"})
    assert answer.status_code == 303 and answer.headers["location"] == "/app/sequences"
    return client


def start(tmp_path: Path, dripd_process: MakeDripd) -> tuple[DripdProcess, str]:
    port = free_port()
    process = dripd_process(tmp_path, api=api_table(port))
    process.start()
    return process, f"http://127.0.0.1:{port}"


def test_login_session_cookie_and_logout(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process, base = start(tmp_path, dripd_process)
    try:
        anonymous = httpx.Client(base_url=base, timeout=30)
        assert anonymous.get("/app/sequences").status_code == 303  # to the login form
        assert anonymous.get("/api/status").status_code == 401  # the API still wants its Bearer token
        form = anonymous.get("/app/login")
        assert "content-security-policy" in form.headers and "'unsafe-inline'" not in form.headers["content-security-policy"]
        wrong = anonymous.post("/app/login", data={"csrf": hidden_csrf(form.text), "token": "not-it"})
        assert wrong.status_code == 401 and "not an accepted API token" in wrong.text
        no_csrf = anonymous.post("/app/login", data={"token": TOKEN})
        assert no_csrf.status_code == 403

        answer = anonymous.post("/app/login", data={"csrf": hidden_csrf(form.text), "token": TOKEN,
                                                    "next": "https://evil.example/"})
        assert answer.headers["location"] == "/app/sequences"  # never an open redirect
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("dripd_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/app" in cookie
        page = anonymous.get("/app/sequences")
        assert page.status_code == 200 and TOKEN not in page.text
        with process.client() as local:  # the same console on the control socket, for a local proxy
            assert local.get("/app/sequences").status_code == 303
            assert local.get("/app/login").status_code == 200
        assert anonymous.post("/app/logout", data={"csrf": hidden_csrf(page.text)}).status_code == 303
        assert anonymous.get("/app/sequences").status_code == 303  # the session is gone
    finally:
        assert process.stop() == 0


def test_every_state_change_needs_the_session_csrf_token(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process, base = start(tmp_path, dripd_process)
    try:
        client = logged_in(base)
        csrf = hidden_csrf(client.get("/app/sequences").text)
        forged = client.post("/app/sequences", data={"name": "forged", "mailboxId": "sales"})
        assert forged.status_code == 403 and "security token" in forged.text
        wrong = client.post("/app/sequences", data={"name": "forged", "mailboxId": "sales", "csrf": "x" * 43})
        assert wrong.status_code == 403
        with process.client() as api:
            assert api.get("/api/sequences").json()["sequences"] == []  # nothing was created
        made = client.post("/app/sequences", data={"name": "real", "mailboxId": "sales", "csrf": csrf})
        assert made.status_code == 303
        sequence_path = made.headers["location"]
        for action in ("start", "pause", "resume", "clone", "complete", "settings", "steps", "enroll"):
            assert client.post(f"{sequence_path}/{action}", data={"confirm": "yes"}).status_code == 403, action
        with process.client() as api:
            listed = api.get("/api/sequences").json()["sequences"]
        assert [(s["name"], s["status"]) for s in listed] == [("real", "draft")]
    finally:
        assert process.stop() == 0


def test_steps_reorder_and_a_refused_order_changes_nothing(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process, base = start(tmp_path, dripd_process)
    try:
        with process.client() as api:
            sequence_id = api.post("/api/sequences", json={"name": "order", "mailboxId": "sales", "steps": [
                {"type": "email", "subject": "one", "body": "1"}, {"type": "wait", "waitDays": 1},
                {"type": "email", "subject": "two", "body": "2"}]}).json()["id"]
        client = logged_in(base)
        page = client.get(f"/app/sequences/{sequence_id}")
        csrf = hidden_csrf(page.text)
        refused = client.post(f"/app/sequences/{sequence_id}/steps/1/move", data={"csrf": csrf, "direction": "up"})
        assert refused.status_code == 303
        shown = client.get(f"/app/sequences/{sequence_id}").text
        assert "Not moved: steps[0].type: the first step must be an email" in shown
        with process.client() as api:
            steps = api.get(f"/api/sequences/{sequence_id}").json()["steps"]
        assert [s.get("subject", s["type"]) for s in steps] == ["one", "wait", "two"]  # unchanged
        moved = client.post(f"/app/sequences/{sequence_id}/steps/1/move", data={"csrf": csrf, "direction": "down"})
        assert moved.status_code == 303
        assert "Step 2 moved down." in client.get(f"/app/sequences/{sequence_id}").text
        with process.client() as api:
            steps = api.get(f"/api/sequences/{sequence_id}").json()["steps"]
        assert [s.get("subject", s["type"]) for s in steps] == ["one", "two", "wait"]
    finally:
        assert process.stop() == 0


def test_values_are_escaped_in_the_browser(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process, base = start(tmp_path, dripd_process)
    hostile = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
    try:
        with process.client() as api:
            sequence_id = api.post("/api/sequences", json={"name": hostile, "mailboxId": "sales", "steps": [
                {"type": "email", "subject": hostile, "body": "<p>hi</p>"}]}).json()["id"]
        with browser() as driver:
            driver.get(f"{base}/app/login")
            driver.find_element(By.ID, "token").send_keys(TOKEN)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            for path in ("/app/sequences", f"/app/sequences/{sequence_id}", f"/app/sequences/{sequence_id}/metrics"):
                driver.get(base + path)
                assert driver.title != "pwned" and not driver.find_elements(By.CSS_SELECTOR, "main img, main script")
                assert hostile in driver.find_element(By.TAG_NAME, "main").text  # shown as text
        raw = logged_in(base).get("/app/sequences").text
        assert "&lt;img src=x" in raw and "<img src=x" not in raw
    finally:
        assert process.stop() == 0
