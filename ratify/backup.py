"""``ratify backup`` and ``ratify restore``: the whole database in one file, and back.

PostgreSQL: ``pg_dump``'s custom format, one consistent snapshot taken while the app goes on
serving (a vote may be open and members casting), restored by ``pg_restore`` in a single
transaction, all or nothing, into an empty database. SQLite: the online backup API, a
consistent copy while the app writes, restored by the same API into a new database file that
takes the place of an empty one only once it is whole.

A backup is written beside its name and renamed into place once complete, so a failed one
leaves no half-written file where a good one was expected. The server's password goes to
``pg_dump`` and ``pg_restore`` in their environment, never on a command line others can read.

A backup holds the database only. Personal links and the second factors' keyed hashes are
derived with ``RATIFY_SECRET_KEY``: restore where the same key is set, or no link works.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.engine import URL, make_url

from ratify.models import Base

POSTGRES_MAGIC = b"PGDMP"  # pg_dump's custom format
SQLITE_MAGIC = b"SQLite format 3\x00"
# What ``contents`` counts by name; its digest covers every table.
COUNTED = ("organizations", "members", "votes", "voters", "ballots", "receipts", "envelopes")


class BackupError(Exception):
    """A backup or restore refused or failed, with what to do about it; nothing was written."""


@dataclass(frozen=True)
class Contents:
    """What a database holds: rows of the tables in ``COUNTED``, the migration it is at, and
    a digest of every row of every table (in primary-key order), equal for equal data."""

    counts: dict[str, int]
    revision: str | None
    digest: str


def contents(database_url: str) -> Contents:
    url = make_url(database_url)
    # On PostgreSQL every table read in one snapshot, as pg_dump reads them.
    snapshot = {"isolation_level": "REPEATABLE READ"} if _is_postgres(url) else {}
    engine = create_engine(url, **snapshot)
    try:
        digest = hashlib.sha256()
        counts: dict[str, int] = {}
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = 0
                order = list(table.primary_key.columns) or list(table.columns)
                result = conn.execution_options(yield_per=2000).execute(
                    select(table).order_by(*order)
                )
                digest.update(f"\x1e{table.name}\x1f".encode())
                for row in result:
                    digest.update(repr(tuple(row)).encode())
                    rows += 1
                if table.name in COUNTED:
                    counts[table.name] = rows
            counts = {name: counts[name] for name in COUNTED if name in counts}
            revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()
    return Contents(counts, revision, digest.hexdigest())


def backup(database_url: str, path: Path) -> int:
    """Write a backup of the database to ``path`` (which must not exist); its size in bytes."""
    url = make_url(database_url)
    if path.exists():
        raise BackupError(f"{path} exists already: name a new file, so no backup is overwritten")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a folder")
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if _is_postgres(url):
            _run(
                [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                 "--file", str(partial)],
                url,
            )  # fmt: skip
        else:
            source = _sqlite_file(url)
            if not source.is_file():
                raise BackupError(f"there is no SQLite database at {source}")
            with _sqlite(source, read_only=True) as src, _sqlite(partial) as dst:
                src.backup(dst)
                # One file, with no write-ahead log beside it (the app turns it on again).
                dst.execute("PRAGMA journal_mode=DELETE")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path.stat().st_size


def restore(database_url: str, path: Path) -> Contents:
    """Restore the backup at ``path`` into the database, which must be empty; what it holds."""
    url = make_url(database_url)
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head.startswith(POSTGRES_MAGIC):
        kind = "PostgreSQL"
    elif head == SQLITE_MAGIC:
        kind = "SQLite"
    else:
        raise BackupError(f"{path} is not a Ratify backup (neither pg_dump's nor SQLite's)")
    target = "PostgreSQL" if _is_postgres(url) else "SQLite"
    if kind != target:
        raise BackupError(
            f"{path} is a {kind} backup, and RATIFY_DATABASE_URL names a {target} database:"
            f" restore it into a {kind} database"
        )
    if _is_postgres(url):
        _refuse_unless_empty(url)
        _run(
            [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", "--dbname", str(url.database), str(path)],
            url,
        )  # fmt: skip
    else:
        file_ = _sqlite_file(url)
        if not file_.parent.is_dir():
            raise BackupError(f"{file_.parent} is not a folder: make it, then restore")
        if file_.exists():
            _refuse_unless_empty(url)
        partial = file_.with_name(file_.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            with _sqlite(path, read_only=True) as src, _sqlite(partial) as dst:
                src.backup(dst)
            for suffix in ("-wal", "-shm"):  # an empty database's journal, if it kept one
                file_.with_name(file_.name + suffix).unlink(missing_ok=True)
            partial.replace(file_)
        finally:
            partial.unlink(missing_ok=True)
    return contents(database_url)


def _is_postgres(url: URL) -> bool:
    if url.get_backend_name() == "postgresql":
        return True
    if url.get_backend_name() == "sqlite":
        return False
    raise BackupError(f"backups are made of PostgreSQL and SQLite databases, not {url.drivername}")


def _refuse_unless_empty(url: URL) -> None:
    engine: Engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    except Exception as exc:
        raise BackupError(f"the database cannot be reached: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"the database {url.database} already holds tables ({len(tables)}): restore only"
            " into a new, empty database, then point RATIFY_DATABASE_URL at it"
        )


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install PostgreSQL's client tools")
    return found


def _run(command: list[str], url: URL) -> None:
    """A PostgreSQL tool run against ``url``'s server, the connection in its environment."""
    env = {**os.environ, "PGDATABASE": str(url.database or "")}
    for key, given in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username)):
        if given:
            env[key] = str(given)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    for option in ("host", "sslmode", "sslrootcert", "sslcert", "sslkey"):
        value = url.query.get(option)
        if isinstance(value, str):
            env["PGHOST" if option == "host" else "PG" + option.upper()] = value
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if finished.returncode != 0:
        said = (finished.stderr or finished.stdout).strip().splitlines()
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed, nothing was written: {' / '.join(said[-3:])}")


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _sqlite(path: Path, *, read_only: bool = False) -> closing[sqlite3.Connection]:
    """A SQLite connection closed (not only committed) when the block ends."""
    uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "")
    return closing(sqlite3.connect(uri, uri=True))
