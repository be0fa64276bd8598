"""API routes: a bearer token instead of a session, JSON in and out, and the same declared
access as every page.

An endpoint is a plain (sync) function ``endpoint(ctx: ApiContext) -> BaseModel``.
``api_route()`` wraps it: it reads the body (limited), then in a worker thread opens the
request's unit of work, authenticates the token, checks that it belongs to the organization in
the URL (another organization's is 404, as for pages) and that its role has the route's
permission, validates query and body with the route's pydantic models (422 naming each field)
and calls the endpoint. Commit happens when it returns; any exception rolls everything back.
No cookie is read, so there is nothing for a cross-site request to ride on and no CSRF check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ratify.api import services as tokens
from ratify.api.models import ApiToken
from ratify.api.schemas import ErrorOut, FieldError
from ratify.authz import Permission, Role, role_allows
from ratify.db import unit_of_work
from ratify.errors import N_, BadRequest, Forbidden, NotFound, RatifyError
from ratify.orgs import services as orgs
from ratify.orgs.models import Organization
from ratify.web.i18n import choose_language
from ratify.web.routing import (
    SAFE_METHODS,
    AppState,
    in_view_thread,
    limited_body,
    read_form,
)

M = TypeVar("M", bound=BaseModel)


class Unauthorized(RatifyError):
    status_code = 401
    default_message = N_("Send a valid API token in the header Authorization: Bearer <token>.")
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="ratify"'}


class Unprocessable(RatifyError):
    """Input that parsed but does not fit: every problem, each naming its field."""

    status_code = 422
    default_message = N_("Some fields need correcting.")

    def __init__(self, errors: list[FieldError], message: str | None = None, **params: Any):
        super().__init__(message, **params)
        self.errors = errors


class UnsupportedMediaType(RatifyError):
    status_code = 415


@dataclass
class ApiContext:
    request: Request
    db: Session
    app: AppState
    org: Organization
    token: ApiToken
    language: str
    query: BaseModel | None
    body: BaseModel | None
    form: FormData | None
    # Headers for the answer, such as the Location of what a POST created.
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def role(self) -> Role:
        return self.token.role

    def can(self, permission: Permission) -> bool:
        return role_allows(self.token.role, permission)

    def gettext(self, message: str, **params: Any) -> str:
        return self.app.templates.gettext(self.language, message, **params)

    def query_as(self, model: type[M]) -> M:
        assert isinstance(self.query, model)
        return self.query

    def body_as(self, model: type[M]) -> M:
        assert isinstance(self.body, model)
        return self.body

    def url_path(self, name: str, **params: object) -> str:
        """The path of the API route ``name`` in this organization (``api_`` + its endpoint)."""
        path = self.request.app.url_path_for(
            name, slug=self.org.slug, **{k: str(v) for k, v in params.items()}
        )
        return str(path)

    def path_uuid(self, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(str(self.request.path_params[name]))
        except (KeyError, ValueError):
            raise NotFound() from None


Endpoint = Callable[[ApiContext], BaseModel]


class ApiRoute(Route):
    """A route of the JSON API; it declares its access like every page does, and its models
    (for validation now, and for the OpenAPI document)."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        access: Permission,
        methods: Sequence[str],
        name: str | None,
        query: type[BaseModel] | None,
        body: type[BaseModel] | None,
        response: type[BaseModel],
        status_code: int,
        upload: bool,
        max_body: str,
    ) -> None:
        self.access = access
        self.api_endpoint = endpoint
        self.query_model = query
        self.body_model = body
        self.response_model = response
        self.status_code = status_code
        self.upload = upload  # a multipart file upload instead of a JSON body
        self.max_body = max_body  # which setting limits the body
        super().__init__(
            path, self._endpoint, methods=list(methods), name=name or f"api_{endpoint.__name__}"
        )

    async def _endpoint(self, request: Request) -> Response:
        state: AppState = request.app.state.ratify
        form: FormData | None = None
        try:
            secret = bearer_secret(request)
            raw = b""
            if request.method not in SAFE_METHODS:
                max_bytes = getattr(state.settings, self.max_body)
                if self.upload:
                    form = await _read_upload(request, state, max_bytes)
                else:
                    raw = await read_body(request, max_bytes)
            return await in_view_thread(
                state.settings, self._run, request, state, secret, raw, form
            )
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except RatifyError as exc:
            return error_response(request, state, exc)
        except Exception as exc:
            from ratify.web.errors import server_error

            return await server_error(request, exc)
        finally:
            if form is not None:
                await form.close()

    def _run(
        self,
        request: Request,
        state: AppState,
        secret: str,
        raw: bytes,
        form: FormData | None,
    ) -> Response:
        # The token is checked (and its last use recorded) in a short transaction of its own:
        # in the request's, the update would hold the token's row lock for the whole request,
        # and every other request with the same token would wait for it.
        with unit_of_work(state.sessions) as db:
            checked = tokens.authenticate(db, secret)
            token_id = checked.id if checked is not None else None
        if token_id is None:
            raise Unauthorized()
        with unit_of_work(state.sessions) as db:
            token = tokens.get_live_token(db, token_id)
            if token is None:
                raise Unauthorized()  # revoked in between
            org = orgs.get_by_slug(db, request.path_params["slug"])
            if org.id != token.organization_id:
                raise NotFound()  # another organization's data does not exist for this token
            if not role_allows(token.role, self.access):
                raise Forbidden()
            query = (
                validate(self.query_model, dict(request.query_params)) if self.query_model else None
            )
            body: BaseModel | None = None
            if self.body_model is not None and form is not None:
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
                body = validate(self.body_model, fields)
            elif self.body_model is not None:
                body = validate_json(self.body_model, raw)
            ctx = ApiContext(
                request=request,
                db=db,
                app=state,
                org=org,
                token=token,
                language=language_of(request, state),
                query=query,
                body=body,
                form=form,
            )
            result = self.api_endpoint(ctx)
            payload = result.model_dump_json()
        return Response(
            payload,
            status_code=self.status_code,
            media_type="application/json",
            headers=ctx.response_headers or None,
        )


def api_route(
    path: str,
    endpoint: Endpoint,
    *,
    access: Permission,
    response: type[BaseModel],
    methods: Sequence[str] = ("GET",),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    status_code: int = 200,
    upload: bool = False,
    max_body: str = "max_body_bytes",
    name: str | None = None,
) -> ApiRoute:
    return ApiRoute(
        path,
        endpoint,
        access=access,
        methods=methods,
        name=name,
        query=query,
        body=body,
        response=response,
        status_code=status_code,
        upload=upload,
        max_body=max_body,
    )


# -- input ---------------------------------------------------------------------------------------


def bearer_secret(request: Request) -> str:
    """The token from ``Authorization: Bearer <token>``. Cookies are never a credential here."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized()
    return secret.strip()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refusing (413) more than ``max_bytes`` without reading further."""
    body = b"".join([chunk async for chunk in limited_body(request, max_bytes)])
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type != "application/json":
        raise UnsupportedMediaType(N_("Send JSON, with the header Content-Type: application/json."))
    return body


async def _read_upload(request: Request, state: AppState, max_bytes: int) -> FormData:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            N_("Send the file as multipart/form-data, in a field named file.")
        )
    return await read_form(
        request, max_bytes=max_bytes, max_fields=state.settings.max_form_fields, max_files=1
    )


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(field_errors(exc)) from None


def validate_json(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise BadRequest(N_("The body is not valid JSON.")) from None
        raise Unprocessable(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as index (of an item in the body's list), field and message; never
    the value that was sent (it may be personal data, and it is the caller's own anyway)."""
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [part for part in error["loc"] if part != "[key]"]  # a dict's key: its field
        index = loc[1] if len(loc) >= 2 and isinstance(loc[1], int) else None
        if index is not None:
            del loc[1]  # "members.email" of item 3, not "members.3.email"
        found.append(
            FieldError(index=index, field=".".join(str(part) for part in loc), message=error["msg"])
        )
    return found


# -- output --------------------------------------------------------------------------------------


def language_of(request: Request, state: AppState) -> str:
    return choose_language(
        user_language=None,
        cookie=None,
        accept_language=request.headers.get("accept-language"),
        default=state.settings.default_language,
    )


def error_response(request: Request, state: AppState, exc: RatifyError) -> Response:
    language = language_of(request, state)

    def translate(message: str, **params: Any) -> str:
        return state.templates.gettext(language, message, **params)

    errors = getattr(exc, "errors", None)
    body = ErrorOut(
        error=exc.status_code,
        message=translate(exc.message, **exc.params),
        request_id=request.scope.get("state", {}).get("request_id", ""),
        errors=[
            FieldError(index=e.index, field=e.field, message=translate(e.message))
            for e in errors or []
        ]
        if isinstance(errors, list)
        else [],
    )
    return Response(
        body.model_dump_json(),
        status_code=exc.status_code,
        media_type="application/json",
        headers=getattr(exc, "headers", None),
    )
