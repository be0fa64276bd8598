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
    """DESIGN.md §3: admin may do everything; the other roles exactly their column."""
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert Permission.STAFF_MANAGE not in ROLE_PERMISSIONS[Role.STAFF]
    assert Permission.AUDIT_READ in ROLE_PERMISSIONS[Role.OBSERVER]
    assert Permission.AUDIT_READ not in ROLE_PERMISSIONS[Role.STAFF]
    assert Permission.CERTIFY in ROLE_PERMISSIONS[Role.COMMITTEE]
    assert Permission.CERTIFY not in ROLE_PERMISSIONS[Role.STAFF]
    assert Permission.VOTE_SETUP in ROLE_PERMISSIONS[Role.STAFF]
    assert Permission.VOTE_SETUP not in ROLE_PERMISSIONS[Role.OBSERVER]
    for role in Role:
        assert Permission.ORG_VIEW in ROLE_PERMISSIONS[role]
