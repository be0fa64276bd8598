"""Running Alembic from code: ``ratify migrate``, tests and the drift check use this."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from ratify.settings import PROJECT_ROOT

MIGRATE_LOCK = 0x7261_7469_6679  # "ratify": any fixed number, the same in every process


def alembic_config(database_url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The migration this code brings a database to."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str, revision: str = "head") -> None:
    _run(database_url, lambda config: command.upgrade(config, revision))


def downgrade(database_url: str, revision: str) -> None:
    _run(database_url, lambda config: command.downgrade(config, revision))


def _run(database_url: str, step: Callable[[Config], None]) -> None:
    from ratify.db import create_db_engine

    engine = create_db_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite changes a table by copying it to a new one and dropping the old: with
                # foreign keys on, dropping a table other rows refer to fails (or would empty
                # them). The pragma only takes effect outside a transaction, so it is set
                # before one begins, and the keys are checked whole before the commit.
                _pragma(connection, "foreign_keys=OFF")
            try:
                with connection.begin():
                    if not sqlite:
                        # Every app container may run `ratify migrate` at start: one at a time.
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATE_LOCK}
                        )
                    step(alembic_config(connection=connection))
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"foreign keys broken by the migration: {broken}")
            finally:
                if sqlite:
                    _pragma(connection, "foreign_keys=ON")
    finally:
        engine.dispose()


def _pragma(connection: Connection, pragma: str) -> None:
    """On the driver's connection, outside any transaction (where SQLite ignores it)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA {pragma}")
