"""The demo's vote is a complete draft: staff can preview it and schedule it at once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.demo import UNION_SLUG, load_demo
from ratify.orgs.services import get_by_slug
from ratify.votes import services as votes
from ratify.votes import voters
from ratify.votes.models import Vote, VoteStatus


def test_the_demo_vote_is_ready_to_schedule(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    load_demo(db, settings)
    union = get_by_slug(db, UNION_SLUG)
    vote = votes.get_vote(
        db, union, db.scalars(select(Vote.id).where(Vote.organization_id == union.id)).one()
    )
    assert votes.missing_for_scheduling(db, vote) == []
    actor = votes.committee_of(db, vote)[0]  # the service leaves roles to the pages
    votes.schedule(db, union, vote, actor=actor, secret_key=settings.secret_key)
    assert vote.status == VoteStatus.SCHEDULED
    assert voters.summarize(db, vote).eligible > 10
