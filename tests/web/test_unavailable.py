"""While the database is away or out of connections, pages answer 503 with a clear page and
the API a JSON 503, both with Retry-After; nothing is written, and nothing crashes."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient

from ratify.app import create_app
from ratify.db import make_sessionmaker
from ratify.settings import Settings


@pytest.fixture
def away(base_settings: Settings) -> TestClient:
    """An app whose database does not answer (nothing listens on port 1)."""
    url = "postgresql+psycopg://postgres@127.0.0.1:1/ratify?connect_timeout=2"
    engine = create_engine(url, pool_pre_ping=True)
    app = create_app(replace(base_settings, database_url=url), sessions=make_sessionmaker(engine))
    return TestClient(app, raise_server_exceptions=False)


def test_pages_say_the_database_is_away_with_503(away: TestClient) -> None:
    page = away.get("/v/" + "A" * 26)
    assert page.status_code == 503 and page.headers["retry-after"] == "30"
    assert "cannot reach its database" in page.text and "<html" in page.text


def test_the_api_says_so_in_json(away: TestClient) -> None:
    answer = away.get("/api/v1/orgs/x/votes", headers={"Authorization": "Bearer rat_x"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
    assert "cannot reach its database" in answer.json()["message"]


def test_a_pool_with_no_connection_free_answers_503(base_settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Every connection taken (a burst past the pool and PostgreSQL's own limit)."""
    url = engine.url.render_as_string(hide_password=False)
    tight = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    app = create_app(replace(base_settings, database_url=url), sessions=make_sessionmaker(tight))
    held = tight.connect()
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            page = client.get("/v/" + "A" * 26)
        assert page.status_code == 503 and "cannot reach its database" in page.text
    finally:
        held.close()
        tight.dispose()


@pytest.mark.skipif(
    os.environ.get("RATIFY_TEST_DB", "sqlite") != "postgresql", reason="a database server"
)
@pytest.mark.postgres_only
def test_the_app_recovers_by_itself_when_its_connections_are_cut(
    base_settings: Settings, database_urls: dict[str, str]
) -> None:
    """Pooled connections are not pinged before each use (a round trip per request): when
    the server has dropped them (a restart, a failover), the first request to meet a dead one
    answers 503, the pool throws all of its connections away, and the next request is served
    on a fresh one, without restarting the app."""
    url = database_urls["live"] + "?application_name=ratify_recovery_test"
    app = create_app(replace(base_settings, database_url=url, db_pool_size=2))
    app_engine = app.state.ratify.sessions.kw["bind"]  # the app's own engine, as served
    link = "/v/" + "A" * 26  # well formed, so it is looked up: unknown, so 404
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get(link).status_code == 404
            assert app_engine.pool.checkedin() >= 1  # pooled, and about to be cut
            admin_engine = create_engine(database_urls["live"], poolclass=NullPool)
            with admin_engine.connect() as admin:
                cut = admin.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'ratify_recovery_test'"
                ).scalar()
            assert cut >= 1
            answers = [client.get(link).status_code for _ in range(3)]
        assert answers[0] in (404, 503), answers  # never a 500
        assert answers[1:] == [404, 404], answers
    finally:
        app_engine.dispose()
