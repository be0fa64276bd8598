"""The explicit list of job handlers and scheduled ticks that ``ratify worker`` runs.

Votes open and close here, big voter lists are frozen, the ballot box is mixed, campaigns
are queued, and the outbox of notices is sent.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts import services as accounts
from ratify.db import optimize
from ratify.jobs.models import Job
from ratify.jobs.worker import Handler, LongTask, Poller, Tick
from ratify.notices import campaigns, outbox
from ratify.rosters import imports
from ratify.rosters.tasks import roster_tasks
from ratify.settings import Settings
from ratify.throttle import services as throttle
from ratify.votes import casting
from ratify.votes import services as votes

MIX_MINUTES = 3


def handlers(settings: Settings) -> dict[str, Handler | LongTask]:
    def freeze_voter_list(db: Session, job: Job) -> None:
        votes.freeze_job(db, job, secret_key=settings.secret_key)

    return {
        **roster_tasks(settings),
        votes.FREEZE_TASK: freeze_voter_list,
        campaigns.QUEUE_TASK: campaigns.queue_job,
    }


def pollers(settings: Settings, sessions: sessionmaker[Session], worker_id: str) -> list[Poller]:
    """The outbox, with a sender for each channel this installation has set up."""
    senders = outbox.configured_senders(settings)
    if not senders:
        return []
    return [outbox.Outbox(sessions, settings, senders, worker_id=worker_id)]


def ticks(settings: Settings) -> list[Tick]:
    window = timedelta(seconds=settings.login_throttle_window)

    # Hits are kept as long as the longest window looks back: logins (twice their window),
    # and an hour of sign-ups per address (community.people.SIGNUP_WINDOW).
    kept = max(window * 2, throttle.LONGEST_WINDOW)

    def purge_throttle(db: Session) -> None:
        throttle.purge_expired(db, older_than=kept)

    def purge_password_tokens(db: Session) -> None:
        accounts.purge_old_tokens(db, older_than=timedelta(days=30))

    def purge_uploads(db: Session) -> None:
        imports.purge_old_uploads(db)

    def open_and_close_votes(db: Session) -> None:
        votes.advance_due(db)

    def queue_due_campaigns(db: Session) -> None:
        campaigns.start_due(db)

    def mix_ballot_boxes(db: Session) -> None:
        for vote_id in casting.votes_to_mix(db):
            casting.mix(db, vote_id)

    return [
        # Votes open and close on time (each vote's pages also check on every request).
        Tick("votes.open_close", timedelta(seconds=30), open_and_close_votes),
        # DESIGN.md §4 rule 1: what was cast since the last mix is rewritten in random order,
        # in this tick's own transaction, every few minutes while a vote is open and once
        # more after it closes (a closed vote's last ballots are still unmixed).
        Tick("votes.mix", timedelta(minutes=MIX_MINUTES), mix_ballot_boxes),
        # Scheduled notices go out on time (each then becomes a queuing job).
        Tick("notices.campaigns", timedelta(seconds=30), queue_due_campaigns),
        Tick("db.optimize", timedelta(hours=1), optimize),
        Tick("throttle.purge", timedelta(minutes=10), purge_throttle),
        Tick("password_tokens.purge", timedelta(hours=6), purge_password_tokens),
        Tick("roster_uploads.purge", timedelta(hours=6), purge_uploads),
    ]
