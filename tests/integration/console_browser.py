"""A real headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, and a
dripd process with its TCP listener and an API token, for the console tests."""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

TOKEN = "console-test-token-3f9a"  # a test secret: the daemon keeps only its digest
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def api_table(port: int) -> dict[str, object]:
    return {"listen": f"127.0.0.1:{port}", "tokens": [f"sha256:{hashlib.sha256(TOKEN.encode()).hexdigest()}"]}


@contextmanager
def browser() -> Iterator[webdriver.Chrome]:
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1100", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where the run's screenshots go: ``DRIPD_SCREENSHOTS`` (docs/console/ when refreshing the
    docs' pictures) or the test's temp directory."""
    where = Path(os.environ.get("DRIPD_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def flash(driver: WebDriver) -> str:
    """The page's notices; empty while the browser is between two pages. A notice read while the
    next page replaces the document is stale: Selenium's StaleElementReferenceException, or, from
    newer Chromium, an inspector error saying the node "does not belong to the document"."""
    try:
        return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".flash"))
    except StaleElementReferenceException:
        return ""
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return ""
        raise
