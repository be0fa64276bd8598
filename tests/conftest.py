"""Test harness.

One engine per run, chosen by ``RATIFY_TEST_DB`` (``sqlite`` or ``postgresql``; ``make test``
runs the suite once with each). Every pytest-xdist worker gets two databases of its own, both
made by the Alembic migrations:

- the *rollback* database: each test runs inside an outer transaction that is rolled back
  (``db``, ``sessions``, ``app``, ``client``);
- the *live* database: committed data that other connections see (a live server for the
  browser, several workers at once); emptied after each test that used it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ratify.app import create_app
from ratify.db import create_db_engine
from ratify.logs import configure_logging
from ratify.migrations import upgrade
from ratify.models import Base
from ratify.settings import Settings, load_settings
from ratify.votes.credentials import parse as parse_credential

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENGINE = os.environ.get("RATIFY_TEST_DB", "sqlite")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


def pytest_report_header(config: pytest.Config) -> str:
    return f"ratify: database engine = {ENGINE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("RATIFY_REQUIRE_CHROMIUM") == "1":
        raise pytest.UsageError(f"RATIFY_REQUIRE_CHROMIUM=1 but there is no chromium at {CHROMIUM}")
    skip = pytest.mark.skip(
        reason=f"Debian's chromium is not installed ({CHROMIUM}): `make test` installs it as root"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


# -- secrets must never reach the logs -------------------------------------------------------


class SecretLedger:
    """Every session cookie, CSRF cookie, one-time link token, personal link's credential and
    typed password (16 characters or more) a test saw."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.requests = 0

    def add(self, value: str | None) -> None:
        if value and len(value) >= 16:
            self.values.add(value)

    def add_tokens_in(self, text_: str) -> None:
        for token in re.findall(r"/set-password/([A-Za-z0-9_\-]{20,})", text_):
            self.add(token)


@pytest.fixture(scope="session")
def secret_ledger() -> SecretLedger:
    return SecretLedger()


@pytest.fixture(scope="session")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs") / f"ratify-{WORKER}.log"


@pytest.fixture(scope="session")
def log_handler(log_file: Path) -> Iterator[logging.Handler]:
    handler = logging.FileHandler(log_file, encoding="utf-8")
    yield handler
    handler.close()


@pytest.fixture(scope="session", autouse=True)
def _logs_hold_no_secrets(
    log_file: Path,
    log_handler: logging.Handler,
    secret_ledger: SecretLedger,
    base_settings: Settings,
) -> Iterator[None]:
    configure_logging(replace(base_settings, log_format="json"), handler=log_handler)
    # The test client logs every URL it requests; that is the tests' log, not the app's.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    yield
    log_handler.flush()
    logged = log_file.read_text(encoding="utf-8")
    leaked = sorted(v[:8] + "…" for v in secret_ledger.values if v in logged)
    assert not leaked, f"secrets found in the test run's logs: {leaked}"
    if secret_ledger.requests:
        # Not vacuous: the logs this check read hold the access lines of those requests.
        assert '"http.request"' in logged


# -- settings and databases ------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    var_dir = tmp_path_factory.mktemp("var")
    return load_settings(
        {},
        env="development",
        secret_key=secrets.token_urlsafe(48),
        base_url="http://testserver",
        var_dir=var_dir,
        database_url="sqlite:///unused",
        # Cheap hashing in tests (warehouse does the same); production parameters elsewhere.
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
    )


def _postgres_databases(names: list[str]) -> list[str]:
    base_url = os.environ.get("RATIFY_TEST_DATABASE_URL") or DEFAULT_PG_URL
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        where = make_url(base_url).render_as_string(hide_password=True)
        message = f"PostgreSQL is not reachable at {where}: {exc.__class__.__name__}"
        if os.environ.get("RATIFY_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (RATIFY_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(message)
    finally:
        admin.dispose()
    return [
        make_url(base_url).set(database=name).render_as_string(hide_password=False)
        for name in names
    ]


def _drop_postgres_databases(names: list[str]) -> None:
    admin = create_engine(
        os.environ.get("RATIFY_TEST_DATABASE_URL") or DEFAULT_PG_URL, isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # Named for this run too, so that two runs on one machine never drop each other's.
    run = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}")[:8]
    names = [f"ratify_t_{run}_{WORKER}", f"ratify_t_{run}_{WORKER}_live"]
    if ENGINE == "postgresql":
        urls = _postgres_databases(names)
    elif ENGINE == "sqlite":
        directory = tmp_path_factory.mktemp("sqlite")
        urls = [f"sqlite:///{directory / (name + '.db')}" for name in names]
    else:
        raise pytest.UsageError(f"RATIFY_TEST_DB must be sqlite or postgresql, not {ENGINE!r}")
    for url in urls:
        upgrade(url)
    yield {"rollback": urls[0], "live": urls[1]}
    if ENGINE == "postgresql":
        _drop_postgres_databases(names)


@pytest.fixture(scope="session")
def engine(database_urls: dict[str, str]) -> Iterator[Engine]:
    engine = create_db_engine(database_urls["rollback"], pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[object]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def sessions(connection: object) -> sessionmaker[Session]:
    """Sessions that join the test's outer transaction: their commits are savepoints."""
    return sessionmaker(
        bind=connection,  # type: ignore[arg-type]
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def settings(base_settings: Settings, database_urls: dict[str, str]) -> Settings:
    return replace(base_settings, database_url=database_urls["rollback"])


@pytest.fixture
def app(settings: Settings, sessions: sessionmaker[Session]) -> Starlette:
    return create_app(settings, sessions=sessions)


class LedgerClient(TestClient):
    """A test client that records every secret it is handed, for the log check."""

    ledger: SecretLedger

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        url = str(kwargs.get("url", args[1] if len(args) > 1 else ""))
        path = urlsplit(url).path
        if path.startswith("/v/"):  # a personal link: its credential must never be logged
            self.ledger.add(parse_credential(path.removeprefix("/v/")))
        data = kwargs.get("data")
        if isinstance(data, dict):  # nor a password typed into a form
            for name, value in data.items():
                if "password" in name and isinstance(value, str):
                    self.ledger.add(value)
        response = super().request(*args, **kwargs)
        self.ledger.requests += 1
        for item in [*response.history, response]:
            for header in item.headers.get_list("set-cookie"):
                self.ledger.add(header.split(";")[0].partition("=")[2])
            if "text/html" in item.headers.get("content-type", ""):
                self.ledger.add_tokens_in(item.text)
        return response


def make_client(app: Starlette, ledger: SecretLedger, **kwargs: object) -> LedgerClient:
    client = LedgerClient(app, base_url="http://testserver", **kwargs)  # type: ignore[arg-type]
    client.ledger = ledger
    return client


@pytest.fixture
def client(app: Starlette, secret_ledger: SecretLedger) -> Iterator[LedgerClient]:
    with make_client(app, secret_ledger, follow_redirects=False) as test_client:
        yield test_client


# -- the live database -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_engine(database_urls: dict[str, str]) -> Iterator[Engine]:
    engine = create_db_engine(database_urls["live"], pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture
def live_sessions(live_engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Committed data, seen by every connection; every table is emptied afterwards."""
    yield sessionmaker(live_engine, expire_on_commit=False)
    with live_engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


@pytest.fixture(scope="session")
def live_settings(base_settings: Settings, database_urls: dict[str, str]) -> Settings:
    return replace(base_settings, database_url=database_urls["live"])


@pytest.fixture(scope="session")
def live_server(live_settings: Settings, live_engine: Engine) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, against the live database."""
    from ratify.db import make_sessionmaker

    app = create_app(live_settings, sessions=make_sessionmaker(live_engine))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


# -- browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    """Pages opened by pytest-playwright resolve relative addresses against the live server.
    (Defining it here also replaces pytest-playwright's fallback, which pytest 9 deprecates.)"""
    return live_server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, object]) -> dict[str, object]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, object]) -> dict[str, object]:
    """A phone for every page: 390×844, touch, mobile layout."""
    return {
        **browser_context_args,
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    }


# -- property tests ------------------------------------------------------------------------------

hypothesis_settings.register_profile("ci", max_examples=60, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=200, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
