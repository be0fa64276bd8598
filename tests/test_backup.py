"""``ratify backup`` and ``ratify restore`` on the suite's database engine: a backup taken
while a vote is open restores, into an empty database, exactly what was there when it was
taken; every refusal writes nothing."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ratify import backup as backups
from ratify.cli import main
from ratify.db import create_db_engine, make_sessionmaker
from ratify.settings import Settings
from ratify.votes import casting
from ratify.votes.models import Ballot, Receipt, Voter
from tests.conftest import ENGINE, _drop_postgres_databases, _postgres_databases
from tests.votes.test_casting import _cast_committed

ON_POSTGRES = os.environ.get("RATIFY_TEST_DB", "sqlite") == "postgresql"


@pytest.fixture
def empty_url(database_urls: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even the migrations' tables."""
    if ENGINE == "postgresql":
        name = f"{make_url(database_urls['live']).database}_restored"
        [url] = _postgres_databases([name])
        yield url
        _drop_postgres_databases([name])
    else:
        yield f"sqlite:///{tmp_path / 'restored.db'}"


def _cast(sessions: sessionmaker[Session], vote_id: uuid.UUID, voter_ids: list[uuid.UUID]) -> None:
    for n, voter_id in enumerate(voter_ids):  # one transaction each, as the page does
        with sessions.begin() as db:
            casting.cast(db, casting.Seat(voter_id, 1, vote_id), "yes" if n % 2 else "no")


def _box(url: str) -> tuple[int, int, int]:
    engine = create_db_engine(url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as db:
            return (
                db.scalar(select(func.count()).select_from(Ballot)) or 0,
                db.scalar(select(func.count()).select_from(Receipt)) or 0,
                db.scalar(select(func.count()).select_from(Voter).where(Voter.has_voted)) or 0,
            )
    finally:
        engine.dispose()


def test_a_backup_taken_mid_vote_restores_the_same_votes_voters_and_ballot_box(
    live_sessions: sessionmaker[Session], live_settings: Settings, empty_url: str, tmp_path: Path
) -> None:
    live = live_settings.database_url
    vote_id, ids = _cast_committed(live_sessions, live_settings.secret_key, 12)
    _cast(live_sessions, vote_id, ids[:5])
    taken = backups.contents(live)
    assert taken.counts["votes"] == 1 and taken.counts["voters"] >= 12
    assert (taken.counts["ballots"], taken.counts["receipts"]) == (5, 5)
    path = tmp_path / "ratify.backup"
    assert backups.backup(live, path) == path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratify.backup"]  # nothing beside it

    _cast(live_sessions, vote_id, ids[5:8])  # the vote goes on after the backup
    assert backups.contents(live).digest != taken.digest

    restored = backups.restore(empty_url, path)
    assert restored == taken  # the same rows, every table, and the same migration
    assert backups.contents(empty_url) == taken
    # The restored database serves: the members who had not voted by then still can.
    engine = create_db_engine(empty_url, pool_size=1)
    try:
        _cast(make_sessionmaker(engine), vote_id, ids[5:6])
    finally:
        engine.dispose()
    assert _box(empty_url) == (6, 6, 6)


@pytest.mark.skipif(not ON_POSTGRES, reason="pg_dump while casts commit")
@pytest.mark.postgres_only
def test_a_backup_taken_while_members_cast_holds_whole_casts_only(
    live_sessions: sessionmaker[Session], live_settings: Settings, empty_url: str, tmp_path: Path
) -> None:
    """pg_dump reads one snapshot: each cast's three writes are in it or not at all."""
    live = live_settings.database_url
    vote_id, ids = _cast_committed(live_sessions, live_settings.secret_key, 300)
    started = threading.Event()

    def casting_on() -> None:
        started.set()
        _cast(live_sessions, vote_id, ids)

    caster = threading.Thread(target=casting_on)
    caster.start()
    started.wait()
    while caster.is_alive() and _box(live)[0] < 20:  # well under way
        pass
    path = tmp_path / "mid.backup"
    backups.backup(live, path)
    cast_after = _box(live)[0]
    caster.join()
    assert _box(live) == (300, 300, 300)
    backups.restore(empty_url, path)
    ballots, receipts, voted = _box(empty_url)
    assert 20 <= ballots <= cast_after < 300  # taken mid-vote, before the last cast
    assert ballots == receipts == voted


def test_backup_and_restore_refuse_what_would_overwrite_or_mix_up_data(
    live_sessions: sessionmaker[Session], live_settings: Settings, empty_url: str, tmp_path: Path
) -> None:
    live = live_settings.database_url
    vote_id, ids = _cast_committed(live_sessions, live_settings.secret_key, 6)
    _cast(live_sessions, vote_id, ids[:2])
    before = backups.contents(live)

    kept = tmp_path / "kept.backup"
    kept.write_bytes(b"an earlier backup")
    with pytest.raises(backups.BackupError, match="exists already"):
        backups.backup(live, kept)
    assert kept.read_bytes() == b"an earlier backup"

    path = tmp_path / "good.backup"
    backups.backup(live, path)
    with pytest.raises(backups.BackupError, match="already holds tables"):
        backups.restore(live, path)  # into a database in use
    assert backups.contents(live) == before

    garbage = tmp_path / "garbage.backup"
    garbage.write_bytes(b"PK\x03\x04 not a database at all")
    with pytest.raises(backups.BackupError, match="not a Ratify backup"):
        backups.restore(empty_url, garbage)
    other = tmp_path / "other-kind.backup"
    other.write_bytes(b"SQLite format 3\x00" if ON_POSTGRES else b"PGDMP\x01\x0e\x00")
    with pytest.raises(backups.BackupError, match="restore it into a"):
        backups.restore(empty_url, other)
    if ON_POSTGRES:  # a restore that fails part way leaves the database as empty as it was
        broken = tmp_path / "broken.backup"
        broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(backups.BackupError, match="pg_restore failed"):
            backups.restore(empty_url, broken)
        missing = make_url(live).set(database=f"ratify_missing_{uuid.uuid4().hex[:8]}")
        with pytest.raises(backups.BackupError, match="pg_dump failed"):
            backups.backup(missing.render_as_string(hide_password=False), tmp_path / "no.backup")
        assert not (tmp_path / "no.backup").exists()
        assert not (tmp_path / "no.backup.partial").exists()
    engine = create_db_engine(empty_url, pool_size=1)
    try:
        from sqlalchemy import inspect

        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []  # nothing written by any refusal
    finally:
        engine.dispose()
    assert backups.restore(empty_url, path) == before


def test_the_commands_back_up_and_restore_and_say_what_was_restored(
    live_sessions: sessionmaker[Session], live_settings: Settings, empty_url: str, tmp_path: Path
) -> None:
    vote_id, ids = _cast_committed(live_sessions, live_settings.secret_key, 4)
    _cast(live_sessions, vote_id, ids[:3])
    env = {
        "RATIFY_DATABASE_URL": live_settings.database_url,
        "RATIFY_VAR_DIR": str(tmp_path),
        "RATIFY_SECRET_KEY": live_settings.secret_key,
    }
    path = tmp_path / "cli.backup"
    made = CliRunner().invoke(main, ["backup", str(path)], env=env)
    assert made.exit_code == 0, made.output
    assert f"backup written to {path}" in made.output
    again = CliRunner().invoke(main, ["backup", str(path)], env=env)
    assert again.exit_code == 1 and "exists already" in again.output

    into_live = CliRunner().invoke(main, ["restore", str(path)], env=env)
    assert into_live.exit_code == 1 and "already holds tables" in into_live.output
    restored = CliRunner().invoke(
        main, ["restore", str(path)], env={**env, "RATIFY_DATABASE_URL": empty_url}
    )
    assert restored.exit_code == 0, restored.output
    assert "ballots 3, receipts 3" in restored.output
    assert backups.contents(empty_url).digest in restored.output
    assert "ratify migrate" not in restored.output  # at this code's migration already
