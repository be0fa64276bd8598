"""Friendly error pages: HTML for pages, JSON under ``/api``. Nothing user-supplied gets a 500;
a real 500 shows a page with the request id and logs the traceback."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ratify.errors import N_, RatifyError
from ratify.web.i18n import LANGUAGE_COOKIE, choose_language
from ratify.web.routing import AppState

log = structlog.get_logger("ratify.errors")

TITLES = {
    400: N_("That did not work"),
    401: N_("Sign in needed"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed"),
    409: N_("Something changed"),
    413: N_("Too large"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong on our side"),
    503: N_("Ratify cannot reach its database"),
}
MESSAGES = {
    403: N_("You do not have permission to do that."),
    404: N_("There is nothing here. Check the address."),
    405: N_("This page cannot be used that way."),
    413: N_("What you sent is too large."),
    500: N_("The problem has been logged. Try again in a moment."),
    503: N_(
        "Ratify cannot reach its database just now, so nothing was saved. Try again in a minute."
    ),
}
RETRY_AFTER_SECONDS = 30


def _render(
    request: Request, status: int, message: str, params: dict[str, Any] | None = None
) -> Response:
    state: AppState = request.app.state.ratify
    language = getattr(request.state, "language", None) or choose_language(
        user_language=None,
        cookie=request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language"),
        default=state.settings.default_language,
    )
    translated = state.templates.gettext(language, message, **(params or {}))
    request_id = request.scope.get("state", {}).get("request_id", "")
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"error": status, "message": translated, "request_id": request_id}, status_code=status
        )
    title = state.templates.gettext(language, TITLES.get(status, TITLES[400]))
    html = state.templates.render(
        language,
        "errors/error.html",
        {
            "status": status,
            "title": title,
            "message": translated,
            "request_id": request_id,
            "user": None,
            "org": None,
            "memberships": [],
            "languages": [],
        },
    )
    return HTMLResponse(html, status_code=status)


async def ratify_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RatifyError)
    return _render(request, exc.status_code, exc.message, exc.params)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    response = _render(request, status, MESSAGES.get(status, MESSAGES[404]))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def database_unavailable(exc: BaseException) -> bool:
    """The database is away, restarting, out of connections or too busy: worth trying again,
    and nothing of the request was written (its transaction never committed)."""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


async def server_error(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):
        # No traceback (it says nothing new) and no statement (it may hold values): the
        # driver's message, e.g. "connection refused" or "too many clients".
        log.error("db.unavailable", error=type(exc).__name__, detail=str(exc.orig)[:200]
                  if isinstance(exc, DBAPIError) else str(exc)[:200])  # fmt: skip
        response = _render(request, 503, MESSAGES[503])
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    log.error("http.unhandled_error", exc_info=exc)
    return _render(request, 500, MESSAGES[500])
