"""The API's OpenAPI 3.1 document, served at ``/api/v1/openapi.json``, and its reference page
at ``/api/v1/reference``.

Both are made from the API routes themselves (``ApiRoute``): their paths, methods, declared
permission, status code and the very pydantic models that validate each request's query and
body and shape its answer. A route added or changed changes the document with it: the two
cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaValue, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ratify.api.routing import ApiRoute
from ratify.api.schemas import ErrorOut
from ratify.authz import PUBLIC, RouteAccess
from ratify.web.routing import ViewContext, page

OPENAPI = "3.1.0"
DOCUMENT_PATH = "/api/v1/openapi.json"
Mode = Literal["validation", "serialization"]

# The errors every operation may answer, each as ErrorOut (``api.routing.error_response``).
ERRORS: dict[int, str] = {
    400: "The body is not valid JSON, or the form could not be read.",
    401: "No valid API token (Authorization: Bearer <token>).",
    403: "The token's role does not have this operation's permission.",
    404: "Not found; another organization's data is not found either.",
    413: "The body is larger than the operation accepts.",
    422: "Some fields need correcting: each named in errors.",
    503: "The database cannot be reached: try again (Retry-After).",
}


class PublicRoute(Route):
    """A plain route that declares its access like every route does."""

    access: RouteAccess = PUBLIC


def _api_routes(routes: Sequence[BaseRoute]) -> list[ApiRoute]:
    return [route for route in routes if isinstance(route, ApiRoute)]


def _models(api: Sequence[ApiRoute]) -> list[tuple[type[BaseModel], Mode]]:
    wanted: list[tuple[type[BaseModel], Mode]] = [(ErrorOut, "serialization")]
    for route in api:
        wanted += [(m, "validation") for m in (route.query_model, route.body_model) if m]
        wanted.append((route.response_model, "serialization"))
    return list(dict.fromkeys(wanted))


def _summary(route: ApiRoute) -> tuple[str, str]:
    doc = (route.api_endpoint.__doc__ or "").strip()
    first, _, rest = doc.partition("\n\n")
    return " ".join(first.split()), " ".join(rest.split())


def build(routes: Sequence[BaseRoute], server: str = "/") -> dict[str, Any]:
    """The document for the API routes among ``routes``."""
    api = _api_routes(routes)
    refs, schemas = models_json_schema(_models(api), ref_template="#/components/schemas/{model}")
    error_ref = refs[(ErrorOut, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for route in api:
        template = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        summary, description = _summary(route)
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"}
                if name == "slug"
                else {"type": "string", "format": "uuid"},
            }
            for name in re.findall(r"{(\w+)}", template)
        ]
        if route.query_model is not None:
            query = _definition(refs[(route.query_model, "validation")], schemas)
            required = set(query.get("required", []))
            parameters += [
                {"name": name, "in": "query", "required": name in required, "schema": schema}
                for name, schema in query.get("properties", {}).items()
            ]
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": summary or route.name,
            "tags": [template.split("/")[5] if template.count("/") >= 5 else "api"],
            "security": [{"bearer": []}],
            "x-permission": str(route.access),
            "parameters": parameters,
            "responses": {
                str(route.status_code): {
                    "description": "Done.",
                    "content": {
                        "application/json": {
                            "schema": refs[(route.response_model, "serialization")]
                        }
                    },
                },
                **{
                    str(status): {
                        "description": text,
                        "content": {"application/json": {"schema": error_ref}},
                    }
                    for status, text in ERRORS.items()
                },
            },
        }
        if description:
            operation["description"] = description
        if route.body_model is not None and route.upload:
            form = _definition(refs[(route.body_model, "validation")], schemas)
            operation["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": _upload_schema(form)}},
            }
            operation["responses"]["415"] = {
                "description": "Send the file as multipart/form-data.",
                "content": {"application/json": {"schema": error_ref}},
            }
        elif route.body_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.body_model, "validation")]}},
            }
            operation["responses"]["415"] = {
                "description": "Send JSON, with the header Content-Type: application/json.",
                "content": {"application/json": {"schema": error_ref}},
            }
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(template, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI,
        "info": {
            "title": "Ratify API",
            "version": "1",
            "description": (
                "Rosters, eligibility and votes of one organization, under"
                " /api/v1/orgs/{slug}/. Every operation takes an API token made by an"
                " administrator (Authorization: Bearer <token>), acts with the token's role"
                " and answers 404 for another organization's data. No count of choices is"
                " answered before a vote closes."
            ),
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _definition(ref: JsonSchemaValue, schemas: JsonSchemaValue) -> JsonSchemaValue:
    """The model's schema that ``ref`` points to among the document's definitions."""
    definition: JsonSchemaValue = schemas["$defs"][str(ref["$ref"]).rsplit("/", 1)[-1]]
    return definition


def _upload_schema(form: JsonSchemaValue) -> JsonSchemaValue:
    """The upload's form fields (its model's) and the file itself."""
    properties = {"file": {"type": "string", "format": "binary"}, **form.get("properties", {})}
    return {
        "type": "object",
        "properties": properties,
        "required": ["file", *form.get("required", [])],
    }


def document_of(request: Request) -> dict[str, Any]:
    """The app's document, made on first asking (the routes do not change after)."""
    state = request.app.state
    made: dict[str, Any] | None = getattr(state, "openapi_document", None)
    if made is None:
        made = state.openapi_document = build(request.app.routes)
    return made


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document_of(request), headers={"Cache-Control": "no-cache"})


def reference(ctx: ViewContext) -> Response:
    """The API reference: every operation of the document, readable without JavaScript."""
    document = document_of(ctx.request)
    schemas = document["components"]["schemas"]
    operations = [
        {"method": method.upper(), "path": path, **operation}
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    return ctx.render(
        "api/reference.html",
        document=document,
        operations=operations,
        schemas=schemas,
        model_name=_model_name,
        document_path=DOCUMENT_PATH,
    )


def _model_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return str(ref).rsplit("/", 1)[-1] if ref else ""


ROUTES: list[BaseRoute] = [
    PublicRoute(DOCUMENT_PATH, openapi_json, methods=["GET"], name="api_openapi"),
    page("/api/v1/reference", reference, access=PUBLIC, name="api_reference"),
]
