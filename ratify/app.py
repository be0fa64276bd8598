"""``create_app(settings)``: the one place routes and middleware are assembled."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ratify.accounts import views as accounts_views
from ratify.api import openapi as api_openapi
from ratify.api import views as api_views
from ratify.api import votes as api_votes
from ratify.audit import views as audit_views
from ratify.authz import PUBLIC, RouteAccess
from ratify.community import campaign_views, decision, events_views, people_views
from ratify.community import views as community_views
from ratify.db import create_db_engine, make_sessionmaker
from ratify.errors import RatifyError
from ratify.notices import devmail
from ratify.notices import views as notices_views
from ratify.notices import webhooks as notices_webhooks
from ratify.orgs import views as orgs_views
from ratify.rosters import views as rosters_views
from ratify.security import SESSION_SALT, VOTER_SESSION_SALT, Signer, password_hasher
from ratify.settings import PROJECT_ROOT, Settings
from ratify.votes import challenges as challenges_views
from ratify.votes import oversight as oversight_views
from ratify.votes import paper_views, record_views
from ratify.votes import published as published_views
from ratify.votes import results as results_views
from ratify.votes import views as votes_views
from ratify.votes import voting as voting_views
from ratify.web import errors as web_errors
from ratify.web import views as web_views
from ratify.web.middleware import (
    BodySizeLimitMiddleware,
    RequestLogMiddleware,
    SecurityHeadersMiddleware,
)
from ratify.web.routing import AppState
from ratify.web.templating import Templates

STATIC_DIR = PROJECT_ROOT / "static"


class PublicMount(Mount):
    """A mounted app that declares its access like every route does."""

    access: RouteAccess = PUBLIC


def routes() -> list[BaseRoute]:
    return [
        # First: during a big vote nearly every request is a member's, and Starlette tries
        # routes in order (no other route's path begins with /v/).
        *published_views.ROUTES,  # /v/receipts, before /v/{credential}
        *voting_views.ROUTES,
        *web_views.ROUTES,
        *accounts_views.ROUTES,
        *orgs_views.ROUTES,
        *audit_views.ROUTES,
        *rosters_views.ROUTES,
        *votes_views.ROUTES,
        *oversight_views.ROUTES,
        *challenges_views.ROUTES,
        *paper_views.ROUTES,
        *results_views.ROUTES,
        *record_views.ROUTES,
        *community_views.ROUTES,
        *people_views.ROUTES,
        *events_views.ROUTES,
        *campaign_views.ROUTES,
        *decision.ROUTES,
        *notices_views.ROUTES,
        *notices_webhooks.ROUTES,
        *devmail.ROUTES,
        *api_openapi.ROUTES,
        *api_views.ROUTES,
        *api_votes.ROUTES,
        PublicMount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def create_app(settings: Settings, *, sessions: sessionmaker[Session] | None = None) -> Starlette:
    if sessions is None:
        sessions = make_sessionmaker(
            create_db_engine(settings.database_url, pool_size=settings.db_pool_size, pre_ping=False)
        )
    state = AppState(
        settings=settings,
        sessions=sessions,
        templates=Templates(auto_reload=not settings.production),
        hasher=password_hasher(settings),
        session_signer=Signer(settings.secret_key, SESSION_SALT),
        voter_signer=Signer(settings.secret_key, VOTER_SESSION_SALT),
    )
    middleware = [
        Middleware(RequestLogMiddleware),
        # Outermost after logging: the real client address and scheme, but only from
        # proxies we were told to trust (a forged X-Forwarded-For from anyone else is ignored).
        Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies)),
        Middleware(SecurityHeadersMiddleware, settings=settings),
        Middleware(
            BodySizeLimitMiddleware,
            max_bytes=max(settings.max_upload_bytes, settings.max_body_bytes),
        ),
    ]
    app = Starlette(
        routes=routes(),
        middleware=middleware,
        exception_handlers={
            RatifyError: web_errors.ratify_error,
            HTTPException: web_errors.http_error,
            Exception: web_errors.server_error,
        },
    )
    for route in app.routes:
        name = getattr(route, "name", None)
        if name:
            state.routes_by_name.setdefault(name, route)
    app.state.ratify = state
    return app
