"""The authorization matrix: every route and API operation, walked from the app's route table,
asked by each kind of caller (anonymous, a voter session, an observer, the committee, staff, an
administrator, and an administrator or token of another organization), each answer checked
against what the route declares (DESIGN.md §3).

``EXPECTED`` is every route's declared access, written out: a new route, or a route whose
access changes, fails here until it is added or changed on purpose. Then, for each caller:

- organization pages (a permission): signed out or with only a voter session, to the login
  page (303); another organization's administrator, 404; a role without the permission, 403;
  a role with it, none of those (whatever the view then says of made-up ids or an empty form);
- API operations: no token 401; another organization's token 404; a token whose role lacks
  the permission 403; one that has it, none of those;
- pages for anyone signed in: signed out, to the login page; signed in, past it;
- a voter's pages: without a voter session 401; with one, past that;
- public pages: anyone, past every check.

No answer is a 5xx. Forms carry a valid CSRF token, so that what is checked is who may, not
the form. The same on both databases.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.routing import BaseRoute, Mount, Route

from ratify.api.routing import ApiRoute
from ratify.authz import Access as A
from ratify.authz import Permission as P
from ratify.authz import Role, role_allows
from ratify.security import csrf_token_for
from ratify.votes.models import SecondFactor
from tests.api.support import bearer, make_token
from tests.factories import make_org, make_user
from tests.votes.support import make_union
from tests.votes.test_casting import link_of, open_vote, sign_in, voter

EXPECTED: dict[tuple[str, str], A | P] = {
    ("GET", "/api/v1/openapi.json"): A.PUBLIC,
    ("GET", "/api/v1/reference"): A.PUBLIC,
    ("GET", "/v/receipts"): A.VOTER,
    ("GET", "/v/result"): A.VOTER,
    ("GET", "/results/{slug}/{vote_id}"): A.PUBLIC,
    ("GET", "/v/ballot"): A.VOTER,
    ("POST", "/v/review"): A.VOTER,
    ("POST", "/v/cast"): A.VOTER,
    ("GET", "/v/full-text/{language}"): A.VOTER,
    ("GET", "/v/{credential}"): A.PUBLIC,
    ("POST", "/v/{credential}"): A.PUBLIC,
    ("GET", "/healthz"): A.PUBLIC,
    ("POST", "/language"): A.PUBLIC,
    ("GET", "/login"): A.PUBLIC,
    ("POST", "/login"): A.PUBLIC,
    ("POST", "/logout"): A.SIGNED_IN,
    ("GET", "/password-reset"): A.PUBLIC,
    ("POST", "/password-reset"): A.PUBLIC,
    ("GET", "/set-password/{token}"): A.PUBLIC,
    ("POST", "/set-password/{token}"): A.PUBLIC,
    ("GET", "/account"): A.SIGNED_IN,
    ("POST", "/account/password"): A.SIGNED_IN,
    ("GET", "/o/{slug}/staff"): P.STAFF_MANAGE,
    ("POST", "/o/{slug}/staff"): P.STAFF_MANAGE,
    ("POST", "/o/{slug}/staff/{role_id}/role"): P.STAFF_MANAGE,
    ("POST", "/o/{slug}/staff/{role_id}/remove"): P.STAFF_MANAGE,
    ("POST", "/o/{slug}/staff/{role_id}/link"): P.STAFF_MANAGE,
    ("GET", "/"): A.SIGNED_IN,
    ("GET", "/o/{slug}/"): P.ORG_VIEW,
    ("GET", "/o/{slug}/settings"): P.ORG_SETTINGS,
    ("POST", "/o/{slug}/settings"): P.ORG_SETTINGS,
    ("GET", "/o/{slug}/audit"): P.AUDIT_READ,
    ("GET", "/o/{slug}/units"): P.ORG_VIEW,
    ("GET", "/o/{slug}/units/new"): P.ROSTERS_MANAGE,
    ("POST", "/o/{slug}/units"): P.ROSTERS_MANAGE,
    ("GET", "/o/{slug}/units/{unit_id}"): P.ROSTERS_MANAGE,
    ("POST", "/o/{slug}/units/{unit_id}"): P.ROSTERS_MANAGE,
    ("POST", "/o/{slug}/units/{unit_id}/archive"): P.ROSTERS_MANAGE,
    ("POST", "/o/{slug}/units/{unit_id}/restore"): P.ROSTERS_MANAGE,
    ("GET", "/o/{slug}/members"): P.MEMBERS_READ,
    ("POST", "/o/{slug}/members/{member_id}/dues"): P.DUES_MANAGE,
    ("GET", "/o/{slug}/members/{member_id}"): P.MEMBERS_READ,
    ("GET", "/o/{slug}/imports"): P.ROSTER_IMPORT,
    ("POST", "/o/{slug}/imports"): P.ROSTER_IMPORT,
    ("GET", "/o/{slug}/imports/{upload_id}/map"): P.ROSTER_IMPORT,
    ("POST", "/o/{slug}/imports/{upload_id}/map"): P.ROSTER_IMPORT,
    ("GET", "/o/{slug}/imports/{upload_id}"): P.ROSTER_IMPORT,
    ("POST", "/o/{slug}/imports/{upload_id}/apply"): P.ROSTER_IMPORT,
    ("GET", "/o/{slug}/imports/{upload_id}/errors.csv"): P.ROSTER_IMPORT,
    ("GET", "/o/{slug}/eligibility"): P.ELIGIBILITY_PREVIEW,
    ("GET", "/o/{slug}/eligibility.csv"): P.ELIGIBILITY_PREVIEW,
    ("GET", "/o/{slug}/votes"): P.TURNOUT_READ,
    ("GET", "/o/{slug}/votes/new"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes"): P.VOTE_SETUP,
    ("GET", "/o/{slug}/votes/{vote_id}"): P.TURNOUT_READ,
    ("GET", "/o/{slug}/votes/{vote_id}/edit"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/edit"): P.VOTE_SETUP,
    ("GET", "/o/{slug}/votes/{vote_id}/documents"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/documents/{language}"): P.VOTE_SETUP,
    ("GET", "/o/{slug}/votes/{vote_id}/documents/{language}/agreement.pdf"): P.TURNOUT_READ,
    ("GET", "/o/{slug}/votes/{vote_id}/preview"): P.TURNOUT_READ,
    ("POST", "/o/{slug}/votes/{vote_id}/schedule"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/unschedule"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/extend"): P.VOTE_EXTEND,
    ("GET", "/o/{slug}/votes/{vote_id}/voters"): P.VOTER_LIST_REVIEW,
    ("POST", "/o/{slug}/votes/{vote_id}/voters/exclude"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/voters/challenge"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/second-factor"): P.VOTE_SETUP,
    ("GET", "/o/{slug}/votes/{vote_id}/turnout"): P.TURNOUT_READ,
    ("GET", "/o/{slug}/votes/{vote_id}/links"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/links/show"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/links/reissue"): P.VOTE_SETUP,
    ("POST", "/o/{slug}/votes/{vote_id}/mail-house.csv"): P.CONTACT_EXPORT,
    ("GET", "/o/{slug}/votes/{vote_id}/challenges"): P.VOTER_LIST_REVIEW,
    ("POST", "/o/{slug}/votes/{vote_id}/challenges/{envelope_id}"): P.CHALLENGES_DECIDE,
    ("GET", "/o/{slug}/votes/{vote_id}/strike-off"): P.STRIKE_OFF,
    ("POST", "/o/{slug}/votes/{vote_id}/strike-off"): P.STRIKE_OFF,
    ("GET", "/o/{slug}/votes/{vote_id}/paper"): P.PAPER_BALLOT_ENTRY,
    ("POST", "/o/{slug}/votes/{vote_id}/paper/batches"): P.PAPER_BALLOT_ENTRY,
    ("POST", "/o/{slug}/votes/{vote_id}/paper/batches/{batch_id}/confirm"): P.PAPER_BATCH_CONFIRM,
    ("POST", "/o/{slug}/votes/{vote_id}/paper/batches/{batch_id}/withdraw"): P.PAPER_BALLOT_ENTRY,
    ("GET", "/o/{slug}/votes/{vote_id}/result"): P.CERTIFIED_RESULTS_READ,
    ("POST", "/o/{slug}/votes/{vote_id}/result/count"): P.TALLY,
    ("POST", "/o/{slug}/votes/{vote_id}/result/recount"): P.RESULTS_AFTER_CLOSE,
    ("POST", "/o/{slug}/votes/{vote_id}/result/explain"): P.CERTIFY,
    ("POST", "/o/{slug}/votes/{vote_id}/result/sign"): P.CERTIFY,
    ("GET", "/o/{slug}/votes/{vote_id}/certificate"): P.CERTIFIED_RESULTS_READ,
    ("GET", "/o/{slug}/votes/{vote_id}/certificate.pdf"): P.CERTIFIED_RESULTS_READ,
    ("GET", "/o/{slug}/votes/{vote_id}/record.json"): P.CERTIFIED_RESULTS_READ,
    ("GET", "/o/{slug}/constituencies"): P.ORG_VIEW,
    ("GET", "/o/{slug}/constituencies/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/constituencies"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/constituencies/{constituency_id}"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/constituencies/{constituency_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/constituencies/{constituency_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/constituencies/{constituency_id}/signup-link"): P.COMMUNITY_MANAGE,
    ("GET", "/join/{code}"): A.PUBLIC,
    ("POST", "/join/{code}"): A.PUBLIC,
    ("GET", "/o/{slug}/constituencies/{constituency_id}/queue"): P.COMMUNITY_MANAGE,
    (
        "POST",
        "/o/{slug}/constituencies/{constituency_id}/queue/{person_id}/approve",
    ): P.COMMUNITY_MANAGE,
    (
        "POST",
        "/o/{slug}/constituencies/{constituency_id}/queue/{person_id}/reject",
    ): P.COMMUNITY_MANAGE,
    (
        "POST",
        "/o/{slug}/constituencies/{constituency_id}/queue/{person_id}/merge",
    ): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/constituencies/{constituency_id}/people"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/constituencies/{constituency_id}/people"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/constituencies/{constituency_id}/people/new"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/constituencies/{constituency_id}/people/import"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/constituencies/{constituency_id}/people/import"): P.COMMUNITY_MANAGE,
    (
        "POST",
        "/o/{slug}/constituencies/{constituency_id}/people/{person_id}/remove",
    ): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/events"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/events/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/events"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/events/{event_id}"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/events/{event_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/events/{event_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/events/{event_id}/attendance"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/events/{event_id}/attendance/{attendance_id}/remove"): P.COMMUNITY_MANAGE,
    ("GET", "/checkin"): A.PUBLIC,
    ("POST", "/checkin"): A.PUBLIC,
    ("GET", "/o/{slug}/campaigns"): P.ORG_VIEW,
    ("GET", "/o/{slug}/campaigns/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/campaigns"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/campaigns/{campaign_id}"): P.ORG_VIEW,
    ("GET", "/o/{slug}/campaigns/{campaign_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/campaigns/{campaign_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/campaigns/{campaign_id}/sharing"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/campaigns/{campaign_id}/record"): P.ORG_VIEW,
    ("GET", "/o/{slug}/campaigns/{campaign_id}/demands/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/campaigns/{campaign_id}/demands"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/campaigns/{campaign_id}/offers/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/campaigns/{campaign_id}/offers"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/campaigns/{campaign_id}/counter-proposals/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/campaigns/{campaign_id}/counter-proposals"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/decision-makers"): P.ORG_VIEW,
    ("GET", "/o/{slug}/decision-makers/new"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/decision-makers"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/decision-makers/{decision_maker_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/decision-makers/{decision_maker_id}/edit"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/demands/{demand_id}"): P.ORG_VIEW,
    ("GET", "/o/{slug}/demands/{demand_id}/edit"): P.COMMUNITY_MANAGE,
    ("POST", "/o/{slug}/demands/{demand_id}/edit"): P.COMMUNITY_MANAGE,
    ("GET", "/o/{slug}/offers/{offer_id}"): P.ORG_VIEW,
    ("GET", "/o/{slug}/offers/{offer_id}/document"): P.ORG_VIEW,
    ("POST", "/o/{slug}/offers/{offer_id}/status"): P.COMMUNITY_MANAGE,
    ("GET", "/record/{record_code}"): A.PUBLIC,
    ("GET", "/record/{record_code}/offers/{offer_id}/document"): A.PUBLIC,
    ("POST", "/o/{slug}/offers/{offer_id}/decision-vote"): P.VOTE_SETUP,
    ("GET", "/o/{slug}/votes/{vote_id}/notices"): P.NOTICES_SEND,
    ("GET", "/o/{slug}/votes/{vote_id}/notices/new"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/new"): P.NOTICES_SEND,
    ("GET", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}/send"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}/schedule"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}/cancel"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}/retry"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}/preview"): P.NOTICES_SEND,
    ("POST", "/o/{slug}/votes/{vote_id}/notices/{campaign_id}/letters.pdf"): P.CONTACT_EXPORT,
    ("POST", "/webhooks/sms/replies"): A.PUBLIC,
    ("GET", "/dev/mail"): A.PUBLIC,
    ("GET", "/dev/mail/{name}"): A.PUBLIC,
    ("GET", "/o/{slug}/api-tokens"): P.API_TOKENS,
    ("POST", "/o/{slug}/api-tokens"): P.API_TOKENS,
    ("POST", "/o/{slug}/api-tokens/{token_id}/revoke"): P.API_TOKENS,
    ("GET", "/api/v1/orgs/{slug}/members"): P.ORG_VIEW,
    ("POST", "/api/v1/orgs/{slug}/members/batch"): P.ROSTER_IMPORT,
    ("POST", "/api/v1/orgs/{slug}/imports"): P.ROSTER_IMPORT,
    ("GET", "/api/v1/orgs/{slug}/imports/{upload_id}"): P.ROSTER_IMPORT,
    ("PUT", "/api/v1/orgs/{slug}/imports/{upload_id}/mapping"): P.ROSTER_IMPORT,
    ("POST", "/api/v1/orgs/{slug}/imports/{upload_id}/apply"): P.ROSTER_IMPORT,
    ("POST", "/api/v1/orgs/{slug}/eligibility"): P.ELIGIBILITY_PREVIEW,
    ("GET", "/api/v1/orgs/{slug}/votes"): P.TURNOUT_READ,
    ("POST", "/api/v1/orgs/{slug}/votes"): P.VOTE_SETUP,
    ("GET", "/api/v1/orgs/{slug}/votes/{vote_id}"): P.TURNOUT_READ,
    ("PATCH", "/api/v1/orgs/{slug}/votes/{vote_id}"): P.VOTE_SETUP,
    ("GET", "/api/v1/orgs/{slug}/votes/{vote_id}/turnout"): P.TURNOUT_READ,
    ("GET", "/api/v1/orgs/{slug}/votes/{vote_id}/result"): P.CERTIFIED_RESULTS_READ,
    ("GET", "/api/v1/orgs/{slug}/votes/{vote_id}/certificate"): P.CERTIFIED_RESULTS_READ,
    ("GET", "/api/v1/orgs/{slug}/votes/{vote_id}/record"): P.CERTIFIED_RESULTS_READ,
    ("GET", "/static"): A.PUBLIC,
}

CALLERS = ("anonymous", "voter", "observer", "committee", "staff", "admin", "other org")
ROLES = {name: Role(name) for name in ("observer", "committee", "staff", "admin")}


def operations(app) -> list[tuple[str, str, BaseRoute]]:  # type: ignore[no-untyped-def]
    """(method, path template, route) of every route the app serves, HEAD aside."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append(("GET", route.path, route))
        elif isinstance(route, Route):
            found += [(m, route.path, route) for m in sorted((route.methods or set()) - {"HEAD"})]
    return found


def test_every_route_is_in_the_matrix_with_the_access_it_declares(app) -> None:  # type: ignore[no-untyped-def]
    declared = {(m, path): route.access for m, path, route in operations(app)}  # type: ignore[attr-defined]
    assert set(declared) - set(EXPECTED) == set(), "routes missing from EXPECTED"
    assert set(EXPECTED) - set(declared) == set(), "EXPECTED names routes the app lacks"
    changed = {k: (EXPECTED[k], access) for k, access in declared.items() if EXPECTED[k] != access}
    assert changed == {}


def _address(route: BaseRoute, path: str, slug: str) -> str:
    if isinstance(route, Mount):
        return "/static/ratify.css"
    values = {}
    for name in re.findall(r"{(\w+)", path):
        if name == "slug":
            values[name] = slug
        elif name == "credential":
            values[name] = "B" * 26  # well formed, nobody's
        else:
            values[name] = str(uuid.uuid4())  # a made-up id, nobody's
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: values[m.group(1)], path)


@dataclass
class Caller:
    cookies: dict[str, str]
    headers: dict[str, str]


def test_each_caller_gets_what_each_route_declares(db: Session, client, app, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    org = u.org
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    link = link_of(settings.secret_key, voter(db, vote, "1001"))
    assert sign_in(client, link, "").status_code == 303
    voter_cookie = client.cookies["ratify_voter"]
    client.cookies.clear()
    users = {name: make_user(db, org, role) for name, role in ROLES.items()}
    other = make_org(db)
    users["other org"] = make_user(db, other, Role.ADMIN)
    # Tokens act as staff, committee or observer, never as an administrator.
    tokens = {
        name: make_token(db, org, role, client)
        for name, role in ROLES.items()
        if role != Role.ADMIN
    }
    tokens["other org"] = make_token(db, other, Role.STAFF, client)
    db.flush()
    state = app.state.ratify
    csrf = secrets.token_urlsafe(32)
    token = csrf_token_for(settings.secret_key, csrf)

    def caller(name: str) -> Caller:
        cookies = {"ratify_csrf": csrf}
        if name == "voter":
            cookies["ratify_voter"] = voter_cookie
        elif name != "anonymous":
            user = users[name]
            db.refresh(user)  # its session epoch, moved by a sign-out-everywhere just now
            session = {"u": user.id.hex, "e": user.session_epoch, "s": secrets.token_hex(8)}
            cookies["ratify_session"] = state.session_signer.dumps(session)
        headers = bearer(tokens[name]) if name in tokens else {}
        return Caller(cookies, headers)

    wrong: list[str] = []
    asked = 0
    for method, path, route in operations(app):
        access = EXPECTED[(method, path)]
        api = isinstance(route, ApiRoute)
        address = _address(route, path, org.slug)
        for name in CALLERS:
            c = caller(name)
            client.cookies.clear()
            for cookie, value in c.cookies.items():
                client.cookies.set(cookie, value)
            if method == "GET":
                got = client.get(address, headers=c.headers)
            elif api and route.upload:  # type: ignore[attr-defined]
                upload = {"file": ("roster.csv", b"Member ID\n1\n", "text/csv")}
                got = client.request(method, address, files=upload, headers=c.headers)
            elif api:
                got = client.request(method, address, json={}, headers=c.headers)  # fmt: skip
            else:
                got = client.request(method, address, data={"csrf_token": token})  # fmt: skip
            asked += 1
            status = got.status_code
            # Sent to sign in (a page's own redirect there, as after signing out, is not this).
            to_login = status == 303 and got.headers.get("location", "").startswith("/login?next=")
            role = ROLES.get(name)
            if api and name == "admin":
                continue  # no token has this role
            if status >= 500:
                expect = "no 5xx"
            elif api:
                assert isinstance(access, P)
                if name in ("anonymous", "voter"):
                    expect = "401" if status != 401 else ""
                elif name == "other org":
                    expect = "404" if status != 404 else ""
                elif not role_allows(role, access):
                    expect = "403" if status != 403 else ""
                else:
                    expect = "allowed" if status in (401, 403) else ""
            elif isinstance(access, P):
                if name in ("anonymous", "voter"):
                    expect = "the login page" if not to_login else ""
                elif name == "other org":
                    expect = "404" if status != 404 else ""
                elif not role_allows(role, access):
                    expect = "403" if status != 403 else ""
                else:
                    expect = "allowed" if status == 403 or to_login else ""
            elif access == A.SIGNED_IN:
                if name in ("anonymous", "voter"):
                    expect = "the login page" if not to_login else ""
                else:
                    expect = "allowed" if to_login or status == 403 else ""
            elif access == A.VOTER:
                if name == "voter":
                    expect = "allowed" if status in (401, 403) else ""
                elif status not in (401, 303):  # no session; or a staff session sent to sign in
                    expect = "401"
                else:
                    expect = ""
            else:  # PUBLIC
                expect = "allowed" if to_login or status == 403 else ""
            if expect:
                wrong.append(f"{method} {path} as {name}: {status}, expected {expect}")
    assert asked == len(EXPECTED) * len(CALLERS)  # each route, as each caller
    assert wrong == [], "\n".join(wrong)
