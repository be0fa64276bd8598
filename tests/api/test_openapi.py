"""The OpenAPI document is made from the API routes themselves; the live API keeps to it
(schemathesis, on PostgreSQL): no 5xx, every answer as documented, no answer without a token."""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy.orm import Session, sessionmaker

from ratify.api.openapi import DOCUMENT_PATH
from ratify.api.routing import ApiRoute
from ratify.authz import Role
from tests.api.support import bearer, make_token
from tests.factories import make_org

ON_POSTGRES = os.environ.get("RATIFY_TEST_DB", "sqlite") == "postgresql"


def _operations(app) -> dict[tuple[str, str], ApiRoute]:  # type: ignore[no-untyped-def]
    return {
        (method.lower(), re.sub(r"{(\w+):\w+}", r"{\1}", route.path)): route
        for route in app.routes
        if isinstance(route, ApiRoute)
        for method in (route.methods or set()) - {"HEAD"}
    }


def test_the_document_has_every_api_operation_with_its_own_models(app, client) -> None:  # type: ignore[no-untyped-def]
    got = client.get(DOCUMENT_PATH)
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    document = got.json()
    assert document["openapi"] == "3.1.0"
    documented = {(m, path): op for path, ops in document["paths"].items() for m, op in ops.items()}
    routes = _operations(app)
    assert set(documented) == set(routes) and len(routes) >= 15
    schemas = document["components"]["schemas"]
    for key, route in routes.items():
        op = documented[key]
        assert op["x-permission"] == str(route.access) and op["security"] == [{"bearer": []}]
        done = op["responses"][str(route.status_code)]["content"]["application/json"]["schema"]
        name = done["$ref"].rsplit("/", 1)[-1]
        fields = route.response_model.model_json_schema(mode="serialization")["properties"]
        assert set(schemas[name]["properties"]) == set(fields), key
        assert {"401", "403", "404", "422"} <= set(op["responses"]), key
        assert ("requestBody" in op) == (route.body_model is not None), key
        if route.query_model is not None:
            query = {p["name"] for p in op["parameters"] if p["in"] == "query"}
            assert query == set(route.query_model.model_fields), key
    # A well-formed OpenAPI 3.1 document: schemathesis reads an operation from every path.
    loaded = schemathesis.openapi.from_dict(document)
    assert sum(1 for result in loaded.get_all_operations() if result.ok()) == len(routes)


def test_the_reference_page_shows_every_operation_without_javascript(app, client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/api/v1/reference")
    assert page.status_code == 200 and "<script" not in page.text
    for method, path in _operations(app):
        assert f"<code>{method.upper()} {path}</code>" in page.text
    assert f'href="{DOCUMENT_PATH}"' in page.text and 'id="schema-ErrorOut"' in page.text


@pytest.fixture
def api_caller(live_sessions: sessionmaker[Session], secret_ledger) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """An organization on the live database and a staff token of it."""
    with live_sessions.begin() as db:
        org = make_org(db)
        token = make_token(db, org, Role.STAFF)
        slug = org.slug
    secret_ledger.add(token)
    return slug, token


@pytest.mark.skipif(not ON_POSTGRES, reason="the contract run is on PostgreSQL")
@pytest.mark.postgres_only
def test_the_live_api_keeps_to_its_document(live_server: str, api_caller) -> None:  # type: ignore[no-untyped-def]
    """Each operation, 20 cases made from its document by schemathesis's strategies (run by
    hypothesis here: schemathesis's pytest plugin fails on pytest 9, "'Function' object has
    no attribute '_nodeid'"), sent to the live app with a staff token of an organization of
    its own; each also sent without the token (ignored_auth)."""
    slug, token = api_caller
    document = schemathesis.openapi.from_url(f"{live_server}{DOCUMENT_PATH}")
    ran = 0
    for result in document.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def keeps_to_it(case) -> None:  # type: ignore[no-untyped-def]
            if "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = slug  # its own organization: into the work
            case.call_and_validate(
                headers=bearer(token),
                checks=[
                    checks.not_a_server_error,
                    checks.status_code_conformance,
                    checks.content_type_conformance,
                    checks.response_schema_conformance,
                    checks.ignored_auth,
                ],
            )

        keeps_to_it()
        ran += 1
    assert ran >= 15
