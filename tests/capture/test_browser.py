"""End to end: a person fills the hosted form in headless Chromium (JavaScript disabled),
against a real uvicorn server on the test database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.capture.helpers import SERVER_KEY
from tests.factories import API, OPERATOR, OPERATOR_TOKEN

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MIN_FILL_SECONDS = 2.0

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver "
    "(apt-get install -y chromium chromium-driver)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    """uvicorn serving the app on the (already migrated) test database; real commits."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LEADFLOW_ADMIN_TOKEN": OPERATOR_TOKEN,
        "LEADFLOW_SECRET_KEY": SERVER_KEY,
        "LEADFLOW_FORM_PAGE_MIN_FILL_SECONDS": str(MIN_FILL_SECONDS),
        "LEADFLOW_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "uvicorn",
                "leadflow.main:app_factory",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    pytest.fail(f"the server did not start:\n{output}")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def company(server: str) -> dict[str, Any]:
    """A fresh company (committed) with one lead form."""
    with httpx.Client(base_url=server, timeout=10) as http:
        created = http.post(
            f"{API}/companies",
            json={"name": "Browser Co", "admin_email": f"admin-{uuid.uuid4().hex[:8]}@example.com"},
            headers=OPERATOR,
        )
        assert created.status_code == 201, created.text
        headers = {"Authorization": f"Bearer {created.json()['api_token']}"}
        form = http.post(f"{API}/forms", json={"name": "Talk to sales"}, headers=headers)
        assert form.status_code == 201, form.text
    return {"headers": headers, "form_id": form.json()["id"]}


def _browser(javascript: bool) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tempfile.mkdtemp(prefix='leadflow-chromium-')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console, CSP reports
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _inbox(server: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server, timeout=10) as http:
        response = http.get(f"{API}/leads", headers=headers)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


def test_a_person_fills_the_hosted_form_and_the_lead_is_in_the_inbox(
    server: str, company: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser(javascript=False)
    try:
        browser.get(f"{server}/f/{company['form_id']}")
        shown = time.monotonic()
        assert browser.find_element(By.TAG_NAME, "h1").text == "Talk to sales"
        for label, value in (
            ("Name", "Ana Browser"),
            ("Email", "ana.browser@example.com"),
            ("Organization", "Pipes and More"),
            ("Message", "Please call me on Monday."),
        ):
            field_id = browser.find_element(
                By.XPATH, f"//label[starts-with(normalize-space(.), '{label}')]"
            ).get_attribute("for")
            browser.find_element(By.ID, field_id).send_keys(value)
        time.sleep(max(0.0, MIN_FILL_SECONDS + 0.5 - (time.monotonic() - shown)))
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 10).until(expected_conditions.url_contains("/thanks"))
        assert browser.find_element(By.TAG_NAME, "h1").text == "Thank you"
        Path(tempfile.gettempdir(), "leadflow-hosted-form-thanks.png").write_bytes(
            browser.get_screenshot_as_png()
        )
    finally:
        browser.quit()

    leads = [lead for lead in _inbox(server, company["headers"]) if lead["source"] == "web_form"]
    assert len(leads) == 1
    assert leads[0]["prospect"]["person_name"] == "Ana Browser"
    assert leads[0]["prospect"]["email"] == "ana.browser@example.com"
    assert leads[0]["title"] == "Ana Browser lead"


def test_a_bot_filling_the_honeypot_sees_thanks_and_creates_nothing(
    server: str, company: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    before = len(_inbox(server, company["headers"]))
    browser = _browser(javascript=True)  # a bot scripting the page fills every field
    try:
        browser.get(f"{server}/f/{company['form_id']}")
        browser.find_element(By.NAME, "name").send_keys("Spam Bot")
        browser.find_element(By.NAME, "email").send_keys("bot@example.com")
        browser.execute_script(
            "document.querySelector('input[name=website]').value = 'http://spam.example';"
        )
        time.sleep(MIN_FILL_SECONDS + 0.5)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 10).until(expected_conditions.url_contains("/thanks"))
        assert browser.find_element(By.TAG_NAME, "h1").text == "Thank you"
    finally:
        browser.quit()

    assert len(_inbox(server, company["headers"])) == before
