"""Big voter lists frozen by the worker: the vote's page says so, nothing about the vote can
change meanwhile, and a refusal or a failure leaves a draft that says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.audit.models import AuditEvent
from ratify.jobs import registry
from ratify.jobs.models import Job, JobStatus
from ratify.jobs.worker import Worker
from ratify.settings import Settings
from ratify.votes import services as votes
from ratify.votes.models import Vote, Voter, VoteStatus
from tests.helpers import csrf_from, login
from tests.votes.support import Union, make_union, ready_vote


@pytest.fixture
def settings(base_settings: Settings, database_urls: dict[str, str]) -> Settings:
    """Organizations of more than five members have their lists frozen by the worker."""
    return replace(
        base_settings, database_url=database_urls["rollback"], freeze_in_request_members=5
    )


def _worker(sessions: sessionmaker[Session], settings: Settings) -> Worker:
    return Worker(sessions, handlers=registry.handlers(settings))


def _schedule(client, u: Union, vote: Vote):  # type: ignore[no-untyped-def]
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    return client.post(f"{page}/schedule", data={"csrf_token": csrf_from(client, page)})


def _voters(db: Session, vote: Vote) -> int:
    return db.scalar(select(func.count()).select_from(Voter).where(Voter.vote_id == vote.id)) or 0


def test_a_big_list_is_frozen_by_the_worker_while_the_page_says_so(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)  # 10 members: more than the 5 frozen in the request
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    response = _schedule(client, u, vote)
    assert response.status_code == 303 and response.headers["location"] == page
    db.expire_all()
    assert db.get_one(Vote, vote.id).status == VoteStatus.DRAFT and _voters(db, vote) == 0
    shown = client.get(page).text
    assert "Freezing the voter list from the roster" in shown
    assert 'id="progress"' in shown and "/static/progress.js" in shown
    assert "Edit the set-up" not in shown and "/schedule" not in shown
    # Nothing about the vote changes meanwhile, and a second request queues nothing more.
    held = votes.get_vote(db, u.org, vote.id)
    with pytest.raises(votes.Conflict):
        votes.update_vote(
            db, u.org, held, actor=u.staff,
            fields=votes.saved_fields(held, [c.id for c in u.committee]),
        )  # fmt: skip
    assert _schedule(client, u, vote).status_code == 409
    assert db.scalars(select(Job.kind)).all() == [votes.FREEZE_TASK]

    assert _worker(sessions, settings).drain() == 1
    db.expire_all()
    scheduled = db.get_one(Vote, vote.id)
    assert scheduled.status == VoteStatus.SCHEDULED and scheduled.freeze_job_id is None
    assert _voters(db, vote) == 10 and scheduled.voter_fingerprint  # everyone the rule saw
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.scheduled")).one()
    assert event.actor_id == u.staff.id  # who asked, not the worker
    shown = client.get(page).text
    assert "Freezing the voter list" not in shown and 'id="progress-done"' in shown
    assert "Eligible: 9 · challenged: 0 · excluded: 1" in shown


def test_a_small_list_is_frozen_in_the_request(db: Session, client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db, rn_members=2, tech_members=1)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    assert _schedule(client, u, vote).status_code == 303
    db.expire_all()
    assert db.get_one(Vote, vote.id).status == VoteStatus.SCHEDULED
    assert db.scalar(select(func.count()).select_from(Job)) == 0


def test_a_refusal_in_the_worker_leaves_a_draft_that_says_why(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    assert _schedule(client, u, vote).status_code == 303
    # The window closes before the worker gets to it.
    past = datetime.now(UTC) - timedelta(hours=1)
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(opens_at=past - timedelta(days=1), closes_at=past)
    )
    assert _worker(sessions, settings).drain() == 1
    db.expire_all()
    refused = db.get_one(Vote, vote.id)
    assert refused.status == VoteStatus.DRAFT and refused.freeze_job_id is None
    assert _voters(db, vote) == 0
    shown = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "The vote was not scheduled: The window has already closed" in shown
    assert "Edit the set-up" in shown  # a draft again, to put right


def test_a_freeze_whose_worker_died_frees_the_vote(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    """The job was marked dead (its worker killed on every attempt): the vote is a draft
    again, with a message, rather than held forever."""
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    assert _schedule(client, u, vote).status_code == 303
    db.execute(update(Job).values(status=JobStatus.DEAD))
    shown = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "The worker could not freeze the voter list" in shown
    assert "Freezing the voter list from the roster" not in shown
    db.expire_all()
    assert db.get_one(Vote, vote.id).freeze_job_id is None
    assert _schedule(client, u, vote).status_code == 303  # and it can be asked again
    assert db.scalar(select(func.count()).select_from(Job)) == 2


def test_a_failing_freeze_is_retried_then_given_up_with_a_message(
    db: Session, sessions: sessionmaker[Session], settings: Settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = ready_vote(db, u)
    assert not votes.request_schedule(
        db, u.org, vote, actor=u.staff, secret_key=settings.secret_key, in_request_members=5
    )
    job_id = vote.freeze_job_id
    db.flush()

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("ratify.votes.voters.freeze", broken)
    worker = _worker(sessions, settings)
    for attempt in range(1, votes.FREEZE_ATTEMPTS + 1):
        db.execute(update(Job).values(run_after=datetime.now(UTC)))  # no waiting for backoff
        assert worker.run_once()
        db.expire_all()
        job = db.get_one(Job, job_id)
        held = db.get_one(Vote, vote.id)
        if attempt < votes.FREEZE_ATTEMPTS:
            assert job.status == JobStatus.QUEUED and "disk full" in (job.last_error or "")
            assert held.freeze_job_id == job_id  # still waiting for the next attempt
    assert job.status == JobStatus.DONE
    assert held.status == VoteStatus.DRAFT and held.freeze_job_id is None
    assert held.freeze_error == votes.FREEZE_FAILED and _voters(db, vote) == 0
