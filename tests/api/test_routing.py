"""Every API route authenticates a token and declares its permission and models; an
unexpected error is a JSON 500 that tells nothing."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.routing import Route

from ratify.api.routing import ApiRoute, api_route
from ratify.app import routes
from ratify.authz import Permission
from tests.api.support import bearer, make_token
from tests.factories import make_org


def test_every_api_route_takes_a_token_and_declares_permission_and_models() -> None:
    documentation = {"/api/v1/openapi.json", "/api/v1/reference"}  # public, no token
    api = [
        r
        for r in routes()
        if isinstance(r, Route) and r.path.startswith("/api/") and r.path not in documentation
    ]
    assert len(api) >= 7
    for route in api:
        # A plain Route under /api would skip the token check.
        assert isinstance(route, ApiRoute), route.path
        assert isinstance(route.access, Permission), route.path
        assert route.path.startswith("/api/v1/orgs/{slug}/"), route.path
        assert issubclass(route.response_model, BaseModel), route.path
        if route.methods and route.methods & {"POST", "PUT"}:
            assert route.body_model is not None, route.path


def test_an_unexpected_error_is_a_json_500(db: Session, client) -> None:
    class Nothing(BaseModel):
        pass

    def broken(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail")

    org = make_org(db)
    client.app.router.routes.append(
        api_route("/api/v1/orgs/{slug}/boom", broken, access=Permission.ORG_VIEW, response=Nothing)
    )
    response = client.get(
        f"/api/v1/orgs/{org.slug}/boom", headers=bearer(make_token(db, org, client=client))
    )
    assert response.status_code == 500
    assert response.json()["error"] == 500 and "secret detail" not in response.text
