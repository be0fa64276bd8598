"""HTML and script typed into text fields shows as text, on staff and member pages alike: in
Chromium, no injected element reaches the page and no injected script runs.

Every text a union's people type and Ratify shows back is set to markup: the organization's
and the unit's names, members' names, the vote's title and question, and the summary
(Markdown, which may hold raw HTML and links). The page's Content-Security-Policy would
stop an inline script anyway; what is checked here is that none is ever written: no
``<script>`` without a ``src``, no element with an ``on...`` attribute, no ``javascript:``
link, and ``window.__injected`` never set, with the typed text shown literally.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.authz import Role
from ratify.rosters.models import BargainingUnit, Member
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor
from tests.browser.test_staff_flow import sign_in
from tests.conftest import SecretLedger
from tests.factories import make_user
from tests.votes.support import make_union, ready_vote
from tests.votes.test_casting import link_of, open_vote, voter

pytestmark = [pytest.mark.browser]

SCRIPT = "<script>window.__injected=1</script>"
IMAGE = '"><img src=x onerror="window.__injected=2">'
PAYLOAD = f"{SCRIPT}{IMAGE}&"  # 80 characters: it fits a name (100 at most)
SUMMARY = (
    f'## Wages {SCRIPT}\n\n- 4% a year {IMAGE}\n\n<iframe src="javascript:alert(1)"></iframe>\n\n'
    '[the full text](javascript:window.__injected=3) and <b onclick="window.__injected=4">b</b>'
)


def injected(page: Page) -> list[str]:
    """What of the payloads became part of the page instead of its text."""
    return page.evaluate(
        """() => [
            ...[...document.querySelectorAll('script:not([src])')].map(e => 'inline script'),
            ...[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
                .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
            ...[...document.querySelectorAll('[href^="javascript:"], [src^="javascript:"]')]
                .map(e => e.tagName + ' javascript:'),
            ...[...document.querySelectorAll('iframe, img[src="x"]')].map(e => e.tagName),
            ...(window.__injected ? ['ran: ' + window.__injected] : []),
        ]"""
    )


def test_markup_typed_anywhere_shows_as_text_and_never_runs(
    page: Page,
    live_server: str,
    live_sessions: sessionmaker[Session],
    live_settings,
    secret_ledger: SecretLedger,
) -> None:  # type: ignore[no-untyped-def]
    with live_sessions() as s, s.begin():
        u = make_union(s)
        u.org.name = f"Local 1 {PAYLOAD}"
        for unit in s.scalars(
            select(BargainingUnit).where(BargainingUnit.organization_id == u.org.id)
        ):
            unit.name = f"Nurses {PAYLOAD}"
        for member in s.scalars(select(Member).where(Member.organization_id == u.org.id)):
            member.last_name = f"Garcia {PAYLOAD}"
        asked = {language: f"Accept? {PAYLOAD}" for language in ("en", "es")}
        draft = ready_vote(s, u, title=f"2027 {PAYLOAD}", question=asked)
        for language in draft.languages:
            votes.save_document(
                s, u.org, draft, actor=u.staff, language=language, summary=SUMMARY, pdf=None
            )
        s.flush()
        draft_id = draft.id
        vote = open_vote(
            s, u, live_settings.secret_key, second_factor=SecondFactor.NONE, title=f"Open {PAYLOAD}"
        )
        admin = make_user(s, u.org, Role.ADMIN)
        slug, email, vote_id = u.org.slug, admin.email, vote.id
        link = link_of(live_settings.secret_key, voter(s, vote, "1001"))
    secret_ledger.add(link.removeprefix("/v/"))

    sign_in(page, live_server, email)
    base = f"{live_server}/o/{slug}"
    pages = [
        f"{base}/",
        f"{base}/units",
        f"{base}/members",
        f"{base}/votes",
        f"{base}/votes/{draft_id}",
        f"{base}/votes/{draft_id}/preview",
        f"{base}/votes/{vote_id}",
        f"{base}/votes/{vote_id}/turnout",
    ]
    for address in pages:
        shown = page.goto(address)
        assert shown is not None and shown.status == 200, address
        assert injected(page) == [], address
    page.goto(f"{base}/votes/{draft_id}/preview")
    expect(page.get_by_text(SCRIPT).first).to_be_visible()  # the typed text, shown as text
    expect(page.get_by_text(f"Accept? {PAYLOAD}").first).to_be_visible()

    member = page.context.browser.new_context()  # type: ignore[union-attr]
    phone = member.new_page()
    phone.goto(f"{live_server}{link}")
    assert injected(phone) == [], "link"
    phone.get_by_role("button").first.click()
    expect(phone).to_have_url(f"{live_server}/v/ballot")
    assert injected(phone) == [], "ballot"
    expect(phone.get_by_text(f"Open {PAYLOAD}").first).to_be_visible()
    member.close()


def test_markup_typed_into_a_communitys_pages_shows_as_text_and_never_runs(
    page: Page, live_server: str, live_sessions: sessionmaker[Session]
) -> None:
    """The same on a community organization's pages: its constituency, people, an event and
    a campaign, each named with markup."""
    from ratify.community import campaigns
    from tests.community.test_events import community, constituency, event_of, person

    with live_sessions() as s, s.begin():
        org = community(s)
        org.name = f"Tenants {PAYLOAD}"
        within = constituency(s, org, f"Elm St {PAYLOAD}")
        person(s, org, "Ana", f"Lopez {PAYLOAD}", within=within)
        event = event_of(s, org, within)
        event.title = f"Meeting {PAYLOAD}"
        admin = make_user(s, org, Role.ADMIN)
        campaign = campaigns.create_campaign(
            s,
            org,
            actor=admin,
            fields=campaigns.CampaignFields(
                name=f"Repairs {PAYLOAD}", description=SUMMARY, constituency_id=str(within.id)
            ),
        )
        slug, email = org.slug, admin.email
        ids = (within.id, event.id, campaign.id)

    sign_in(page, live_server, email)
    base = f"{live_server}/o/{slug}"
    constituency_id, event_id, campaign_id = ids
    for address in (
        f"{base}/",
        f"{base}/constituencies",
        f"{base}/constituencies/{constituency_id}",
        f"{base}/constituencies/{constituency_id}/people",
        f"{base}/events",
        f"{base}/events/{event_id}",
        f"{base}/campaigns",
        f"{base}/campaigns/{campaign_id}",
    ):
        shown = page.goto(address)
        assert shown is not None and shown.status == 200, address
        assert injected(page) == [], address
    expect(page.get_by_text(f"Repairs {PAYLOAD}").first).to_be_visible()
