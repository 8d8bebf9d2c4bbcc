"""The Content-Security-Policy as a real browser applies it: headless Chromium loads
/docs and a hosted form page from a real uvicorn server; both work, and the browser
reports no CSP violation."""

from __future__ import annotations

from typing import Any

from tests.capture.test_browser import _browser, company, pytestmark, server

__all__ = ["company", "pytestmark", "server"]  # fixtures and skip condition, reused


def _violations(browser: Any) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry.get("source") == "security" or "Content Security Policy" in entry["message"]
    ]


def test_swagger_ui_runs_under_the_docs_policy(server: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser(javascript=True)
    try:
        browser.get(f"{server}/docs")
        wait = WebDriverWait(browser, 20)
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
        assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("leadflow")
        assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) > 50
        # Open an operation and its "Try it out" form: more of the UI renders.
        browser.find_elements(By.CSS_SELECTOR, ".opblock-summary")[0].click()
        wait.until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".try-out__btn"))
        ).click()
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".execute")))
        assert _violations(browser) == []
    finally:
        browser.quit()


def test_the_hosted_form_renders_styled_under_its_policy(
    server: str, company: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By

    browser = _browser(javascript=True)
    try:
        browser.get(f"{server}/f/{company['form_id']}")
        button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
        # The inline stylesheet applied: the accent background of the button.
        assert button.value_of_css_property("background-color") == "rgba(31, 95, 191, 1)"
        assert _violations(browser) == []
    finally:
        browser.quit()
