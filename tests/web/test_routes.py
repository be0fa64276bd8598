from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route

from ratify.app import create_app, routes
from ratify.authz import ROLE_PERMISSIONS, Access, Permission, Role


def _walk(items: list[BaseRoute], prefix: str = "") -> list[tuple[str, BaseRoute]]:
    found = []
    for route in items:
        path = prefix + getattr(route, "path", "")
        found.append((path, route))
        if isinstance(route, Mount) and not hasattr(route, "access"):
            found.extend(_walk(list(route.routes), path))
    return found


def test_every_route_declares_public_or_a_permission(settings) -> None:
    app = create_app(settings)
    undeclared = [
        path
        for path, route in _walk(list(app.routes))
        if not isinstance(getattr(route, "access", None), (Access, Permission))
    ]
    assert undeclared == []


def test_the_route_walk_catches_an_undeclared_route(settings) -> None:
    async def naked(request):  # type: ignore[no-untyped-def]
        raise AssertionError

    app = create_app(settings)
    app.router.routes.append(Route("/naked", naked))
    undeclared = [p for p, r in _walk(list(app.routes)) if not hasattr(r, "access")]
    assert undeclared == ["/naked"]


def test_organization_routes_carry_the_slug_they_are_checked_against() -> None:
    for route in routes():
        if isinstance(getattr(route, "access", None), Permission):
            assert "{slug}" in route.path, route.path  # type: ignore[attr-defined]


def test_permission_table_matches_design() -> None:
    """DESIGN.md §3, written out in full: a permission gained or lost by any role fails here."""
    P = Permission
    expected = {
        Role.ADMIN: set(Permission),
        Role.STAFF: {
            P.ORG_VIEW, P.MEMBERS_READ, P.MEMBER_CONTACTS_READ, P.ROSTERS_MANAGE,
            P.ROSTER_IMPORT, P.DUES_MANAGE, P.ELIGIBILITY_PREVIEW,
            P.VOTE_SETUP, P.NOTICES_SEND, P.STRIKE_OFF, P.RESULTS_AFTER_CLOSE,
            P.CERTIFIED_RESULTS_READ, P.COMMUNITY_MANAGE, P.TURNOUT_READ,
        },
        Role.COMMITTEE: {
            P.ORG_VIEW, P.MEMBERS_READ, P.VOTER_LIST_REVIEW, P.CHALLENGES_DECIDE,
            P.PAPER_BALLOT_ENTRY, P.PAPER_BATCH_CONFIRM, P.TALLY,
            P.CERTIFY, P.RESULTS_AFTER_CLOSE, P.CERTIFIED_RESULTS_READ, P.TURNOUT_READ,
        },
        Role.OBSERVER: {P.ORG_VIEW, P.TURNOUT_READ, P.AUDIT_READ, P.CERTIFIED_RESULTS_READ},
    }  # fmt: skip
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == expected
