"""Database layer: declarative base, column types, engines for SQLite and PostgreSQL, unit of work.

Services take a ``Session`` and ``flush()``; only the unit of work commits, once per request or job.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from itertools import islice
from typing import Any, ClassVar

from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    MetaData,
    create_engine,
    event,
    text,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql import Insert
from sqlalchemy.types import TypeDecorator, Uuid

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both engines (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def create_db_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, pre_ping: bool = True
) -> Engine:
    """An engine tuned for its database: WAL, foreign keys and a busy timeout on SQLite.

    ``pre_ping`` checks each PostgreSQL connection with a round trip as it leaves the pool.
    The web app turns it off (a round trip on every request): there a request that meets a
    connection the server dropped answers 503, SQLAlchemy discards the whole pool, and the
    next request is served on a fresh one. The worker and the CLI keep it, so that a job is
    not failed (and an attempt spent) for a connection that died while idle."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(
        url,
        echo=echo,
        # Error messages (and so logs) never quote values: emails, hashes, credentials.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )


READ_ONLY = "ratify_read_only"


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (so SAVEPOINT works).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A snapshot to read (WAL): no write lock, so writers are not held up meanwhile.
            connection.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front: a transaction that reads and then writes
        # would otherwise fail at once with SQLITE_BUSY when another writer got there first.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_CONNECTED = "ratify_connected"


@event.listens_for(Session, "after_begin")
def _note_connection(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info[_CONNECTED] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_connection(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTED, None)


def holds_connection(session: Session) -> bool:
    """Whether the session's transaction has taken its connection yet (it takes one at its
    first statement, and keeps it until it ends)."""
    return _CONNECTED in session.info


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that only reads, rolled back at the end. On SQLite it takes no write
    lock (every other transaction takes it at once), so a long check of a 300,000-row file
    does not hold up every page meanwhile."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
        finally:
            session.rollback()


def check_schema(session: Session) -> None:
    """Raise unless the database answers and has been migrated (for health checks)."""
    session.execute(text("SELECT version_num FROM alembic_version"))


def analyze(session: Session, *tables: Any) -> None:
    """Refresh the planner's statistics on tables a bulk load has just grown (as after a
    restore): it would otherwise plan the next queries for the tables' old sizes (nested
    loops over 300,000 rows on PostgreSQL; on SQLite, a scan of a whole unit's assignments
    for each member). In the caller's transaction."""
    names = [getattr(t, "__table__", t).name for t in tables]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE " + ", ".join(f'"{name}"' for name in names)))
    else:
        for name in names:
            session.execute(text(f'ANALYZE "{name}"'))


def optimize(session: Session) -> None:
    """Refresh SQLite's statistics (ANALYZE: under a second for a 300,000-member roster), so
    rosters that grew a member at a time are planned for their size too. (PRAGMA optimize
    only looks at tables the same connection has queried.) PostgreSQL's autovacuum does
    this by itself."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("ANALYZE"))


_VERSION_BITS = (0xF000 << 64) | (0xC000 << 48)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 9562 variant


def ascending_uuids(count: int) -> list[str]:
    """``count`` new random (version 4) UUIDs in ascending order, as 32 hex digits (what a
    ``Uuid(as_uuid=False)`` column takes, and COPY reads): keys for rows inserted in bulk,
    which then fill their indexes page by page instead of at random places. (Making 300,000
    ``uuid.UUID`` objects would take longer than PostgreSQL takes to store them.)"""
    raw = secrets.token_bytes(16 * count)
    numbers = sorted(
        int.from_bytes(raw[i : i + 16]) & ~_VERSION_BITS | _VERSION_4
        for i in range(0, 16 * count, 16)
    )
    return [f"{number:032x}" for number in numbers]


def bulk_insert(
    session: Session, model: Any, rows: list[dict[str, Any]], batch: int = 5000
) -> None:
    """Many new rows at once, in the caller's transaction: COPY on PostgreSQL (an order of
    magnitude faster than INSERTs), multi-row INSERTs elsewhere. Every row has the same keys."""
    if not rows:
        return
    columns = list(rows[0])
    copy_rows(
        session, model, columns, [[_plain(row[name]) for name in columns] for row in rows], batch
    )


def copy_rows(
    session: Session,
    model: Any,
    columns: list[str],
    rows: Iterable[Sequence[Any]],
    batch: int = 5000,
) -> None:
    """``bulk_insert`` of rows given as value sequences in the order of ``columns`` (from a
    generator, say, so they are never all in memory), each value as COPY writes it: enum
    members as their values; keys as ``uuid.UUID`` or as 32 hex digits."""
    table = getattr(model, "__table__", model)
    if session.get_bind().dialect.name != "postgresql":
        keys = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, Uuid)]
        for chunk in _batched(rows, batch):
            values = [dict(zip(columns, _as_uuids(row, keys), strict=True)) for row in chunk]
            session.execute(sa_insert(table), values)
        return
    session.flush()
    names = ", ".join(f'"{table.c[name].name}"' for name in columns)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def _batched(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _as_uuids(row: Sequence[Any], keys: list[int]) -> list[Any]:
    """Hex-digit keys as the ``uuid.UUID`` values SQLAlchemy's Uuid type binds."""
    values = list(row)
    for i in keys:
        if isinstance(values[i], str):
            values[i] = uuid.UUID(hex=values[i])
    return values


def _plain(value: Any) -> Any:
    """What COPY writes: enum members by value, UTC timestamps as they are stored."""
    if isinstance(value, Enum):
        return value.value
    return value


def insert_ignoring_conflicts(session: Session, table: Any, **values: Any) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either engine."""
    stmt: Insert
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    session.execute(stmt)
