"""A staff member's whole visit in a real browser, at a phone's width: sign in, choose an
organization, switch to another, sign out everywhere. Once with JavaScript (and axe checking
every page), once without (the app needs none), plus the wrong-password page."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from ratify.authz import Role
from ratify.rosters.services import UnitFields, create_unit
from tests.conftest import SecretLedger
from tests.factories import PASSWORD, add_role, make_org, make_user

pytestmark = [pytest.mark.browser]

NewContext = Callable[..., BrowserContext]  # pytest-playwright's `new_context` fixture

PHONE_WIDTH = 390
SCREENSHOT = "/tmp/ratify-phone.png"  # noqa: S108 (a fixed path people look at by hand)


@dataclass(frozen=True)
class Staff:
    email: str
    slug_a: str
    name_a: str
    slug_b: str
    name_b: str


@pytest.fixture
def staff(live_sessions: sessionmaker[Session]) -> Staff:
    """An admin of organization A who is also an admin of organization B."""
    with live_sessions() as s, s.begin():
        org_a = make_org(s)
        org_b = make_org(s)
        user = make_user(s, org_a, Role.ADMIN)
        add_role(s, user, org_b, Role.ADMIN)
        create_unit(
            s,
            org_a,
            actor=None,
            fields=UnitFields(code="RN", name="Registered Nurses", employer="", description=""),
        )
        return Staff(user.email, org_a.slug, org_a.name, org_b.slug, org_b.name)


# -- checks run on every page --------------------------------------------------------------


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{page.url} scrolls sideways: {width}px wide at {PHONE_WIDTH}px"


def accessible(page: Page) -> None:
    """axe-core finds nothing. Only ever call this with JavaScript on: axe hangs without it."""
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def check_page(page: Page, *, axe: bool) -> None:
    no_sideways_scroll(page)
    if axe:
        accessible(page)


def staff_table_is_still_a_table(page: Page) -> None:
    """On a phone the staff table is laid out as cards (display: block); Chromium's own
    accessibility tree, which screen readers get, must still call it a table of rows and
    cells."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    roles = [n.get("role", {}).get("value") for n in nodes if not n.get("ignored")]
    assert "table" in roles
    assert roles.count("row") == 2  # the header row and our one admin
    assert roles.count("columnheader") == 3
    assert roles.count("cell") == 3


def record_cookies(page: Page, ledger: SecretLedger) -> None:
    """The session and CSRF cookies this browser holds must never appear in the logs."""
    for cookie in page.context.cookies():
        ledger.add(cookie["value"])
    ledger.requests += 1  # the live server logged this browser's requests


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


# -- the flow, with and without JavaScript -------------------------------------------------


def visit(
    page: Page, phone: BrowserContext, base: str, staff: Staff, ledger: SecretLedger, *, axe: bool
) -> None:
    # Signed in on a second device too, to see "sign out everywhere" reach it.
    other = phone.new_page()
    sign_in(other, base, staff.email)
    expect(heading(other)).to_have_text("Your organizations")
    for cookie in phone.cookies():
        ledger.add(cookie["value"])

    page.goto(f"{base}/login")
    expect(heading(page)).to_have_text("Sign in")
    check_page(page, axe=axe)

    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Two organizations: the chooser, not either of them.
    expect(page).to_have_url(f"{base}/")
    expect(heading(page)).to_have_text("Your organizations")
    record_cookies(page, ledger)
    check_page(page, axe=axe)

    page.get_by_role("link", name=staff.name_a, exact=True).click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_a}/")
    expect(heading(page)).to_have_text(staff.name_a)
    check_page(page, axe=axe)
    if axe:
        page.screenshot(path=SCREENSHOT, full_page=True)

    nav = page.get_by_role("navigation", name="Organization")
    nav.get_by_role("link", name="Staff").click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_a}/staff")
    expect(heading(page)).to_have_text(f"Staff of {staff.name_a}")
    check_page(page, axe=axe)
    staff_table_is_still_a_table(page)

    nav.get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_a}/audit")
    expect(heading(page)).to_have_text("Audit log")
    check_page(page, axe=axe)

    nav.get_by_role("link", name="Bargaining units").click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_a}/units")
    expect(page.get_by_text("Registered Nurses")).to_be_visible()
    check_page(page, axe=axe)
    page.get_by_role("link", name="Add a bargaining unit").click()
    page.get_by_label("Short code").fill("tech")
    page.get_by_label("Name").fill("Technical Unit")
    check_page(page, axe=axe)
    page.get_by_role("button", name="Add unit").click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_a}/units")
    expect(page.get_by_text("TECH", exact=True)).to_be_visible()

    nav.get_by_role("link", name="Members").click()
    page.get_by_label("Search by name, member number, email or phone").fill("nobody")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("0 found.")
    check_page(page, axe=axe)

    nav.get_by_role("link", name="Who may vote").click()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Eligible: 0")).to_be_visible()
    check_page(page, axe=axe)

    # The switcher is a plain <details>: it opens and its links work with or without scripts.
    switcher = page.locator("details.switcher")
    target = switcher.get_by_role("link", name=staff.name_b, exact=True)
    expect(target).to_be_hidden()
    switcher.get_by_text("Switch organization").click()
    expect(target).to_be_visible()
    target.click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_b}/")
    expect(heading(page)).to_have_text(staff.name_b)
    expect(page.locator(".current-org")).to_have_text(staff.name_b)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login?signed_out=1")
    expect(heading(page)).to_have_text("Sign in")
    expect(page.get_by_role("status")).to_have_text("You are signed out on every device.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    record_cookies(page, ledger)
    assert "ratify_session" not in {c["name"] for c in page.context.cookies()}
    check_page(page, axe=axe)

    # Signed out: an organization's page sends you to sign in, and back there afterwards.
    page.goto(f"{base}/o/{staff.slug_b}/")
    expect(page).to_have_url(re.compile(re.escape(f"{base}/login?next=/o/{staff.slug_b}/") + "$"))
    expect(heading(page)).to_have_text("Sign in")

    # The other device, whose cookie is still there, is signed out as well.
    other.goto(f"{base}/o/{staff.slug_a}/")
    expect(other).to_have_url(re.compile(re.escape(f"{base}/login?next=/o/{staff.slug_a}/") + "$"))

    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/o/{staff.slug_b}/")
    expect(heading(page)).to_have_text(staff.name_b)
    record_cookies(page, ledger)


def test_staff_flow_on_a_phone(
    page: Page, new_context: NewContext, live_server: str, staff: Staff, secret_ledger: SecretLedger
) -> None:
    visit(page, new_context(), live_server, staff, secret_ledger, axe=True)


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_staff_flow_on_a_phone_without_javascript(
    page: Page, new_context: NewContext, live_server: str, staff: Staff, secret_ledger: SecretLedger
) -> None:
    # The marker really turned scripts off, on top of conftest's phone settings.
    page.set_content('<noscript><p id="off">off</p></noscript>')
    expect(page.locator("#off")).to_be_visible()
    assert page.viewport_size == {"width": PHONE_WIDTH, "height": 844}
    visit(page, new_context(), live_server, staff, secret_ledger, axe=False)


# -- a wrong password ------------------------------------------------------------------------


def test_wrong_password_is_explained_next_to_the_form(
    page: Page, live_server: str, staff: Staff, secret_ledger: SecretLedger
) -> None:
    sign_in(page, live_server, staff.email, "not the password")

    expect(page).to_have_url(f"{live_server}/login")
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("The email or password is not right")
    record_cookies(page, secret_ledger)
    assert "ratify_session" not in {c["name"] for c in page.context.cookies()}

    # Near the form: inside main, right before it, and on the first screen of a phone.
    form = page.locator("main form")
    assert alert.evaluate("(el, form) => el.nextElementSibling === form", form.element_handle())
    alert_box, form_box = alert.bounding_box(), form.bounding_box()
    assert alert_box is not None
    assert form_box is not None
    assert 0 <= form_box["y"] - (alert_box["y"] + alert_box["height"]) <= 40
    assert alert_box["y"] + alert_box["height"] <= 844

    # The form is still whole: labels name their fields, the email is kept, the password not.
    email, password = page.get_by_label("Email"), page.get_by_label("Password")
    expect(email).to_have_value(staff.email)
    expect(password).to_have_value("")
    expect(password).to_have_attribute("type", "password")
    password.focus()
    expect(password).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(email).to_be_focused()
    check_page(page, axe=True)

    # And the right password now gets in.
    password.fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Your organizations")
    record_cookies(page, secret_ledger)
