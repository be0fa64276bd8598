"""Alembic environment: runs on a connection handed in by Ratify, or on RATIFY_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from ratify.db import create_db_engine
from ratify.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection):  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from ratify.settings import load_settings

        url = load_settings().database_url
    engine = create_db_engine(url, pool_size=1)
    with engine.begin() as conn:
        run_on(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
