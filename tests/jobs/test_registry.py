from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts import services as accounts
from ratify.accounts.models import PasswordToken, PasswordTokenPurpose
from ratify.db import unit_of_work, utcnow
from ratify.jobs import registry
from ratify.jobs.worker import Worker
from ratify.throttle import services as throttle
from ratify.throttle.models import ThrottleHit
from tests.factories import make_user


def test_the_worker_ticks_purge_old_throttle_hits_and_links(
    sessions: sessionmaker[Session], settings
) -> None:  # type: ignore[no-untyped-def]
    long_ago = utcnow() - timedelta(days=60)
    with unit_of_work(sessions) as db:
        throttle.add_hit(db, "old-key", now=long_ago)
        throttle.add_hit(db, "fresh-key")
        user = make_user(db, password=None)
        old = accounts.issue_password_token(db, user, PasswordTokenPurpose.SET, 60)
        db.scalars(select(PasswordToken)).one().expires_at = long_ago
    worker = Worker(sessions, handlers=registry.handlers(settings), ticks=registry.ticks(settings))
    assert sorted(worker.run_due_ticks()) == [
        "db.optimize",
        "notices.campaigns",
        "password_tokens.purge",
        "roster_uploads.purge",
        "throttle.purge",
        "votes.mix",
        "votes.open_close",
    ]
    with unit_of_work(sessions) as db:
        assert db.scalars(select(ThrottleHit.key)).all() == ["fresh-key"]
        assert db.execute(select(func.count()).select_from(PasswordToken)).scalar_one() == 0
    assert old
