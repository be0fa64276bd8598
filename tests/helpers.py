"""Helpers for driving the app through its forms, as a browser would."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    match = _CSRF.search(response.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client: TestClient, path: str, data: dict[str, str], *, form_page: str | None = None):  # type: ignore[no-untyped-def]
    token = csrf_from(client, form_page or path)
    return client.post(path, data={**data, "csrf_token": token})


def login(client: TestClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return post_form(client, "/login", {"email": email, "password": password})
