from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from ratify.audit import services as audit
from ratify.db import ascending_uuids, holds_connection, unit_of_work, utcnow
from tests.factories import make_org
from tests.helpers import run_together

SQLITE = os.environ.get("RATIFY_TEST_DB", "sqlite") == "sqlite"


@pytest.mark.skipif(not SQLITE, reason="SQLite connection settings")
def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(live_engine: Engine) -> None:
    with live_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_foreign_keys_are_enforced(db: Session) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(
            text(
                "INSERT INTO staff_roles (id, user_id, organization_id, role, created_at) "
                "VALUES (:id, :u, :o, 'admin', :at)"
            ),
            {"id": "0" * 32, "u": "1" * 32, "o": "2" * 32, "at": utcnow()},
        )


def test_timestamps_come_back_timezone_aware(db: Session) -> None:
    org = make_org(db)
    db.expire(org)
    assert org.created_at.tzinfo is not None and org.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_concurrent_appends_keep_one_unbroken_chain(live_sessions: sessionmaker[Session]) -> None:
    with unit_of_work(live_sessions) as db:
        org = make_org(db)

    def append(n: int) -> None:
        for i in range(10):
            with unit_of_work(live_sessions) as db:
                audit.record(
                    db, organization=org, actor=None, action="test.parallel", data={"n": n, "i": i}
                )

    assert run_together(append, 6) == [None] * 6
    with unit_of_work(live_sessions) as db:
        check = audit.verify_chain(db, org.id)
    assert check.ok and check.events == 61


def test_a_reading_transaction_does_not_hold_up_writers(
    live_sessions: sessionmaker[Session],
) -> None:
    """A long check of a roster file only reads: on SQLite it must not take the write lock
    every other transaction takes, or every page would wait for it (and fail after the busy
    timeout)."""
    from ratify.db import read_unit_of_work

    with read_unit_of_work(live_sessions) as reader:
        before = reader.execute(text("SELECT count(*) FROM organizations")).scalar_one()
        with unit_of_work(live_sessions) as writer:
            make_org(writer)  # would wait 30 s for the busy timeout, then fail, if locked
    with unit_of_work(live_sessions) as db:
        assert db.execute(text("SELECT count(*) FROM organizations")).scalar_one() == before + 1


def test_ascending_uuids_are_fresh_random_version_4_keys_in_order() -> None:
    first, second = ascending_uuids(2000), ascending_uuids(2000)
    assert first == sorted(first) and second == sorted(second)
    keys = [uuid.UUID(hex=key) for key in first + second]
    assert len(set(keys)) == 4000  # none repeated, within a call or across calls
    assert {key.version for key in keys} == {4} and {key.variant for key in keys} == {uuid.RFC_4122}
    assert all(len(key) == 32 for key in first)  # the hex digits a Uuid(as_uuid=False) takes


def test_a_session_holds_a_connection_from_its_first_statement_to_its_end(
    live_sessions: sessionmaker[Session],
) -> None:
    """What the cast asks before it takes a connection of its own (``casting.cast``)."""
    with unit_of_work(live_sessions) as db:
        assert not holds_connection(db)  # begun, but nothing run yet
        db.execute(text("SELECT 1"))
        assert holds_connection(db)
        with db.begin_nested():
            assert holds_connection(db)
        assert holds_connection(db)  # a savepoint's end is not the transaction's
    assert not holds_connection(db)
    with live_sessions() as db:
        db.execute(text("SELECT 1"))
        db.rollback()
        assert not holds_connection(db)
        db.execute(text("SELECT 1"))
        assert holds_connection(db)
