"""Staff send an announcement in Chromium at a phone's width: the notices pages, the
compose form, the preview and the progress pass axe and never scroll sideways; the password
reset form too."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from ratify.settings import Settings
from tests.browser.test_staff_flow import (
    PHONE_WIDTH,
    accessible,
    heading,
    no_sideways_scroll,
    sign_in,
)
from tests.conftest import SecretLedger
from tests.notices.support import open_vote_with_contacts, register_credentials

pytestmark = [pytest.mark.browser]


@dataclass(frozen=True)
class Setup:
    staff: str
    notices: str


@pytest.fixture
def open_vote(
    live_sessions: sessionmaker[Session], live_settings: Settings, secret_ledger: SecretLedger
) -> Setup:
    with live_sessions() as db, db.begin():
        u, vote = open_vote_with_contacts(db, live_settings.secret_key)
        register_credentials(secret_ledger, db, live_settings, vote)
        return Setup(u.staff.email, f"/o/{u.org.slug}/votes/{vote.id}/notices")


def checked(page: Page) -> None:
    no_sideways_scroll(page)
    accessible(page)


def test_staff_compose_preview_and_send_a_notice_on_a_phone(
    page: Page, base_url: str, open_vote: Setup
) -> None:
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    sign_in(page, base_url, open_vote.staff)
    page.goto(base_url + open_vote.notices)
    expect(heading(page)).to_contain_text("Notices")
    checked(page)
    page.get_by_role("link", name="New: Reminder to those who have not voted").click()
    expect(page.get_by_label("Text message").first).to_be_visible()
    checked(page)
    page.get_by_label("Name (for staff)").fill("Last call")
    page.get_by_role("button", name="Save as a draft").click()
    expect(heading(page)).to_have_text("Last call")
    expect(page.get_by_text("Who it reaches if sent now")).to_be_visible()
    checked(page)
    page.get_by_label("Member number").fill("1003")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Email to n1003@example.org")).to_be_visible()
    expect(page.get_by_text("Text message to +14155550103")).to_be_visible()
    checked(page)
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_role("heading", name="Progress")).to_be_visible()
    checked(page)
    page.get_by_role("link", name="Back to the notices").click()
    expect(page.get_by_role("link", name="Last call")).to_be_visible()
    checked(page)


def test_the_password_reset_form_on_a_phone(page: Page, base_url: str) -> None:
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    page.goto(base_url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(heading(page)).to_have_text("Reset your password")
    checked(page)
    page.get_by_label("Email").fill("nobody@example.org")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text("on its way")
    checked(page)
