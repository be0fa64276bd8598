"""Routes that declare who may use them, and the context every view receives.

A view is a plain (sync) function ``view(ctx: ViewContext) -> Response``. ``page()`` wraps it:
it reads and limits the form, checks CSRF on every unsafe method, then in a worker thread opens
the request's unit of work, loads the signed-in user, enforces the route's declared access and
calls the view. Commit happens when the view returns; any exception rolls everything back.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import threading
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, NoMatchFound, Route

from ratify.accounts import services as accounts
from ratify.accounts.models import StaffUser
from ratify.authz import ROLE_LABELS, SIGNED_IN, Permission, Role, RouteAccess, role_allows
from ratify.db import unit_of_work
from ratify.errors import (
    N_,
    BadRequest,
    CsrfFailure,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RatifyError,
)
from ratify.orgs import services as orgs
from ratify.orgs.models import Organization
from ratify.security import Signer, csrf_token_for, csrf_token_matches, new_token
from ratify.settings import LANGUAGES, Settings
from ratify.web.i18n import LANGUAGE_COOKIE, choose_language
from ratify.web.templating import Templates

SESSION_COOKIE = "ratify_session"
CSRF_COOKIE = "ratify_csrf"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AppState:
    """What every request needs, built once by ``create_app``."""

    settings: Settings
    sessions: sessionmaker[Session]
    templates: Templates
    hasher: PasswordHasher
    session_signer: Signer
    voter_signer: Signer  # the member's voter session (``votes.voting``)
    # Route name -> route, filled by ``create_app``: ``url()`` goes straight to its route
    # instead of trying each of the app's routes in turn (a ballot page names three).
    routes_by_name: dict[str, BaseRoute] = field(default_factory=dict)


@dataclass
class Cookie:
    name: str
    value: str
    max_age: int | None
    http_only: bool = True


@dataclass
class ViewContext:
    request: Request
    db: Session
    app: AppState
    user: StaffUser | None
    org: Organization | None
    role: Role | None
    form: FormData | None
    language: str
    csrf_cookie: str
    cookies: list[Cookie] = field(default_factory=list)
    deleted_cookies: list[str] = field(default_factory=list)

    # -- input -------------------------------------------------------------------------
    def field(self, name: str, default: str = "") -> str:
        """A text field of the submitted form (control characters were refused on reading)."""
        if self.form is None:
            return default
        value = self.form.get(name, default)
        if isinstance(value, UploadFile):
            raise BadRequest(N_("A file was sent where text was expected."))
        return value

    def path_uuid(self, name: str) -> uuid.UUID:
        """A UUID path parameter; anything else is simply not found."""
        try:
            return uuid.UUID(str(self.request.path_params[name]))
        except (KeyError, ValueError):
            raise NotFound() from None

    # -- output ------------------------------------------------------------------------
    def gettext(self, message: str, **params: Any) -> str:
        return self.app.templates.gettext(self.language, message, **params)

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission)

    def url(self, name: str, **params: Any) -> str:
        route = self.app.routes_by_name.get(name)
        if route is not None:
            try:
                return str(route.url_path_for(name, **params))
            except NoMatchFound:
                pass  # another route of the same name takes these parameters
        return str(self.request.app.url_path_for(name, **params))

    def org_url(self, name: str, **params: Any) -> str:
        assert self.org is not None
        return self.url(name, slug=self.org.slug, **params)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        base: dict[str, Any] = {
            "request": self.request,
            "user": self.user,
            "org": self.org,
            "role": self.role,
            "can": self.can,
            "Permission": Permission,
            "url": self.url,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token_for(self.app.settings.secret_key, self.csrf_cookie),
            "memberships": accounts.memberships(self.db, self.user) if self.user else [],
            "languages": LANGUAGES,
            "role_label": lambda role: self.gettext(ROLE_LABELS[role]),
            "errors": {},
            "problem": None,
            "values": {},
        }
        base.update(context)
        html = self.app.templates.render(self.language, template, base)
        return HTMLResponse(html, status_code=status_code)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def sign_in(self, user: StaffUser) -> None:
        """Issue a fresh session cookie and a fresh CSRF cookie (no fixation of either)."""
        value = self.app.session_signer.dumps(
            {"u": user.id.hex, "e": user.session_epoch, "s": new_token()[:16]}
        )
        self.cookies.append(Cookie(SESSION_COOKIE, value, self.app.settings.session_max_age))
        self.csrf_cookie = new_token()
        self.cookies.append(Cookie(CSRF_COOKIE, self.csrf_cookie, None))

    def sign_out(self) -> None:
        self.deleted_cookies.append(SESSION_COOKIE)


View = Callable[[ViewContext], Response]


class RatifyRoute(Route):
    """A Starlette route that knows who may use it."""

    def __init__(
        self,
        path: str,
        view: View,
        *,
        access: RouteAccess,
        methods: Sequence[str],
        name: str | None,
        upload: bool,
    ) -> None:
        self.access = access
        self.view = view
        self.upload = upload  # accepts a file: the larger RATIFY_MAX_UPLOAD_BYTES applies
        super().__init__(path, self._endpoint, methods=list(methods), name=name or view.__name__)

    async def _endpoint(self, request: Request) -> Response:
        state: AppState = request.app.state.ratify
        form: FormData | None = None
        if request.method not in SAFE_METHODS:
            try:
                form = await read_form(
                    request,
                    max_bytes=state.settings.max_upload_bytes
                    if self.upload
                    else state.settings.max_body_bytes,
                    max_fields=state.settings.max_form_fields,
                    max_files=1 if self.upload else 0,
                )
            except ClientDisconnect:
                return Response(status_code=400)  # nobody is listening any more
            check_csrf(request, form, state.settings)
        try:
            return await in_view_thread(state.settings, self._run, request, state, form)
        except (RatifyError, HTTPException):
            raise
        except Exception as exc:
            # Answered here rather than by Starlette's outermost handler, so that even this
            # page passes through the security-header middleware.
            from ratify.web.errors import server_error

            return await server_error(request, exc)
        finally:
            if form is not None:
                await form.close()

    def _run(self, request: Request, state: AppState, form: FormData | None) -> Response:
        with unit_of_work(state.sessions) as db:
            user = current_user(request, db, state)
            language = request_language(request, state.settings, user)
            # Error pages raised below read it too (a signed-in user's saved language).
            request.state.language = language
            org: Organization | None = None
            role: Role | None = None
            if user is None and (self.access == SIGNED_IN or isinstance(self.access, Permission)):
                return to_login(request)
            if isinstance(self.access, Permission):
                assert user is not None
                org = orgs.get_by_slug(db, request.path_params["slug"])
                role = accounts.role_in(db, user, org)
                if role is None:
                    raise NotFound()  # another organization's pages do not exist for you
                if not role_allows(role, self.access):
                    raise Forbidden()
            csrf_cookie = request.cookies.get(CSRF_COOKIE) or ""
            new_csrf = not csrf_cookie
            if new_csrf:
                csrf_cookie = new_token()
            ctx = ViewContext(
                request=request,
                db=db,
                app=state,
                user=user,
                org=org,
                role=role,
                form=form,
                language=language,
                csrf_cookie=csrf_cookie,
            )
            if new_csrf:
                ctx.cookies.append(Cookie(CSRF_COOKIE, csrf_cookie, None))
            response = self.view(ctx)
        secure = request.url.scheme == "https" or state.settings.https
        for cookie in ctx.cookies:
            response.set_cookie(
                cookie.name,
                cookie.value,
                max_age=cookie.max_age,
                httponly=cookie.http_only,
                samesite="lax",
                secure=secure,
                path="/",
            )
        for name in ctx.deleted_cookies:
            response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)
        return response


T = TypeVar("T")
_view_threads: dict[int, ThreadPoolExecutor] = {}
_view_threads_made = threading.Lock()


async def in_view_thread(settings: Settings, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in one of the process's view threads, as many as it keeps pooled
    database connections (``RATIFY_DB_POOL_SIZE``). A view holds one connection from its
    first statement to its commit, so more threads than that would wait for the pool, or
    (past its overflow) open a connection for one request and close it after, a new
    PostgreSQL backend each time. The request's context (its logging ids) goes along.

    A plain executor rather than anyio's threads: half the CPU per hand-over when many
    requests are in flight (measured here: 31 against 72 microseconds)."""
    size = settings.db_pool_size
    executor = _view_threads.get(size)
    if executor is None:
        with _view_threads_made:
            executor = _view_threads.get(size)
            if executor is None:
                executor = ThreadPoolExecutor(size, thread_name_prefix="ratify-view")
                _view_threads[size] = executor
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(executor, context.run, func, *args)


def page(
    path: str,
    view: View,
    *,
    access: RouteAccess,
    methods: Sequence[str] = ("GET",),
    name: str | None = None,
    upload: bool = False,
) -> RatifyRoute:
    return RatifyRoute(path, view, access=access, methods=methods, name=name, upload=upload)


def current_user(request: Request, db: Session, state: AppState) -> StaffUser | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    data = state.session_signer.loads(cookie, max_age=state.settings.session_max_age)
    if not isinstance(data, dict):
        return None
    try:
        user_id = uuid.UUID(hex=str(data["u"]))
        epoch = int(data["e"])
    except (KeyError, ValueError, TypeError):
        return None
    return accounts.session_user(db, user_id, epoch)


def request_language(request: Request, settings: Settings, user: StaffUser | None) -> str:
    return choose_language(
        user_language=user.language if user else None,
        cookie=request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language"),
        default=settings.default_language,
    )


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: never another host (``//evil``, ``/\\evil``, ``https:``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


def limited_body(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives, refusing (413) more than ``max_bytes``: at once when
    Content-Length says so, else as soon as the chunks pass it, without reading further."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > max_bytes:
                raise PayloadTooLarge()
        except ValueError:
            raise BadRequest() from None

    async def limited() -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge()
            yield chunk

    return limited()


async def read_form(
    request: Request, *, max_bytes: int, max_fields: int, max_files: int = 0
) -> FormData:
    """Read a form submission, refusing (413) more bytes or fields than allowed without
    reading further."""
    body = limited_body(request, max_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "multipart/form-data":
            form = await MultiPartParser(
                request.headers,
                body,
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=max_bytes,
            ).parse()
        elif content_type in ("application/x-www-form-urlencoded", ""):
            form = await FormParser(request.headers, body, max_fields=max_fields).parse()
        else:
            raise BadRequest(N_("Send this form from the page that shows it."))
    except MultiPartException as exc:
        if exc.message.startswith("Too many files"):
            raise BadRequest(N_("This form takes no files.")) from None
        if "Too many" in exc.message or "exceeded maximum size" in exc.message:
            raise PayloadTooLarge(
                N_("The form has too many fields or a field is too large.")
            ) from None
        raise BadRequest(N_("The form could not be read.")) from None
    for name, value in form.multi_items():
        if _CONTROL.search(name) or (isinstance(value, str) and _CONTROL.search(value)):
            await form.close()
            raise BadRequest(N_("The form holds characters that cannot be stored. Retype it."))
    return form


# NUL and the other C0 controls (tab, newline and carriage return are fine in text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_csrf(request: Request, form: FormData, settings: Settings) -> None:
    """Double-submit token bound to the CSRF cookie by HMAC, plus the browser's own word on
    where the request came from."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfFailure()
    cookie = request.cookies.get(CSRF_COOKIE)
    submitted = form.get(CSRF_FIELD)
    if not cookie or not isinstance(submitted, str) or not submitted:
        raise CsrfFailure()
    if not csrf_token_matches(settings.secret_key, cookie, submitted):
        raise CsrfFailure()
