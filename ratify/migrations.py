"""Running Alembic from code: ``ratify migrate``, tests and the drift check use this."""

from __future__ import annotations

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


def upgrade(database_url: str, revision: str = "head") -> None:
    from ratify.db import create_db_engine

    engine = create_db_engine(database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Every app container may run `ratify migrate` at start: one at a time.
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATE_LOCK})
            command.upgrade(alembic_config(connection=connection), revision)
    finally:
        engine.dispose()
