"""Reconciliation: ballots per channel and group against the voters marked voted."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ratify.audit import services as audit
from ratify.votes import casting, reconcile
from ratify.votes.models import (
    Ballot,
    BatchStatus,
    Channel,
    Envelope,
    EnvelopeStatus,
    PaperBatch,
    Receipt,
    SecondFactor,
    Voter,
    VoterStatus,
)
from tests.votes.support import make_union
from tests.votes.test_casting import open_vote, voter


def _figures(found: reconcile.Reconciliation) -> dict[str, tuple[int, ...]]:
    return {
        g.group: (g.online_voters, g.online_ballots, g.receipts, g.paper_voters, g.paper_ballots)
        for g in found.groups
    }


def test_each_channel_and_group_is_reconciled_and_a_mismatch_found(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number in ("1001", "1002", "2001"):  # two nurses (RN), one technician (TECH)
        casting.cast(db, casting.Seat(voter(db, vote, number).id, 1, vote.id), "yes")
    # Struck off on paper, with a confirmed batch of one; an unconfirmed batch counts nothing.
    db.execute(
        update(Voter)
        .where(Voter.id == voter(db, vote, "1003").id)
        .values(has_voted=True, channel=Channel.PAPER)
    )
    for status in (BatchStatus.CONFIRMED, BatchStatus.ENTERED):
        db.add(PaperBatch(vote_id=vote.id, tally_group="RN", counts={"yes": 0, "no": 1},
                          status=status, entered_by_id=u.committee[0].id))  # fmt: skip
    # A challenged voter whose online envelope was accepted: their ballot is in the box.
    challenged = voter(db, vote, "2002")
    db.execute(
        update(Voter)
        .where(Voter.id == challenged.id)
        .values(status=VoterStatus.CHALLENGED, has_voted=True, channel=Channel.ONLINE)
    )
    db.add(Envelope(vote_id=vote.id, voter_id=challenged.id, channel=Channel.ONLINE,
                    status=EnvelopeStatus.ACCEPTED, decided_at=datetime.now(UTC)))  # fmt: skip
    db.add(Ballot(id=casting.uuid.uuid4(), vote_id=vote.id, tally_group="TECH", choice="no"))
    db.add(Receipt(code=casting.new_receipt_code(), vote_id=vote.id, tally_group="TECH"))
    # A rejected one's vote counts nowhere.
    rejected = voter(db, vote, "2003")
    db.execute(
        update(Voter)
        .where(Voter.id == rejected.id)
        .values(status=VoterStatus.CHALLENGED, has_voted=True, channel=Channel.ONLINE)
    )
    db.add(Envelope(vote_id=vote.id, voter_id=rejected.id, channel=Channel.ONLINE,
                    status=EnvelopeStatus.REJECTED, reason="not in the unit"))  # fmt: skip
    casting.reissue(
        db, u.org, vote, voter(db, vote, "1004"), actor=u.staff, secret_key=settings.secret_key
    )
    audit.record(db, organization=u.org, actor=u.staff, action="vote.link_shown",
                 object_type="vote", object_id=vote.id, data={"member_number": "1005"})  # fmt: skip
    db.flush()

    found = reconcile.reconcile(db, vote)
    assert _figures(found) == {"RN": (2, 2, 2, 1, 1), "TECH": (2, 2, 2, 0, 0)}
    assert found.matches and (found.reissued, found.links_shown, found.mail_house_exports) == (
        1,
        1,
        0,
    )
    assert found.total.online_ballots == 4 and found.as_dict()["matches"] is True

    # One receipt lost, one paper ballot too many: both found, each in its own group.
    db.execute(delete(Receipt).where(Receipt.code == db.scalars(
        select(Receipt.code).where(Receipt.tally_group == "TECH").limit(1)).one()))  # fmt: skip
    db.add(PaperBatch(vote_id=vote.id, tally_group="RN", counts={"yes": 1, "no": 0},
                      status=BatchStatus.CONFIRMED, entered_by_id=u.committee[0].id))  # fmt: skip
    db.flush()
    found = reconcile.reconcile(db, vote)
    by_group = {g.group: g for g in found.groups}
    assert not found.matches
    assert by_group["TECH"].online_matches is False and by_group["TECH"].paper_matches
    assert by_group["RN"].paper_matches is False and by_group["RN"].online_matches


def test_a_group_with_no_votes_is_still_listed(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    found = reconcile.reconcile(db, vote)
    assert _figures(found) == {"RN": (0, 0, 0, 0, 0), "TECH": (0, 0, 0, 0, 0)}
    assert found.matches
