"""Roster import at scale: a generated roster of N members (300,000 by default).

    .venv/bin/python bench/roster_import.py [-n 300000] [--postgres URL] [--sqlite]

Prints, for each engine: seconds for reading + preview and for apply of a first import, then
of a weekly re-import with 2% of rows changed, the eligibility preview on the result, peak RSS,
and (PostgreSQL) a raw COPY of the same rows with the ratio of the first import to it.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratify.db import create_db_engine, make_sessionmaker, unit_of_work
from ratify.migrations import upgrade
from ratify.orgs.models import OrgKind
from ratify.orgs.services import create_organization
from ratify.rosters import eligibility, imports
from ratify.rosters.models import ImportScope
from ratify.rosters.services import UnitFields, create_unit
from ratify.settings import Settings

# As `ratify worker` would: RATIFY_IMPORT_CHECK_PROCESSES, or the default.
PROCESSES = int(
    os.environ.get("RATIFY_IMPORT_CHECK_PROCESSES") or Settings().import_check_processes
)

FIRST = ["Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Iris", "Jamal", "Keiko"]
LAST = ["García", "Okafor", "Wei", "Kowalski", "Haddad", "Yusuf", "Lindqvist", "Sato", "Moreau"]
HEADER = "Member ID,First Name,Last Name,Email,Phone,Hire Date,Status,Worksite\n"


def roster_csv(n: int, changed_every: int = 0, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    out.write(HEADER)
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        site = f"Site {i % 40}"
        if changed_every and i % changed_every == 0:
            site = f"Moved {i % 7}"
        out.write(
            f"{100000 + i},{first},{last},{first.lower()}.{i}@members.example,"
            f"+1312{5550000 + i % 10000:07d},2015-0{1 + i % 9}-1{i % 9},member,{site}\n"
        )
    return out.getvalue().encode()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_text() -> str:
    """Peak RSS of this process and of the largest process that checked rows for it."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"peak RSS {rss_mb():.0f} MB" + (
        f" (checkers {children:.0f} MB each)" if children else ""
    )


def run_import(sessions, org_id, unit_id, data: bytes, label: str, effective: date) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    roster = imports.read_roster(f"{label}.csv", data)
    with unit_of_work(sessions) as db:
        from ratify.orgs.models import Organization
        from ratify.rosters.models import BargainingUnit

        org = db.get_one(Organization, org_id)
        unit = db.get_one(BargainingUnit, unit_id)
        result = imports.preview(
            db, org, roster, mapping=imports.guess_mapping(roster.headers),
            scope=ImportScope.UNIT, unit=unit, effective=effective, phone_region="US",
            processes=PROCESSES,
        )  # fmt: skip
        previewed = time.perf_counter()
        imports.apply(db, org, result, actor_label="bench", phone_region="US", confirm_leaving=True)
        applied = time.perf_counter()
    committed = time.perf_counter()
    counts = result.counts()
    print(
        f"  {label:<28} preview {previewed - start:6.1f} s   apply {committed - previewed:6.1f} s"
        f"   total {committed - start:6.1f} s   (new {counts['new']}, changed {counts['changed']},"
        f" unchanged {counts['unchanged']})   {rss_text()}"
    )
    _ = applied


def bench(label: str, url: str, n: int) -> float:
    print(f"\n{label}, {n} members: {make_url(url).render_as_string(hide_password=True)}")
    upgrade(url)
    engine = create_db_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        with unit_of_work(sessions) as db:
            org = create_organization(
                db, slug=f"bench-{uuid.uuid4().hex[:6]}", name="Bench", kind=OrgKind.UNION
            )
            unit = create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
            org_id, unit_id = org.id, unit.id
        first = roster_csv(n)
        start = time.perf_counter()
        run_import(sessions, org_id, unit_id, first, "first import", date(2026, 10, 1))
        first_seconds = time.perf_counter() - start
        run_import(
            sessions,
            org_id,
            unit_id,
            roster_csv(n, changed_every=50),
            "weekly, 2% changed",
            date(2026, 11, 1),
        )
        with unit_of_work(sessions) as db:
            from ratify.orgs.models import Organization

            org = db.get_one(Organization, org_id)
            start = time.perf_counter()
            preview = eligibility.evaluate(
                db,
                org,
                eligibility.EligibilityRule(
                    cutoff=date(2026, 11, 15), unit_ids=frozenset({unit_id}), good_standing=False
                ),
            )
            print(
                f"  eligibility preview          {time.perf_counter() - start:6.1f} s   (eligible {preview.included})   {rss_text()}"
            )
        return first_seconds
    finally:
        engine.dispose()


def raw_copy(url: str, n: int) -> float:
    """The same rows COPY'd into a bare table: the floor any import is measured against."""
    import psycopg

    data = roster_csv(n)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE raw_roster (member_number text, first_name text, last_name text,"
            " email text, phone text, hire_date date, status text, worksite text)"
        )
        start = time.perf_counter()
        with conn.cursor().copy(
            "COPY raw_roster FROM STDIN WITH (FORMAT csv, HEADER true)"
        ) as copy:
            copy.write(data)
        conn.commit()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=300_000)
    parser.add_argument(
        "--postgres", help="URL of a PostgreSQL server where a scratch database may be made"
    )
    parser.add_argument("--sqlite", action="store_true", help="also run on SQLite")
    args = parser.parse_args()
    print(f"rows checked by {PROCESSES} processes (RATIFY_IMPORT_CHECK_PROCESSES)")
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            bench("SQLite", f"sqlite:///{tmp}/bench.db", args.n)
    if args.postgres:
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = "ratify_bench_roster"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        try:
            first = bench("PostgreSQL", url, args.n)
            copy = raw_copy(url, args.n)
            print(
                f"  raw COPY of the same rows    {copy:6.2f} s   first import / COPY = {first / copy:.0f}x"
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
