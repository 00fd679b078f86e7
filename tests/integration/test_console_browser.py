"""The seed's getting-started flow in a real browser against the real daemon: log in, create a
sequence, add email/wait/email steps, enroll three contacts by CSV, preview, start, see the
sends in the metrics tab, pause and resume. Waits are bounded; nothing is timed."""

from __future__ import annotations

from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.console_browser import flash, TOKEN, api_table, browser, screenshot_dir
from tests.integration.daemon_process import MakeDripd, free_port

WAIT = 30  # seconds: a hang guard, not a speed check


def wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def add_step(driver: WebDriver, kind: str, **fields: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"#add-step ~ form input[name=type][value={kind}]").click()
    for name, value in fields.items():
        element = driver.find_element(By.CSS_SELECTOR, f"#add-step ~ form [name={name}]")
        if element.tag_name == "select":
            Select(element).select_by_visible_text(value)
        else:
            element.clear()
            element.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "#add-step ~ form button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(lambda d: "Step added." in flash(d))


def click_action(driver: WebDriver, label: str) -> None:
    driver.find_element(By.XPATH, f"//div[@class='actions']//button[normalize-space()='{label}']").click()


def test_getting_started_in_the_browser(tmp_path: Path, dripd_process: MakeDripd) -> None:
    port = free_port()
    process = dripd_process(tmp_path, api=api_table(port))
    process.start()
    shots = screenshot_dir(tmp_path)
    base = f"http://127.0.0.1:{port}"
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("email,firstName,company\nada@example.org,Ada,Analytical\n"
                        "grace@example.org,Grace,Navy\nlinus@example.org,Linus,Kernel\n")
    try:
        with browser() as driver:
            driver.get(f"{base}/app/sequences")
            wait_for(driver, "#token")  # not logged in: the login form
            assert "/app/login" in driver.current_url
            driver.save_screenshot(str(shots / "login.png"))
            driver.find_element(By.ID, "token").send_keys(TOKEN)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            wait_for(driver, "#name")
            assert driver.current_url.endswith("/app/sequences")

            driver.find_element(By.ID, "name").send_keys("Onboarding")
            driver.find_element(By.XPATH, "//button[normalize-space()='Create draft']").click()
            WebDriverWait(driver, WAIT).until(lambda d: "Created the draft" in flash(d))
            sequence_url = driver.current_url
            add_step(driver, "email", subject="Welcome {{firstName}}", body="<p>Hi {{firstName|there}}, welcome aboard.</p>")
            add_step(driver, "wait", wait="2", unit="days")
            add_step(driver, "email", subject="", body="<p>Checking in on {{company}}.</p>")
            rows = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
            assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["email", "wait", "email"]
            assert "wait 2 days" in rows[1].text and "Re: the first subject" in rows[2].text
            driver.save_screenshot(str(shots / "steps.png"))

            driver.find_element(By.LINK_TEXT, "Enroll").click()
            wait_for(driver, "#file")
            driver.find_element(By.ID, "file").send_keys(str(csv_file))
            driver.find_element(By.XPATH, "//button[normalize-space()='Enroll']").click()
            WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "enroll-summary"))
            assert driver.find_element(By.ID, "enroll-summary").text == "3 enrolled of 3 rows."
            driver.save_screenshot(str(shots / "enroll.png"))

            driver.get(f"{sequence_url}/preview?contact=grace%40example.org&step=0")
            wait_for(driver, "#preview-subject")
            assert driver.find_element(By.ID, "preview-subject").text == "Welcome Grace"
            assert "Hi Grace, welcome aboard." in driver.find_element(By.ID, "preview-text").text
            driver.save_screenshot(str(shots / "preview.png"))

            click_action(driver, "Start")
            WebDriverWait(driver, WAIT).until(lambda d: "Started." in flash(d))
            assert driver.find_element(By.CSS_SELECTOR, ".seqhead .status").text == "active"
            process.wait_for_messages(3)

            def sent_in_metrics(d: WebDriver) -> bool:
                d.get(f"{sequence_url}/metrics")
                try:
                    cells = d.find_elements(By.CSS_SELECTOR, "section.funnel tr[data-stage=sent] td.count")
                    return bool(cells) and cells[0].text == "3"
                except StaleElementReferenceException:
                    return False

            WebDriverWait(driver, WAIT, poll_frequency=0.2).until(sent_in_metrics)
            driver.save_screenshot(str(shots / "metrics.png"))

            driver.find_element(By.LINK_TEXT, "Drill down: each contact's log").click()
            driver.find_element(By.LINK_TEXT, "ada@example.org").click()
            wait_for(driver, "caption")
            assert "Welcome Ada" in driver.page_source
            driver.save_screenshot(str(shots / "contact-log.png"))

            click_action(driver, "Pause")
            WebDriverWait(driver, WAIT).until(lambda d: "Paused." in flash(d))
            assert driver.find_element(By.CSS_SELECTOR, ".seqhead .status").text == "paused"
            click_action(driver, "Resume")
            WebDriverWait(driver, WAIT).until(lambda d: "Resumed." in flash(d))
            assert driver.find_element(By.CSS_SELECTOR, ".seqhead .status").text == "active"

            driver.get(f"{base}/app/mailboxes")
            wait_for(driver, "dl.facts")
            assert "3 of" in driver.find_element(By.CSS_SELECTOR, "dl.facts").text  # sends today
            driver.save_screenshot(str(shots / "mailboxes.png"))
            driver.get(f"{base}/app/sequences")
            assert "Onboarding" in driver.find_element(By.CSS_SELECTOR, "table tbody").text
            driver.save_screenshot(str(shots / "sequences.png"))
            driver.get(f"{base}/app/contacts?q=example.org")
            assert len(driver.find_elements(By.CSS_SELECTOR, "table tbody tr")) == 3
            driver.get(f"{base}/app/suppressions")
            wait_for(driver, "#v-email")
        subjects = sorted(str(m["Subject"]) for m in process.messages())
        assert subjects == ["Welcome Ada", "Welcome Grace", "Welcome Linus"]
    finally:
        assert process.stop() == 0
