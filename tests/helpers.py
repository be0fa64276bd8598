"""Helpers for driving the app through its forms, as a browser would."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TypeVar

from starlette.testclient import TestClient

from tests.factories import PASSWORD

T = TypeVar("T")
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


def run_together(
    task: Callable[[int], T], count: int, timeout: float = 60
) -> list[T | BaseException]:
    """Run ``task(0) … task(count-1)`` in threads released at the same instant; each result,
    or the exception it raised, in thread order."""
    start = threading.Barrier(count)
    results: list[T | BaseException | None] = [None] * count

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = task(n)
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return results  # type: ignore[return-value]


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def form_from(client: TestClient, path: str) -> dict[str, str]:
    """The hidden fields of the page's forms (CSRF token and the like), as a browser sends them."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    fields = dict(_HIDDEN.findall(response.text))
    match = _CSRF.search(response.text)
    assert match, f"no CSRF token on {path}"
    return {**fields, "csrf_token": match.group(1)}
