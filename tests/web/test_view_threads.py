"""Views run in at most as many threads as the process keeps pooled database connections:
more would only queue for the pool, or open and close a connection per request past it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from dataclasses import replace

import structlog
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import PlainTextResponse, Response

from ratify.app import create_app
from ratify.authz import PUBLIC
from ratify.settings import Settings
from ratify.web.routing import ViewContext, page


def test_views_run_in_no_more_threads_than_pooled_connections(
    live_settings: Settings, live_sessions: sessionmaker[Session]
) -> None:
    settings = replace(live_settings, db_pool_size=3)
    app = create_app(settings, sessions=live_sessions)
    lock = threading.Lock()
    full = threading.Event()  # three views at once: each holds its thread until then
    running = 0
    most = 0

    request_ids: set[str] = set()

    def slow(ctx: ViewContext) -> Response:
        nonlocal running, most
        # The request's logging context came along into the thread.
        request_ids.add(structlog.contextvars.get_contextvars()["request_id"])
        with lock:
            running += 1
            most = max(most, running)
            if running == 3:
                full.set()
        full.wait(10)
        time.sleep(0.02)  # room for a fourth to come in, were one let in
        with lock:
            running -= 1
        return PlainTextResponse("ok")

    app.router.routes.insert(0, page("/_slow", slow, access=PUBLIC))

    statuses: list[int] = []

    async def one() -> None:
        scope = {
            "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/_slow", "raw_path": b"/_slow", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1), "server": ("t", 80),
        }  # fmt: skip

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        await app(scope, receive, send)  # type: ignore[arg-type]

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(12)))

    # In a thread of its own: a browser test's driver may hold this thread's event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, burst()).result(timeout=60)
    assert statuses == [200] * 12
    assert most == 3  # all three used, and never a fourth
    assert len(request_ids) == 12  # each view logs under its own request's id
