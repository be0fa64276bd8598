"""Certification: the set number of distinct committee members sign with their password."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.errors import Conflict, Forbidden, TooManyRequests
from ratify.security import password_hasher
from ratify.votes import casting, certify
from ratify.votes.models import Channel, SecondFactor, Signature, Vote, Voter, VoteStatus
from tests.factories import PASSWORD, make_user
from tests.votes.support import Union, make_union
from tests.votes.test_casting import open_vote, voter


def _counted(db: Session, u: Union, settings) -> Vote:  # type: ignore[no-untyped-def]
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    casting.cast(db, casting.Seat(voter(db, vote, "1001").id, 1, vote.id), "yes")
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(status=VoteStatus.TALLIED, box_digest="ab" * 32)
    )
    db.expire_all()
    return db.get_one(Vote, vote.id)


def _sign(db: Session, settings, u: Union, vote: Vote, user, password: str = PASSWORD) -> bool:  # type: ignore[no-untyped-def]
    return certify.sign(
        db, settings, password_hasher(settings), u.org, vote, user=user, password=password,
        client_address="10.0.0.1",
    )  # fmt: skip


def _actions(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("vote.%"))))


def test_two_distinct_committee_members_certify_and_the_vote_is_locked(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _counted(db, u, settings)
    first, second = u.committee
    with pytest.raises(certify.WrongPassword):
        _sign(db, settings, u, vote, first, "not my password")
    assert db.scalars(select(Signature)).all() == []
    assert _sign(db, settings, u, vote, first) is False  # one of two
    assert vote.status == VoteStatus.TALLIED
    with pytest.raises(Conflict, match="already signed"):
        _sign(db, settings, u, vote, first)
    with pytest.raises(Forbidden):
        _sign(db, settings, u, vote, u.staff)  # not on this vote's committee
    outsider = make_user(db, u.org, Role.COMMITTEE)  # on the committee role, not this vote's
    with pytest.raises(Forbidden):
        _sign(db, settings, u, vote, outsider)
    assert _sign(db, settings, u, vote, second) is True
    db.expire_all()
    certified = db.get_one(Vote, vote.id)
    assert certified.status == VoteStatus.CERTIFIED and certified.certified_at is not None
    assert [user.id for user, _ in certify.signers(db, certified)] == [first.id, second.id]
    assert _actions(db)[-3:] == ["vote.signed", "vote.signed", "vote.certified"]
    with pytest.raises(Conflict, match="already certified"):
        _sign(db, settings, u, certified, second)


def test_a_vote_not_yet_counted_cannot_be_signed(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    with pytest.raises(Conflict, match="once it has been counted"):
        _sign(db, settings, u, vote, u.committee[0])


def test_a_reconciliation_mismatch_blocks_signing_until_explained(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _counted(db, u, settings)
    # Marked voted online with no ballot in the box: the figures differ.
    db.execute(
        update(Voter)
        .where(Voter.id == voter(db, vote, "1002").id)
        .values(has_voted=True, channel=Channel.ONLINE)
    )
    with pytest.raises(Conflict, match="reconciliation does not match"):
        _sign(db, settings, u, vote, u.committee[0])
    with pytest.raises(Forbidden):
        certify.explain(db, u.org, vote, actor=u.staff, note="x")
    with pytest.raises(certify.BadRequest):
        certify.explain(db, u.org, vote, actor=u.committee[0], note="   ")
    certify.explain(
        db, u.org, vote, actor=u.committee[0], note="1002's phone crashed mid-vote; no ballot."
    )
    assert _sign(db, settings, u, vote, u.committee[0]) is False
    assert "vote.reconciliation_explained" in _actions(db)


def test_wrong_passwords_are_throttled(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _counted(db, u, settings)
    for _ in range(settings.login_max_failures_per_account):
        with pytest.raises(certify.WrongPassword):
            _sign(db, settings, u, vote, u.committee[0], "guess")
    with pytest.raises(TooManyRequests):
        _sign(db, settings, u, vote, u.committee[0])  # even the right one, for a while
