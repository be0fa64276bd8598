"""Importing a roster through the upload, mapping and preview pages, on a phone and a laptop."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.authz import Role
from ratify.rosters.models import Member
from ratify.rosters.services import UnitFields, create_unit
from tests.browser.test_staff_flow import accessible, record_cookies, sign_in
from tests.conftest import SecretLedger
from tests.factories import make_org, make_user

pytestmark = [pytest.mark.browser]

ROSTER = "Emp ID;Surname;Given Name;Cell\n1001;Muñoz;José;(415) 555-0132\n1002;Okafor;Ben;\n"
VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "laptop": {"viewport": {"width": 1280, "height": 800}},
}


@pytest.mark.parametrize("device", ["phone", "laptop"])
def test_staff_import_a_roster_through_the_pages(
    browser: Browser,
    live_server: str,
    live_sessions: sessionmaker[Session],
    secret_ledger: SecretLedger,
    tmp_path: Path,
    device: str,
) -> None:
    with live_sessions() as s, s.begin():
        org = make_org(s)
        create_unit(s, org, actor=None, fields=UnitFields("RN", "Registered Nurses", "", ""))
        email, slug = make_user(s, org, Role.STAFF).email, org.slug
    roster = tmp_path / "payroll.csv"
    roster.write_bytes(ROSTER.encode("cp1252"))  # a Windows export, semicolons
    context = browser.new_context(**VIEWPORTS[device])  # type: ignore[arg-type]
    page: Page = context.new_page()
    try:
        sign_in(page, live_server, email)
        page.goto(f"{live_server}/o/{slug}/imports")
        accessible(page)
        page.get_by_label("Roster file (CSV or Excel)").set_input_files(str(roster))
        page.get_by_label("Bargaining unit (for a one-unit file)").select_option(
            label="RN · Registered Nurses"
        )
        page.get_by_role("button", name="Upload and check columns").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Check the columns")
        expect(page.get_by_label("Member number")).to_have_value("Emp ID")  # guessed
        page.get_by_label("Phone", exact=True).select_option("Cell")
        accessible(page)
        page.get_by_role("button", name="Preview the changes").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Preview the changes")
        expect(page.get_by_text("New members: 2")).to_be_visible()
        expect(page.get_by_text("Muñoz, José")).to_be_visible()
        accessible(page)
        page.get_by_role("button", name="Apply these changes").click()

        expect(page.get_by_text("The roster was imported.")).to_be_visible()
        expect(page.get_by_text("payroll.csv")).to_be_visible()
        accessible(page)
        record_cookies(page, secret_ledger)
    finally:
        context.close()
    with live_sessions() as s:
        members = {m.member_number: m for m in s.scalars(select(Member))}
    assert sorted(members) == ["1001", "1002"]
    assert members["1001"].last_name == "Muñoz" and members["1001"].phone == "+14155550132"


def test_a_large_roster_is_checked_and_applied_by_the_worker_with_progress_shown(
    browser: Browser,
    live_server: str,
    live_settings,  # type: ignore[no-untyped-def]
    live_sessions: sessionmaker[Session],
    secret_ledger: SecretLedger,
    tmp_path: Path,
) -> None:
    """Past RATIFY_IMPORT_BACKGROUND_ROWS rows the pages hand the file to the worker: a
    progress page (accessible, kept up to date by a small script) until the check is done,
    then the preview, then the same for the apply. The worker runs here, in the test."""
    from ratify.jobs import registry
    from ratify.jobs.worker import Worker

    rows = live_settings.import_background_rows + 1
    with live_sessions() as s, s.begin():
        org = make_org(s)
        create_unit(s, org, actor=None, fields=UnitFields("RN", "Registered Nurses", "", ""))
        email, slug = make_user(s, org, Role.STAFF).email, org.slug
    roster = tmp_path / "big.csv"
    lines = ["Member ID,Last Name,First Name"] + [f"{5000 + i},Nurse{i},Pat" for i in range(rows)]
    roster.write_text("\n".join(lines) + "\n")
    worker = Worker(live_sessions, handlers=registry.handlers(live_settings))
    context = browser.new_context(**VIEWPORTS["phone"])  # type: ignore[arg-type]
    page: Page = context.new_page()
    try:
        sign_in(page, live_server, email)
        page.goto(f"{live_server}/o/{slug}/imports")
        page.get_by_label("Roster file (CSV or Excel)").set_input_files(str(roster))
        page.get_by_label("Bargaining unit (for a one-unit file)").select_option(
            label="RN · Registered Nurses"
        )
        page.get_by_role("button", name="Upload and check columns").click()
        page.get_by_role("button", name="Preview the changes").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Working on big.csv")
        expect(page.get_by_text(f"Checking every row: 0 of {rows:,} done.")).to_be_visible()
        accessible(page)
        assert worker.drain() == 1
        # The page learns by itself that the check is done (no reload, no timed refresh).
        page.get_by_role("link", name="Done: show the result").click(timeout=15_000)
        expect(page.get_by_text(f"New members: {rows:,}")).to_be_visible()
        accessible(page)
        page.get_by_role("button", name="Apply these changes").click()

        expect(page.get_by_text("Applying the changes")).to_be_visible()
        accessible(page)
        assert worker.drain() == 1
        page.get_by_role("link", name="Done: show the result").click(timeout=15_000)
        expect(page.get_by_text("This file was already imported.")).to_be_visible()
        record_cookies(page, secret_ledger)
    finally:
        context.close()
    with live_sessions() as s:
        assert len(s.scalars(select(Member.id)).all()) == rows
