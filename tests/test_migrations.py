"""The schema is made only by Alembic, on both engines, and matches the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from ratify.migrations import MIGRATE_LOCK, alembic_config
from ratify.models import Base


def test_there_is_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1


def test_revisions_are_date_prefixed_and_use_no_app_models() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    for revision in script.walk_revisions():
        path = revision.path
        name = path.rsplit("/", 1)[-1]
        assert name[:8].isdigit(), name
        source = Path(path).read_text(encoding="utf-8")
        assert "import ratify" not in source and "from ratify" not in source, name


def test_upgrade_from_empty_reaches_head_with_no_drift(engine: Engine) -> None:
    """The per-worker database was upgraded from empty by the harness; compare it."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert (
            context.get_current_revision()
            == ScriptDirectory.from_config(alembic_config()).get_current_head()
        )
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(conn).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_downgrade_and_upgrade_again(live_engine: Engine, live_sessions) -> None:  # type: ignore[no-untyped-def]
    with live_engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
    with live_engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    with live_engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    with live_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.skipif(
    os.environ.get("RATIFY_TEST_DB", "sqlite") != "postgresql", reason="PostgreSQL advisory lock"
)
@pytest.mark.postgres_only
def test_migrate_waits_while_another_migrate_runs(database_urls: dict[str, str]) -> None:
    """Every app container may run `ratify migrate` at start: one at a time. While a migration
    holds the lock, another (a separate process, as another container) waits, then finishes."""
    base = make_url(database_urls["live"])
    name = f"{base.database}_race"
    admin = create_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    script = "import sys; from ratify.migrations import upgrade; upgrade(sys.argv[1])"
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATE_LOCK})
            run = subprocess.Popen([sys.executable, "-c", script, url])
            with pytest.raises(subprocess.TimeoutExpired):
                run.wait(timeout=4)  # waiting for the lock, not migrating
            holder.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATE_LOCK})
            holder.commit()
        assert run.wait(timeout=60) == 0
        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert MigrationContext.configure(conn).get_current_revision() == head
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_database_holding_members_downgrades_and_upgrades(
    database_urls: dict[str, str], live_engine: Engine, live_sessions
) -> None:  # type: ignore[no-untyped-def]
    """SQLite changes a table by copying and dropping it: with rows elsewhere referring to it
    (a member's statuses and units), that failed on foreign keys. Existing installs hold
    members; their upgrade must keep them."""
    from datetime import date

    from ratify.migrations import downgrade, upgrade
    from ratify.rosters import services as rosters
    from ratify.rosters.models import EmploymentStatus, MembershipStatus
    from ratify.rosters.services import MemberFields, UnitFields
    from tests.factories import make_org

    with live_sessions.begin() as db:
        org = make_org(db)
        unit = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "N", "", ""))
        rosters.add_member(
            db, org, MemberFields("1", "Ada", "Lovelace"), phone_region="US",
            effective=date(2025, 1, 1), membership=MembershipStatus.MEMBER,
            employment=EmploymentStatus.ACTIVE, units=[unit],
        )  # fmt: skip
    url = database_urls["live"]
    downgrade(url, "0008uploadstate")  # drops members.added_by_import_id
    upgrade(url)
    with live_engine.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("members", "member_status_periods", "unit_assignments")
        ]
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert counts == [1, 2, 1]
