"""Lists in the console, over the real daemon: create one from pasted addresses, add and remove
members, enroll it into a sequence from the Enroll tab, delete it (its contacts stay)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.integration.console_browser import TOKEN, api_table
from tests.integration.daemon_process import MakeDripd, free_port


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def test_a_list_made_in_the_console_is_enrolled_from_the_enroll_tab(tmp_path: Path, dripd_process: MakeDripd) -> None:
    port = free_port()
    process = dripd_process(tmp_path, api=api_table(port))
    process.start()
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        login = client.get("/app/login")
        client.post("/app/login", data={"csrf": csrf_of(login.text), "token": TOKEN})
        csrf = csrf_of(client.get("/app/lists").text)
        bad = client.post("/app/lists", data={"csrf": csrf, "name": "Leads", "emails": "ada@example.org\nnot-an-address"})
        assert bad.status_code == 422 and "emails[1]" in bad.text  # the API's field, shown on the form
        made = client.post("/app/lists", data={"csrf": csrf, "name": "Leads",
                                               "emails": "ada@example.org\ngrace@example.org, linus@example.org"})
        assert made.status_code == 303
        list_path = made.headers["location"]
        page = client.get(list_path).text
        assert "3 members" in page and "grace@example.org" in page
        contact_id = re.search(r'/members/(\d+)/remove', page)
        assert contact_id is not None
        assert client.post(f"{list_path}/members/{contact_id.group(1)}/remove", data={"csrf": csrf}).status_code == 303
        assert "2 members" in client.get(list_path).text

        with process.client() as api:
            sequence_id = api.post("/api/sequences", json={"name": "From a list", "mailboxId": "sales", "steps": [
                {"type": "email", "subject": "Hi", "body": "hello"}]}).json()["id"]
        list_id = list_path.rsplit("/", 1)[1]
        enroll_page = client.get(f"/app/sequences/{sequence_id}/enroll").text
        assert f'<option value="{list_id}">Leads (2)</option>' in enroll_page
        enrolled = client.post(f"/app/sequences/{sequence_id}/enroll-list", data={"csrf": csrf, "listId": list_id})
        assert enrolled.status_code == 200 and "2 enrolled of 2 rows." in enrolled.text
        assert client.post(f"{list_path}/delete", data={"csrf": csrf}).status_code == 303
        with process.client() as api:
            assert api.get("/api/lists").json()["lists"] == []
            assert len(api.get(f"/api/sequences/{sequence_id}/contacts").json()["contacts"]) == 2
    finally:
        assert process.stop() == 0
