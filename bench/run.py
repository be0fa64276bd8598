"""Foundation benchmarks: print figures, assert nothing.

    .venv/bin/python bench/run.py                      # SQLite in a temporary directory
    .venv/bin/python bench/run.py --postgres URL       # also PostgreSQL (a scratch database)

Figures: argon2 cost at production parameters; page latency and throughput in-process; audit
append and chain-verification rates (with a raw INSERT of the same rows as baseline); job
throughput through the worker (with a raw UPDATE loop as baseline).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratify.app import create_app
from ratify.audit import services as audit
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.db import create_db_engine, make_sessionmaker, unit_of_work, utcnow
from ratify.jobs.services import enqueue
from ratify.jobs.worker import Worker
from ratify.logs import configure_logging
from ratify.migrations import upgrade
from ratify.orgs.models import OrgKind
from ratify.orgs.services import create_organization
from ratify.security import password_hasher
from ratify.settings import Settings, load_settings


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def show(label: str, value: str) -> None:
    print(f"  {label:<52} {value}")


def bench_argon2(settings: Settings) -> None:
    hasher = password_hasher(settings)
    stored = hasher.hash("correct horse battery staple")
    samples = timed(lambda: hasher.verify(stored, "correct horse battery staple"), 10)
    show(
        f"argon2id verify (t={settings.argon2_time_cost}, m={settings.argon2_memory_kib} KiB)",
        f"{statistics.median(samples) * 1000:.1f} ms median",
    )


def bench_pages(settings: Settings, sessions) -> None:  # type: ignore[no-untyped-def]
    from ratify.accounts import services as accounts

    fast = replace(settings, argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1)
    with unit_of_work(sessions) as db:
        org = create_organization(db, slug="bench", name="Bench Local", kind=OrgKind.UNION)
        added = accounts.add_staff(
            db, org, actor=None, email="b@bench.org", name="B", role=Role.ADMIN, token_max_age=60
        )
        accounts.set_password(db, password_hasher(fast), added.role.user, "bench password 1")
    app = create_app(fast, sessions=sessions)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        client.post(
            "/login",
            data={"email": "b@bench.org", "password": "bench password 1", "csrf_token": token},
        )
        for path in ("/healthz", "/account", "/o/bench/", "/o/bench/staff", "/o/bench/audit"):
            assert client.get(path).status_code == 200  # warm up, and signed in
            samples = timed(lambda p=path: client.get(p), 300)  # type: ignore[misc]
            p95 = statistics.quantiles(samples, n=20)[-1]
            show(
                f"GET {path} (in-process, 1 client)",
                f"{len(samples) / sum(samples):7.0f} req/s   p50 {statistics.median(samples) * 1000:.2f} ms"
                f"   p95 {p95 * 1000:.2f} ms",
            )


def bench_audit(sessions, n: int) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as db:
        org = create_organization(
            db, slug=f"audit-{uuid.uuid4().hex[:6]}", name="A", kind=OrgKind.UNION
        )
    start = time.perf_counter()
    with unit_of_work(sessions) as db:
        for i in range(n):
            audit.record(db, organization=org, actor=None, action="bench.event", data={"i": i})
    chained = time.perf_counter() - start

    rows = [
        {
            "id": uuid.uuid4(),
            "chain": "raw-baseline",
            "seq": i,
            "actor_label": "x",
            "action": "bench.event",
            "data": {"i": i},
            "created_at": utcnow(),
            "prev_hash": "0" * 64,
            "hash": "0" * 64,
        }
        for i in range(n)
    ]
    start = time.perf_counter()
    with unit_of_work(sessions) as db:
        for row in rows:
            db.execute(insert(AuditEvent).values(**row))
    raw = time.perf_counter() - start
    show(
        f"audit append, {n} events in one transaction",
        f"{n / chained:7.0f} events/s   raw INSERT {n / raw:7.0f} rows/s   ratio {chained / raw:.1f}x",
    )
    start = time.perf_counter()
    with unit_of_work(sessions) as db:
        check = audit.verify_chain(db, org.id)
    assert check.ok
    show(
        "audit chain verification", f"{check.events / (time.perf_counter() - start):7.0f} events/s"
    )


def bench_jobs(sessions, n: int) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as db:
        for _ in range(n):
            enqueue(db, "bench.noop")
    worker = Worker(sessions, handlers={"bench.noop": lambda db, job: None})
    start = time.perf_counter()
    done = worker.drain()
    elapsed = time.perf_counter() - start
    with unit_of_work(sessions) as db:
        ids = list(db.scalars(text("SELECT id FROM jobs")))  # type: ignore[call-overload]
    start = time.perf_counter()
    for job_id in ids:  # baseline: two bare transactions per job, no claim logic
        with unit_of_work(sessions) as db:
            db.execute(text("UPDATE jobs SET status = 'running' WHERE id = :id"), {"id": job_id})
        with unit_of_work(sessions) as db:
            db.execute(text("UPDATE jobs SET status = 'done' WHERE id = :id"), {"id": job_id})
    raw = time.perf_counter() - start
    show(
        f"worker, {n} no-op jobs, one worker",
        f"{done / elapsed:7.0f} jobs/s   raw 2-UPDATE loop {len(ids) / raw:7.0f}/s   ratio {elapsed / raw:.1f}x",
    )


def run(label: str, url: str, settings: Settings, n: int) -> None:
    print(f"\n{label}: {make_url(url).render_as_string(hide_password=True)}")
    upgrade(url)
    engine = create_db_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        bench_pages(replace(settings, database_url=url), sessions)
        bench_audit(sessions, n)
        bench_jobs(sessions, n // 2)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", help="PostgreSQL URL of a server where a scratch database may be created"
    )
    parser.add_argument("-n", type=int, default=2000, help="events/jobs per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {}, var_dir=Path(tmp), secret_key="b" * 48, database_url="sqlite://"
        )
        # One access-log line per request would drown the figures.
        configure_logging(replace(settings, log_level="WARNING"))
        print("Ratify foundation benchmarks")
        bench_argon2(settings)
        run("SQLite", f"sqlite:///{tmp}/bench.db", settings, args.n)
        if args.postgres:
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            name = "ratify_bench"
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = (
                    make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
                )
                run("PostgreSQL", url, settings, args.n)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
