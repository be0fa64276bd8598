"""The demo's vote is a complete draft: staff can preview it and schedule it at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.demo import COMMUNITY_SLUG, UNION_SLUG, load_demo
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


def test_the_demo_loads_while_the_community_is_still_a_day_behind_utc(
    db: Session, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """At 02:00 UTC it is still the evening before in Chicago, where the demo's community is:
    its vote's cutoff date is the community's today, which scheduling accepts, not UTC's."""
    import ratify.orgs.services as org_services

    real = datetime

    class TwoInTheMorningUTC(real):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
            at = real.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
            return at.astimezone(tz) if tz is not None else at.replace(tzinfo=None)

    monkeypatch.setattr(org_services, "datetime", TwoInTheMorningUTC)
    chicago = org_services.org_today(type("Org", (), {"timezone": "America/Chicago"})())  # type: ignore[arg-type]
    assert chicago < real.now(UTC).date()  # the condition this test is about
    load_demo(db, settings)
    community = get_by_slug(db, COMMUNITY_SLUG)
    vote = db.scalars(select(Vote).where(Vote.organization_id == community.id)).one()
    assert vote.status != VoteStatus.DRAFT and vote.cutoff == chicago
