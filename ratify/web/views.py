"""Pages that belong to no domain: health check and the language switch."""

from __future__ import annotations

from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from ratify.accounts import services as accounts
from ratify.authz import PUBLIC
from ratify.settings import LANGUAGES
from ratify.web.i18n import LANGUAGE_COOKIE
from ratify.web.routing import Cookie, ViewContext, page, safe_next


def healthz(ctx: ViewContext) -> Response:
    ctx.db.execute(text("SELECT 1"))
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
