"""A/B variants and the reply inbox in the console, in a real browser against the real daemon:
variants edited in the step form land in the API and preview per variant; after real sends the
metrics tab shows a row per variant; a reply delivered into the real Dovecot and seen by the
real IMAP detector is listed in the inbox, shown as text (its ``<script>`` too), relabelled and
answered. One daemon and one browser for the module; every wait is bounded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.console_browser import flash, TOKEN, api_table, browser, screenshot_dir
from tests.integration.daemon_process import DripdProcess, fast_mailbox, free_port, running_dripd
from tests.integration.servers import Dovecot
from tests.integration.waiting import wait_until

WAIT = 30  # seconds: a hang guard, not a speed check
HOSTILE = "<script>document.title='pwned'</script>"


class Console(NamedTuple):
    process: DripdProcess
    base: str
    driver: WebDriver
    imap: Dovecot
    user: str
    shots: Path


@pytest.fixture(scope="module")
def console(imap_server: Dovecot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console_outreach")
    user = imap_server.new_user("console")
    box = fast_mailbox(root, address=user, imap=imap_server.imap_table(user, idle_seconds=600))
    port = free_port()
    with running_dripd(root, mailboxes=[box], api=api_table(port)) as process, browser() as driver:
        base = f"http://127.0.0.1:{port}"
        driver.get(f"{base}/app/login")
        wait_for(driver, "#token")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for(driver, "nav[aria-label=Main]")
        yield Console(process, base, driver, imap_server, user, screenshot_dir(root))


def wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def submit_and_see(driver: WebDriver, button_xpath: str, notice: str) -> None:
    driver.find_element(By.XPATH, button_xpath).click()
    WebDriverWait(driver, WAIT).until(lambda d: notice in flash(d), f"the notice {notice!r}")


def fill(driver: WebDriver, **fields: str) -> None:
    for element_id, value in fields.items():
        element = driver.find_element(By.ID, element_id.replace("_", "-"))
        element.clear()
        element.send_keys(value)


def api(process: DripdProcess) -> httpx.Client:
    return process.client()


def test_variants_are_edited_in_the_step_form_and_previewed_per_variant(console: Console) -> None:
    driver, base = console.driver, console.base
    with api(console.process) as client:
        sequence_id = client.post("/api/sequences", json={"name": "Variants", "mailboxId": "sales", "steps": [
            {"type": "email", "subject": "Quick question", "body": "<p>Hi {{firstName|there}}</p>"},
            {"type": "wait", "waitDays": 2}]}).json()["id"]
        assert client.post(f"/api/sequences/{sequence_id}/enroll", json={
            "contactEmail": "ada@example.org", "mergeFields": {"firstName": "Ada"}}).status_code == 201
    edit = f"{base}/app/sequences/{sequence_id}/steps/0"
    driver.get(edit)
    wait_for(driver, "details.variants")
    driver.find_element(By.CSS_SELECTOR, "details.variants > summary").click()
    fill(driver, variant_0_name="A", variant_1_name="B", variant_1_weight="2",
         variant_1_subject="Worth a chat, {{firstName|there}}?", autoWinnerAfter="50")
    Select(driver.find_element(By.ID, "autoWinnerMetric")).select_by_visible_text("opened")
    submit_and_see(driver, "//button[normalize-space()='Save step']", "Step 1 saved.")
    assert "A/B: A, B" in driver.find_element(By.CSS_SELECTOR, "table tbody").text
    with api(console.process) as client:
        step = client.get(f"/api/sequences/{sequence_id}").json()["steps"][0]
    assert step["variants"] == [{"name": "A", "weight": 1},
                                {"name": "B", "weight": 2, "subject": "Worth a chat, {{firstName|there}}?"}]
    assert step["autoWinner"] == {"after": 50, "metric": "opened"}
    driver.get(edit)
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.CSS_SELECTOR, "details.variants"))
    driver.save_screenshot(str(console.shots / "variants.png"))

    # A bad third variant: the API's rule, naming the variant's field, and what was typed stays.
    driver.get(edit)
    wait_for(driver, "details.variants[open]")
    fill(driver, variant_2_name="no spaces allowed", variant_2_body="<p>Third</p>")
    driver.find_element(By.XPATH, "//button[normalize-space()='Save step']").click()
    wait_for(driver, "p.error")
    assert "variants[2].name" in driver.find_element(By.CSS_SELECTOR, "p.error").text
    assert driver.find_element(By.ID, "variant-2-name").get_attribute("value") == "no spaces allowed"
    fill(driver, variant_2_name="C")
    submit_and_see(driver, "//button[normalize-space()='Save step']", "Step 1 saved.")
    assert "A/B: A, B, C" in driver.find_element(By.CSS_SELECTOR, "table tbody").text

    # Remove C again, and the auto-winner rule with it.
    driver.get(edit)
    wait_for(driver, "details.variants[open]")
    driver.find_element(By.NAME, "variant-2-remove").click()
    driver.find_element(By.ID, "autoWinnerAfter").clear()
    submit_and_see(driver, "//button[normalize-space()='Save step']", "Step 1 saved.")
    with api(console.process) as client:
        step = client.get(f"/api/sequences/{sequence_id}").json()["steps"][0]
    assert [v["name"] for v in step["variants"]] == ["A", "B"] and "autoWinner" not in step

    # Preview any variant for any contact.
    preview = f"{base}/app/sequences/{sequence_id}/preview?contact=ada%40example.org&step=0"
    driver.get(f"{preview}&variant=B")
    wait_for(driver, "#preview-subject")
    assert driver.find_element(By.ID, "preview-subject").text == "Worth a chat, Ada?"
    assert driver.find_element(By.ID, "preview-variant").text.startswith("Variant: B")
    driver.save_screenshot(str(console.shots / "preview-variant.png"))
    driver.find_element(By.CSS_SELECTOR, "#preview-variant a[href$='variant=A']").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.current_url.endswith("variant=A"))
    assert driver.find_element(By.ID, "preview-subject").text == "Quick question"
    driver.get(f"{preview}&variant=Z")
    wait_for(driver, "p.error")
    assert "variant" in driver.find_element(By.CSS_SELECTOR, "p.error").text and "A, B" in driver.page_source


def reply_to(sent: Any, user: str, text: str) -> bytes:
    sender = str(sent["To"])
    return (f"From: Grace Hopper <{sender}>\r\nTo: {user}\r\nSubject: Re: {sent['Subject']}\r\n"
            "Date: Thu, 3 Dec 2026 10:15:00 +0000\r\nMessage-ID: <reply-console-1@navy.example>\r\n"
            f"In-Reply-To: {sent['Message-ID']}\r\nReferences: {sent['Message-ID']}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\nOn Thu, Dec 3, 2026 Sales wrote:\r\n> hello\r\n"
            ).encode()


def variant_cells(driver: WebDriver, metric: str) -> dict[str, int]:
    found = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "table.variant-stats tbody tr"):
        cell = row.find_element(By.CSS_SELECTOR, f"td[data-metric={metric}]")
        found[str(row.get_attribute("data-variant"))] = int(cell.text.split()[0])
    return found


class Replied(NamedTuple):
    sequence_id: int
    reply: dict[str, Any]
    variant: str  # the variant the replier was sent
    sent_before: int  # messages in the Maildir before this sequence's
    people: int


@pytest.fixture(scope="module")
def replied(console: Console) -> Replied:
    """A started A/B sequence, its sends, and one reply through the real Dovecot and detector."""
    process = console.process
    people = ["ada@example.org", "grace@navy.example", "linus@kernel.example", "ken@unix.example"]
    with api(process) as client:
        sequence_id = client.post("/api/sequences", json={
            "name": "Outreach AB", "mailboxId": "sales", "timezone": "UTC", "sendWindowStartHour": 0,
            "sendWindowEndHour": 24, "steps": [
                {"type": "email", "subject": "Subject A", "body": "<p>Hello</p>",
                 "variants": [{"name": "A"}, {"name": "B", "subject": "Subject B"}]},
                {"type": "wait", "waitDays": 3}]}).json()["id"]
        for person in people:
            assert client.post(f"/api/sequences/{sequence_id}/enroll", json={"contactEmail": person}).status_code == 201
        before = len(process.messages())
        assert client.post(f"/api/sequences/{sequence_id}/start").status_code == 200
        sent = process.wait_for_messages(before + len(people))[before:]
        [to_grace] = [m for m in sent if str(m["To"]) == "grace@navy.example"]
        console.imap.deliver(console.user, reply_to(to_grace, console.user,
                                                    f"Sounds interesting {HOSTILE}, please send more information."))

        def listed() -> dict[str, Any] | None:
            page: dict[str, Any] = client.get("/api/replies", params={"sequence": sequence_id}).json()
            return page["replies"][0] if page["total"] else None

        reply = wait_until(listed, timeout=60, what=process.log)
    return Replied(sequence_id, reply, "B" if str(to_grace["Subject"]) == "Subject B" else "A", before, len(people))


def test_per_variant_metrics_and_a_reply_in_the_inbox(console: Console, replied: Replied) -> None:
    driver, base, process = console.driver, console.base, console.process
    sequence_id, reply, graces_variant, before = replied.sequence_id, replied.reply, replied.variant, replied.sent_before
    def metrics_show_the_reply(d: WebDriver) -> bool:
        d.get(f"{base}/app/sequences/{sequence_id}/metrics")
        try:
            return (sum(variant_cells(d, "sent").values()) == replied.people
                    and variant_cells(d, "replied").get(graces_variant) == 1)
        except (StaleElementReferenceException, ValueError):
            return False

    WebDriverWait(driver, WAIT, poll_frequency=0.3).until(metrics_show_the_reply, "a row per variant with the reply")
    assert set(variant_cells(driver, "sent")) == {"A", "B"}
    assert driver.find_elements(By.CSS_SELECTOR, "section.funnel tr[data-stage=sent]")  # the step's funnel stays
    comparisons = driver.find_elements(By.CSS_SELECTOR, "table.comparisons tbody tr")
    if all(variant_cells(driver, "sent").values()):  # both variants sent: compared on each rate, p-value shown
        assert comparisons and "significant at 5 %" in comparisons[0].text
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.CSS_SELECTOR, ".abtest"))
    driver.save_screenshot(str(console.shots / "metrics-variants.png"))

    driver.get(f"{base}/app/sequences/{sequence_id}/contacts/{reply['contactId']}")  # the drill-down names it too
    wait_for(driver, "caption")
    assert graces_variant in driver.find_element(By.CSS_SELECTOR, "table tbody tr").text.split()

    driver.get(f"{base}/app/inbox")
    wait_for(driver, "table.inbox")
    row = driver.find_element(By.CSS_SELECTOR, f"table.inbox tr[data-reply='{reply['id']}']")
    assert "grace@navy.example" in row.text and "interested" in row.text and "unread" in row.text
    assert driver.title != "pwned" and not driver.find_elements(By.CSS_SELECTOR, "main script")
    driver.save_screenshot(str(console.shots / "inbox.png"))
    driver.get(f"{base}/app/inbox?category=not_interested")
    assert not driver.find_elements(By.CSS_SELECTOR, "table.inbox tr[data-reply]")
    driver.get(f"{base}/app/inbox?sequence={sequence_id}&category=interested&state=unread")
    driver.find_element(By.CSS_SELECTOR, f"tr[data-reply='{reply['id']}'] a[href='/app/inbox/{reply['id']}']").click()

    wait_for(driver, "#reply-text")
    assert HOSTILE in driver.find_element(By.ID, "reply-text").text  # shown as text, not run
    assert driver.title != "pwned" and not driver.find_elements(By.CSS_SELECTOR, "main script")
    assert "interested" in driver.find_element(By.ID, "reply-category").text
    Select(driver.find_element(By.ID, "category")).select_by_visible_text("not_interested")
    submit_and_see(driver, "//button[normalize-space()='Relabel']", "Labelled not_interested.")
    history = driver.find_element(By.CSS_SELECTOR, "table.relabels tbody").text
    assert "interested" in history and "not_interested" in history
    fill(driver, answer_text="Happy to: the details follow.")
    submit_and_see(driver, "//button[normalize-space()='Send answer']", "Answer accepted")
    assert "Happy to: the details follow." in driver.find_element(By.CSS_SELECTOR, "article.answer").text
    driver.save_screenshot(str(console.shots / "reply.png"))
    answer = process.wait_for_messages(before + replied.people + 1)[-1]
    assert answer["In-Reply-To"] == "<reply-console-1@navy.example>" and str(answer["To"]) == "grace@navy.example"
    with api(process) as client:
        shown = client.get(f"/api/replies/{reply['id']}").json()
    assert (shown["category"], shown["categoryBy"], shown["unread"]) == ("not_interested", "person", False)


def test_inbox_forms_need_the_csrf_token_and_bad_filters_are_named(console: Console, replied: Replied) -> None:
    client = httpx.Client(base_url=console.base, timeout=30)
    login = client.get("/app/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', login)
    assert csrf is not None
    client.post("/app/login", data={"csrf": csrf.group(1), "token": TOKEN})
    reply_id = replied.reply["id"]
    with api(console.process) as local:
        before = local.get(f"/api/replies/{reply_id}").json()
    for action, data in (("label", {"category": "other"}), ("read", {"read": "false" if not before["unread"] else "true"}),
                         ("answer", {"text": "x"})):
        assert client.post(f"/app/inbox/{reply_id}/{action}", data=data).status_code == 403, action
    with api(console.process) as local:
        after = local.get(f"/api/replies/{reply_id}").json()
    assert after == before  # nothing changed
    bad = client.get("/app/inbox", params={"category": "spam"})
    assert bad.status_code == 422 and "category" in bad.text
    assert client.get("/app/inbox/999999").status_code == 404


def test_a_mailbox_is_paused_and_resumed_from_its_page(console: Console) -> None:
    driver = console.driver
    driver.get(f"{console.base}/app/mailboxes")
    wait_for(driver, "dl.facts")
    submit_and_see(driver, "//button[normalize-space()='Pause sales']", "Mailbox sales paused.")
    assert driver.find_element(By.CSS_SELECTOR, "section.card h2 .status-paused").text == "paused"
    with api(console.process) as client:
        assert client.get("/api/mailboxes/sales").json()["paused"] is True
    submit_and_see(driver, "//button[normalize-space()='Resume sales']", "Mailbox sales resumed.")
    assert not driver.find_elements(By.CSS_SELECTOR, "section.card h2 .status-paused")
    with api(console.process) as client:
        assert client.get("/api/mailboxes/sales").json()["paused"] is False
