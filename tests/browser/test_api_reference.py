"""The API reference page in Chromium: readable and without axe violations."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_staff_flow import accessible

pytestmark = [pytest.mark.browser]


def test_the_api_reference_page_passes_axe(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/api/v1/reference")
    expect(page.get_by_role("heading", name="API reference", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="GET /api/v1/orgs/{slug}/members")).to_be_visible()
    accessible(page)
