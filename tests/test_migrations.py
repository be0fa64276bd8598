"""The schema is made only by Alembic, on both engines, and matches the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from alembic import command
from ratify.migrations import alembic_config
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
