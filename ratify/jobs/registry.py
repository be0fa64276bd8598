"""The explicit list of job handlers and scheduled ticks that ``ratify worker`` runs.

Later issues add opening and closing votes, mixing the ballot box and sending notices here.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ratify.accounts.models import PasswordToken
from ratify.db import utcnow
from ratify.jobs.worker import Handler, Tick
from ratify.settings import Settings
from ratify.throttle import services as throttle


def handlers(settings: Settings) -> dict[str, Handler]:
    return {}


def ticks(settings: Settings) -> list[Tick]:
    window = timedelta(seconds=settings.login_throttle_window)

    def purge_throttle(db: Session) -> None:
        throttle.purge_expired(db, older_than=window * 2)

    def purge_password_tokens(db: Session) -> None:
        cutoff = utcnow() - timedelta(days=30)
        db.execute(delete(PasswordToken).where(PasswordToken.expires_at < cutoff))

    return [
        Tick("throttle.purge", timedelta(minutes=10), purge_throttle),
        Tick("password_tokens.purge", timedelta(hours=6), purge_password_tokens),
    ]
