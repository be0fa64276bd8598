"""Pages that belong to no domain: health check and the language switch."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from ratify.accounts import services as accounts
from ratify.authz import PUBLIC
from ratify.db import check_schema
from ratify.settings import LANGUAGES
from ratify.web.i18n import LANGUAGE_COOKIE
from ratify.web.routing import Cookie, ViewContext, page, safe_next

log = structlog.get_logger("ratify.health")


def healthz(ctx: ViewContext) -> Response:
    """For load balancers: 200 when the database answers and is migrated, else 503."""
    try:
        # In a savepoint of the request's own transaction: a second connection would wait on
        # SQLite for the write lock this request already holds, and a failed statement
        # must not poison the transaction on PostgreSQL.
        with ctx.db.begin_nested():
            check_schema(ctx.db)
    except SQLAlchemyError as exc:
        log.warning("healthz.database_unavailable", error=exc.__class__.__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def choose_language(ctx: ViewContext) -> Response:
    language = ctx.field("language")
    if language in LANGUAGES:
        ctx.cookies.append(Cookie(LANGUAGE_COOKIE, language, 365 * 24 * 3600))
        if ctx.user is not None:
            accounts.set_language(ctx.db, ctx.user, language)
    return ctx.redirect(safe_next(ctx.field("next")))


ROUTES = [
    page("/healthz", healthz, access=PUBLIC),
    page("/language", choose_language, access=PUBLIC, methods=["POST"]),
]
