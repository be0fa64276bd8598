"""The explicit list of job handlers and scheduled ticks that ``ratify worker`` runs.

Later issues add opening and closing votes, mixing the ballot box and sending notices here.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.db import optimize
from ratify.jobs.worker import Handler, LongTask, Tick
from ratify.rosters import imports
from ratify.rosters.tasks import roster_tasks
from ratify.settings import Settings
from ratify.throttle import services as throttle


def handlers(settings: Settings) -> dict[str, Handler | LongTask]:
    return dict(roster_tasks(settings))


def ticks(settings: Settings) -> list[Tick]:
    window = timedelta(seconds=settings.login_throttle_window)

    def purge_throttle(db: Session) -> None:
        throttle.purge_expired(db, older_than=window * 2)

    def purge_password_tokens(db: Session) -> None:
        accounts.purge_old_tokens(db, older_than=timedelta(days=30))

    def purge_uploads(db: Session) -> None:
        imports.purge_old_uploads(db)

    return [
        Tick("db.optimize", timedelta(hours=1), optimize),
        Tick("throttle.purge", timedelta(minutes=10), purge_throttle),
        Tick("password_tokens.purge", timedelta(hours=6), purge_password_tokens),
        Tick("roster_uploads.purge", timedelta(hours=6), purge_uploads),
    ]
