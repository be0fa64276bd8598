"""Certification: the committee fixed at scheduling signs a counted vote off, each member
re-entering their password; once the set number of distinct members has signed, the vote is
``certified`` and read-only. A reconciliation that does not match blocks signing until the
committee has written down why (``explain``)."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, Forbidden, TooManyRequests
from ratify.orgs.models import Organization
from ratify.security import verify_password
from ratify.settings import Settings
from ratify.throttle import services as throttle
from ratify.votes import reconcile
from ratify.votes.models import CommitteeMember, Signature, Vote, VoteStatus

MAX_NOTE = 4000


class WrongPassword(BadRequest):
    status_code = 401
    default_message = N_("That is not your password. Signing needs your own password.")


def signers(db: Session, vote: Vote) -> list[tuple[StaffUser, Signature]]:
    stmt = (
        select(StaffUser, Signature)
        .join(Signature, Signature.user_id == StaffUser.id)
        .where(Signature.vote_id == vote.id)
        .order_by(Signature.signed_at)
    )
    return [(user, signature) for user, signature in db.execute(stmt).all()]


def on_committee(db: Session, vote: Vote, user: StaffUser) -> bool:
    stmt = select(CommitteeMember.id).where(
        CommitteeMember.vote_id == vote.id, CommitteeMember.user_id == user.id
    )
    return db.execute(stmt).first() is not None


def blocked_by_reconciliation(
    db: Session, vote: Vote, found: reconcile.Reconciliation | None = None
) -> bool:
    """Whether the reconciliation (``found``, or read now) differs with nothing to explain it."""
    found = found or reconcile.reconcile(db, vote)
    return not found.matches and not vote.reconciliation_note.strip()


def explain(db: Session, org: Organization, vote: Vote, *, actor: StaffUser, note: str) -> None:
    """The committee's explanation of a reconciliation that does not match (a voter struck
    off whose paper ballot was spoilt, say), quoted on the certificate."""
    if vote.status != VoteStatus.TALLIED:
        raise Conflict(N_("The reconciliation is explained after counting, before certifying."))
    if not on_committee(db, vote, actor):
        raise Forbidden(N_("Only the certifying committee chosen at scheduling can do this."))
    note = note.strip()
    if not note:
        raise BadRequest(N_("Write what explains the difference."))
    if len(note) > MAX_NOTE:
        raise BadRequest(N_("Keep the explanation under 4,000 characters."))
    vote.reconciliation_note = note
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.reconciliation_explained",
        object_type="vote",
        object_id=vote.id,
        data={"note": note},
    )


def sign(
    db: Session,
    settings: Settings,
    hasher: PasswordHasher,
    org: Organization,
    vote: Vote,
    *,
    user: StaffUser,
    password: str,
    client_address: str,
) -> bool:
    """One committee member's sign-off; True when it was the last one needed and the vote
    is now certified. Wrong passwords are throttled as logins are (per account and address)."""
    if vote.status == VoteStatus.CERTIFIED:
        raise Conflict(N_("This vote is already certified."))
    if vote.status != VoteStatus.TALLIED:
        raise Conflict(N_("A vote is certified once it has been counted."))
    if not on_committee(db, vote, user):
        raise Forbidden(N_("Only the certifying committee chosen at scheduling can do this."))
    if db.scalar(
        select(Signature.id).where(Signature.vote_id == vote.id, Signature.user_id == user.id)
    ):
        raise Conflict(N_("You have already signed. Another member of the committee signs next."))
    if blocked_by_reconciliation(db, vote):
        raise Conflict(
            N_("The reconciliation does not match: the committee explains it before certifying.")
        )
    keys = accounts.login_throttle_keys(settings, user.email, client_address)
    window = timedelta(seconds=settings.login_throttle_window)
    throttle.serialize(db, keys.account_key, keys.address_key)
    if throttle.count_hits(db, keys.account_key, window) >= settings.login_max_failures_per_account:
        raise TooManyRequests(
            N_("Too many failed attempts. Try again in %(minutes)s min."),
            minutes=max(1, settings.login_throttle_window // 60),
        )
    if not verify_password(hasher, user.password_hash, password):
        throttle.add_hit(db, keys.account_key)
        throttle.add_hit(db, keys.address_key)
        raise WrongPassword()
    db.add(Signature(vote_id=vote.id, user_id=user.id, signed_at=utcnow()))
    db.flush()
    audit.record(
        db, organization=org, actor=user, action="vote.signed", object_type="vote",
        object_id=vote.id,
    )  # fmt: skip
    count = db.scalar(
        select(func.count()).select_from(Signature).where(Signature.vote_id == vote.id)
    )
    if (count or 0) < vote.signatures_required:
        return False
    now = utcnow()
    moved = db.execute(
        update(Vote)
        .where(Vote.id == vote.id, Vote.status == VoteStatus.TALLIED)
        .values(status=VoteStatus.CERTIFIED, certified_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(moved, "rowcount", 0)) != 1:
        raise Conflict()
    vote.status, vote.certified_at = VoteStatus.CERTIFIED, now
    audit.record(
        db,
        organization=org,
        actor=user,
        action="vote.certified",
        object_type="vote",
        object_id=vote.id,
        data={"box_digest": vote.box_digest, "signatures": count},
    )
    if vote.offer_id is not None:
        _write_back(db, org, vote)
    return True


def _write_back(db: Session, org: Organization, vote: Vote) -> None:
    """An offer decision's certified result, written back to its offer (accepted, or rejected
    with the demands reopened for revision), in the certifying transaction. An offer withdrawn
    or superseded meanwhile keeps its status: the vote is certified all the same."""
    from ratify.community import campaigns

    assert vote.offer_id is not None and vote.result is not None and vote.certified_at
    aggregate = vote.result["aggregate"]
    outcome = {
        "vote_id": str(vote.id),
        "passed": bool(vote.result["passed"]),
        "counts": {c["option"]: c["total"] for c in aggregate["counts"]},
        "ballots": aggregate["ballots"],
        "eligible": aggregate["eligible"],
        "box_digest": vote.box_digest,
        "certified_at": vote.certified_at.isoformat(),
    }
    try:
        with db.begin_nested():
            campaigns.record_outcome(db, org, vote.offer_id, outcome)
    except Conflict:
        pass
