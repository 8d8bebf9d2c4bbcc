"""UTM attribution through the hosted form in headless Chromium (JavaScript off, as a
visitor with scripts disabled): the page opened from a campaign link carries the link's
`utm_*` into the lead it creates."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.capture.test_browser import MIN_FILL_SECONDS, _browser, company, pytestmark, server
from tests.factories import API

__all__ = ["company", "pytestmark", "server"]  # fixtures and skip condition, reused


def test_a_campaign_link_s_utm_reach_the_lead(server: str, company: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser(javascript=False)
    try:
        browser.get(f"{server}/f/{company['form_id']}?utm_source=news&utm_campaign=x")
        shown = time.monotonic()
        browser.find_element(By.NAME, "name").send_keys("Ana Campaign")
        browser.find_element(By.NAME, "email").send_keys("ana.campaign@example.com")
        time.sleep(max(0.0, MIN_FILL_SECONDS + 0.5 - (time.monotonic() - shown)))
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 10).until(expected_conditions.url_contains("/thanks"))
    finally:
        browser.quit()

    with httpx.Client(base_url=server, timeout=10) as http:
        response = http.get(
            f"{API}/leads", params={"utm_source": "news"}, headers=company["headers"]
        )
    assert response.status_code == 200, response.text
    leads = response.json()["data"]
    assert [lead["prospect"]["email"] for lead in leads] == ["ana.campaign@example.com"]
    assert leads[0]["utm_campaign"] == "x"
    assert leads[0]["utm_medium"] is None
