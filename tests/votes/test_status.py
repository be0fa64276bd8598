"""draft → scheduled → open → closed: by whom, when by itself, what is then fixed, and the
administrator's extension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.audit.services import verify_chain
from ratify.errors import Conflict
from ratify.jobs.registry import ticks
from ratify.jobs.worker import Worker
from ratify.votes import services as votes
from ratify.votes.models import Vote, VoteKind, Voter, VoteStatus
from tests.helpers import csrf_from, login
from tests.votes.support import PDF, fields_for, make_union, ready_vote


def _actions(db: Session, vote: Vote) -> list[str]:
    stmt = (
        select(AuditEvent.action)
        .where(AuditEvent.object_id == str(vote.id))
        .order_by(AuditEvent.seq)
    )
    return list(db.scalars(stmt))


def _set_window(db: Session, vote: Vote, opens: datetime, closes: datetime) -> None:
    db.execute(update(Vote).where(Vote.id == vote.id).values(opens_at=opens, closes_at=closes))
    db.expire_all()


def test_scheduling_lists_what_is_missing_first(db: Session, client) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    text = client.get(page).text
    assert "Set the voting window." in text and "Set the eligibility rule" in text
    assert "Write the agreement&#39;s summary in each ballot language." in text
    response = client.post(page + "/schedule", data={"csrf_token": csrf_from(client, page)})
    assert response.status_code == 400 and "Set the voting window." in response.text
    db.expire_all()
    assert votes.get_vote(db, u.org, vote.id).status == VoteStatus.DRAFT
    assert db.scalar(select(func.count()).select_from(Voter)) == 0


def test_staff_schedule_then_the_set_up_is_fixed_until_returned_to_draft(
    db: Session, client
) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    assert (
        client.post(page + "/schedule", data={"csrf_token": csrf_from(client, page)}).status_code
        == 303
    )
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    assert vote.status == VoteStatus.SCHEDULED and vote.scheduled_at is not None
    scheduled = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.scheduled")).one()
    assert (
        scheduled.data["eligible"] == 9 and scheduled.data["fingerprint"] == vote.voter_fingerprint
    )
    assert sorted(scheduled.data["committee"]) == sorted(str(c.id) for c in u.committee)
    # Fixed: the form redirects, the services refuse with a 409 and say why.
    assert client.get(page + "/edit").status_code == 303
    token = csrf_from(client, page)
    refused = client.post(page + "/edit", data={"csrf_token": token, "title": "changed"})
    assert refused.status_code == 409 and "Return it to draft to change it." in refused.text
    files = {"full_text": ("ta.pdf", PDF, "application/pdf")}
    assert (
        client.post(
            page + "/documents/en", data={"csrf_token": token, "summary": "x"}, files=files
        ).status_code
        == 409
    )
    # Back to draft drops the frozen list.
    assert client.post(page + "/unschedule", data={"csrf_token": token}).status_code == 303
    db.expire_all()
    assert votes.get_vote(db, u.org, vote.id).status == VoteStatus.DRAFT
    assert db.scalar(select(func.count()).select_from(Voter).where(Voter.vote_id == vote.id)) == 0
    assert _actions(db, vote)[-2:] == ["vote.scheduled", "vote.unscheduled"]


def test_a_vote_opens_and_closes_by_itself_on_the_next_request(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key="k" * 32)
    now = datetime.now(UTC)
    _set_window(db, vote, now - timedelta(minutes=1), now + timedelta(hours=1))
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    assert "Status: Open" in client.get(page).text
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    assert vote.status == VoteStatus.OPEN and vote.opened_at is not None
    opened = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.opened")).one()
    assert opened.actor_id is None and opened.actor_label == "system"
    assert opened.data["fingerprint"] == vote.voter_fingerprint
    # Once open, nothing about the question, documents, rule or committee changes.
    with pytest.raises(Conflict) as refused:
        votes.update_vote(db, u.org, vote, actor=u.staff, fields=fields_for(u, vote))
    assert "can no longer change" in refused.value.message
    with pytest.raises(Conflict):
        votes.save_document(db, u.org, vote, actor=u.staff, language="en", summary="x", pdf=None)
    with pytest.raises(Conflict):
        votes.unschedule(db, u.org, vote, actor=u.staff)
    _set_window(db, vote, now - timedelta(hours=2), now - timedelta(seconds=1))
    assert "Status: Closed" in client.get(page).text
    assert _actions(db, vote)[-2:] == ["vote.opened", "vote.closed"]
    assert verify_chain(db, u.org.id).ok


def test_the_worker_tick_opens_and_closes_votes_once(db: Session, sessions, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key="k" * 32)
    now = datetime.now(UTC)
    _set_window(db, vote, now - timedelta(minutes=5), now + timedelta(minutes=5))
    db.commit()  # a savepoint of the test's transaction: the worker's sessions see it
    worker = Worker(
        sessions, handlers={}, ticks=[t for t in ticks(settings) if t.name == "votes.open_close"]
    )
    assert worker.run_due_ticks() == ["votes.open_close"]
    db.expire_all()
    assert votes.get_vote(db, u.org, vote.id).status == VoteStatus.OPEN
    assert votes.advance_due(db, now) == 0  # nothing left to move now
    assert votes.advance_due(db, now + timedelta(minutes=6)) == 1
    votes.advance(db, u.org, votes.get_vote(db, u.org, vote.id), now + timedelta(minutes=7))
    assert _actions(db, vote).count("vote.opened") == 1
    assert _actions(db, vote).count("vote.closed") == 1


def test_two_processes_moving_one_vote_record_it_once(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key="k" * 32)
    now = datetime.now(UTC)
    _set_window(db, vote, now - timedelta(minutes=5), now + timedelta(minutes=5))
    stale = votes.get_vote(db, u.org, vote.id)  # read before another process opened it
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(status=VoteStatus.OPEN)
        .execution_options(synchronize_session=False)
    )
    assert stale.status == VoteStatus.SCHEDULED
    votes.advance(db, u.org, stale, now)
    assert _actions(db, vote).count("vote.opened") == 0  # the other process records it


def test_an_admin_extends_an_open_window_with_a_reason(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key="k" * 32)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    closes = now + timedelta(days=3)
    _set_window(db, vote, now - timedelta(minutes=5), closes)

    def local(moment: datetime) -> str:
        return moment.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%Y-%m-%dT%H:%M")

    page = f"/o/{u.org.slug}/votes/{vote.id}"
    login(client, u.staff.email)
    assert "Extend the window" not in client.get(page).text
    token = csrf_from(client, page)
    assert client.post(page + "/extend", data={"csrf_token": token}).status_code == 403
    client.cookies.clear()
    login(client, u.admin.email)
    token = csrf_from(client, page)

    def extend(when: datetime, reason: str):  # type: ignore[no-untyped-def]
        data = {"csrf_token": token, "closes": local(when), "reason": reason}
        return client.post(page + "/extend", data=data)

    earlier = extend(closes - timedelta(hours=1), "x")
    assert earlier.status_code == 400 and "later than now planned" in earlier.text
    no_reason = extend(closes + timedelta(days=1), " ")
    assert no_reason.status_code == 400 and "Say why the window is extended." in no_reason.text
    too_long = extend(now + timedelta(days=91), "x")
    assert too_long.status_code == 400 and "at most 90 days" in too_long.text
    assert extend(closes + timedelta(days=1), "Text gateway outage").status_code == 303
    db.expire_all()
    assert votes.get_vote(db, u.org, vote.id).closes_at == closes + timedelta(days=1)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.extended")).one()
    assert event.data["reason"] == "Text gateway outage" and event.actor_id == u.admin.id
    assert event.data["closes_at_before"] == closes.isoformat()


def test_only_an_open_vote_is_extended(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    with pytest.raises(Conflict):
        votes.extend(
            db, u.org, vote, actor=u.admin, closes_at=datetime(2031, 1, 1, tzinfo=UTC), reason="x"
        )


def test_many_requests_at_the_window_edge_open_the_vote_once(live_sessions) -> None:  # type: ignore[no-untyped-def]
    """Every page of the vote checks the clock: at the edge, many requests at once find it
    due, and exactly one opens it (a conditional update; the others see it moved)."""
    from ratify.db import unit_of_work
    from ratify.orgs.models import Organization
    from tests.helpers import run_together

    with unit_of_work(live_sessions) as db:
        u = make_union(db)
        vote = ready_vote(db, u)
        votes.schedule(db, u.org, vote, actor=u.staff, secret_key="k" * 32)
        now = datetime.now(UTC)
        _set_window(db, vote, now - timedelta(seconds=1), now + timedelta(hours=1))
        org_id, vote_id = u.org.id, vote.id

    def request(_: int) -> VoteStatus:
        with unit_of_work(live_sessions) as db:
            org = db.get_one(Organization, org_id)
            found = votes.get_vote(db, org, vote_id)
            votes.advance(db, org, found)
            return found.status

    results = run_together(request, 8)
    assert results == [VoteStatus.OPEN] * 8, results
    with live_sessions() as db:
        opened = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.opened")).all()
        assert len(opened) == 1
        assert verify_chain(db, org_id).ok
