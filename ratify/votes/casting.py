"""The ballot box: finding a voter from a personal link, the second factor, casting, receipts
and mixing. Every rule of DESIGN.md §4 that concerns a ballot is upheld here:

- rule 2: a cast is one transaction of exactly three writes (the voter's conditional update,
  the ballot, the receipt) and nothing else: no audit event, no throttle row, no session row;
- rule 1: the ballot has no link to the voter and no time; ``mix`` rewrites what was cast since
  the last mix in random order, in a transaction of its own, so neither PostgreSQL's ``xmin``
  nor physical position links a voter to a ballot or a receipt afterwards;
- rule 4: the credential is looked up by keyed hash; the second factor is compared in constant
  time, and wrong answers are throttled per credential and per client address;
- rule 7: the receipt code is random, never derived from the choice, and kept apart from both
  the voter and the ballot.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import copy_rows, utcnow
from ratify.errors import (
    N_,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RatifyError,
    TooManyRequests,
)
from ratify.orgs.models import Organization
from ratify.throttle import services as throttle
from ratify.votes import credentials, factors
from ratify.votes.models import (
    Ballot,
    Channel,
    Receipt,
    SecondFactor,
    Vote,
    Voter,
    VoterStatus,
    VoteStatus,
)

# Wrong second factors: per credential (a guesser with one letter) and per client address (a
# guesser with many); both windows slide.
FACTOR_TRIES_PER_CREDENTIAL = 5
FACTOR_TRIES_PER_ADDRESS = 30
FACTOR_WINDOW = timedelta(minutes=15)
# Wrong answers to one link, ever, before it is locked until staff reissue it: a year of
# birth is one of about 80, which 5 guesses every 15 minutes would find within hours.
FACTOR_LOCK_AFTER = 10

RECEIPT_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud, typed back
RECEIPT_LENGTH = 16  # 80 bits


class AlreadyVoted(Conflict):
    """A second cast with the same credential (or after a paper or in-person vote)."""

    default_message = N_("You have already voted. Your vote was counted once.")


class BadLink(NotFound):
    """A malformed, unknown or reissued link: one answer for each, so a guesser learns
    nothing."""

    default_message = N_("This voting link is not valid. Check it, or ask for a new one.")


@dataclass(frozen=True)
class VoterAccess:
    """Who a personal link or a voter session names: enough to show the ballot and to cast."""

    voter_id: uuid.UUID
    vote_id: uuid.UUID
    member_id: uuid.UUID
    issue: int
    tally_group: str
    status: VoterStatus
    factor: SecondFactor | None
    has_voted: bool


def _access(voter: Voter) -> VoterAccess:
    return VoterAccess(
        voter.id,
        voter.vote_id,
        voter.member_id,
        voter.credential_issue,
        voter.tally_group,
        voter.status,
        voter.factor,
        voter.has_voted,
    )


def find_by_credential(db: Session, secret_key: str, credential: str) -> VoterAccess:
    """The voter a link names, or BadLink."""
    parsed = credentials.parse(credential)
    if parsed is None:
        raise BadLink()
    digest = credentials.lookup_hash(credentials.lookup_key(secret_key), parsed)
    voter = db.execute(select(Voter).where(Voter.credential_hash == digest)).scalar_one_or_none()
    if voter is None:
        raise BadLink()
    return _access(voter)


def find_by_session(db: Session, voter_id: uuid.UUID, issue: int) -> VoterAccess | None:
    """The voter a voter session names, while its credential issue is still current."""
    voter = db.get(Voter, voter_id)
    if voter is None or voter.credential_issue != issue:
        return None
    return _access(voter)


def vote_of(db: Session, access: VoterAccess) -> Vote:
    vote = db.get(Vote, access.vote_id, options=[selectinload(Vote.options)])
    if vote is None:
        raise NotFound()
    return vote


def _throttle_keys(secret_key: str, access: VoterAccess, client: str) -> tuple[str, str]:
    return (
        throttle.throttle_key(secret_key, "factor-voter", f"{access.voter_id}:{access.issue}"),
        throttle.throttle_key(secret_key, "factor-address", client),
    )


class LinkLocked(Forbidden):
    default_message = N_(
        "This link is locked after too many wrong answers. Ask the union for a new link."
    )


class LinkReplaced(RatifyError):
    status_code = 401
    default_message = N_("Your voting link was replaced by a new one. Open the new link to vote.")


def check_second_factor(
    db: Session, secret_key: str, access: VoterAccess, typed: str, client: str
) -> bool:
    """Whether ``typed`` is this voter's second factor. Refused outright (TooManyRequests)
    after too many wrong answers for this link or from this address in the window, and
    (LinkLocked) after too many for this link ever. A wrong answer is counted; a right one
    clears the link's count and takes back the address's hits it explains, so one person's
    typos do not lock out their colleagues behind the same address. The caller commits."""
    voter_key, address_key = _throttle_keys(secret_key, access, client)
    throttle.serialize(db, voter_key, address_key)
    voter = db.get_one(Voter, access.voter_id)
    if voter.factor_failures >= FACTOR_LOCK_AFTER:
        raise LinkLocked()
    if (
        throttle.count_hits(db, voter_key, FACTOR_WINDOW) >= FACTOR_TRIES_PER_CREDENTIAL
        or throttle.count_hits(db, address_key, FACTOR_WINDOW) >= FACTOR_TRIES_PER_ADDRESS
    ):
        raise TooManyRequests(
            N_("Too many wrong answers. Wait 15 minutes and try again, or ask for help.")
        )
    if access.factor == SecondFactor.NONE:
        return True
    right = (
        access.factor is not None
        and voter.factor_check is not None
        and factors.matches(secret_key, access.voter_id, voter.factor_check, typed, access.factor)
    )
    if right:
        throttle.remove_hits(db, address_key, throttle.count_hits(db, voter_key, FACTOR_WINDOW))
        throttle.clear_hits(db, voter_key)
        voter.factor_failures = 0
    else:
        throttle.add_hit(db, voter_key)
        throttle.add_hit(db, address_key)
        voter.factor_failures += 1
    db.flush()
    return right


def may_cast(access: VoterAccess, vote: Vote) -> None:
    """Refusals before the ballot is shown or a choice is taken. Past the closing time the
    vote is not open even while its status (moved by the ballot page or the worker, never
    by a cast) still says so."""
    closed = vote.closes_at is not None and vote.closes_at <= utcnow()
    if vote.status != VoteStatus.OPEN or closed:
        raise Conflict(N_("Voting is not open."))
    if access.status == VoterStatus.CHALLENGED:
        raise Forbidden(
            N_("Your vote is challenged: it cannot be cast online. The election committee "
               "will tell you how to vote by sealed envelope.")
        )  # fmt: skip
    if access.status != VoterStatus.ELIGIBLE:
        raise Forbidden(N_("You are not on the list of voters for this vote."))
    if access.has_voted:
        raise AlreadyVoted()


def cast(db: Session, vote: Vote, access: VoterAccess, choice: str) -> str:
    """Cast a ballot and return its receipt code (shown once, stored nowhere beside the
    voter). One transaction, three writes (rule 2); the conditional update makes a second
    cast with the same credential issue a no-op under any concurrency, refused here so the
    caller's transaction rolls back and writes nothing."""
    may_cast(access, vote)
    if choice not in {option.key for option in vote.options}:  # loaded with the vote
        raise BadRequest(N_("Choose one of the options on the ballot."))
    marked = db.execute(
        update(Voter)
        .where(
            Voter.id == access.voter_id,
            Voter.vote_id == vote.id,
            Voter.credential_issue == access.issue,
            Voter.status == VoterStatus.ELIGIBLE,
            Voter.has_voted.is_(False),
        )
        .values(
            has_voted=True,
            channel=Channel.ONLINE,
            voted_hour=utcnow().replace(minute=0, second=0, microsecond=0),
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(marked, "rowcount", 0)) != 1:
        issue = db.scalar(select(Voter.credential_issue).where(Voter.id == access.voter_id))
        if issue != access.issue:
            raise LinkReplaced()  # reissued since this session began: nothing was cast
        raise AlreadyVoted()
    db.execute(
        insert(Ballot).values(
            id=uuid.uuid4(), vote_id=vote.id, tally_group=access.tally_group, choice=choice
        )
    )
    code = new_receipt_code()
    db.execute(insert(Receipt).values(code=code, vote_id=vote.id, tally_group=access.tally_group))
    return code


def new_receipt_code() -> str:
    return "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))


def show_receipt(code: str) -> str:
    """XXXX-XXXX-XXXX-XXXX, to read aloud and copy."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def mix(db: Session, vote_id: uuid.UUID) -> int:
    """Rewrite the vote's whole ballot box, ballots and receipts, each table in random order
    (rule 1), in the caller's transaction, which must be one of its own. The whole box, not
    only what came since the last mix: were only the newcomers rewritten, each mix's batch
    would keep its own transaction id and place, in casting order, and a quiet hour's batch
    of one ballot would name its voter. Rows are taken with DELETE ... RETURNING, so a ballot
    cast meanwhile is either in this mix or left for the next, never lost. Ballots get new
    random ids; receipts keep their codes (voters hold them). Returns the ballots mixed."""
    shuffle = random.SystemRandom().shuffle
    ballots = [
        (group, choice)
        for group, choice in db.execute(
            delete(Ballot)
            .where(Ballot.vote_id == vote_id)
            .returning(Ballot.tally_group, Ballot.choice)
        ).all()
    ]
    receipts = [
        (code, group)
        for code, group in db.execute(
            delete(Receipt)
            .where(Receipt.vote_id == vote_id)
            .returning(Receipt.code, Receipt.tally_group)
        ).all()
    ]
    shuffle(ballots)
    shuffle(receipts)
    copy_rows(
        db,
        Ballot,
        ["id", "vote_id", "tally_group", "choice", "mixed"],
        [(uuid.uuid4(), vote_id, group, choice, True) for group, choice in ballots],
    )
    copy_rows(
        db,
        Receipt,
        ["code", "vote_id", "tally_group", "mixed"],
        [(code, vote_id, group, True) for code, group in receipts],
    )
    return len(ballots)


def votes_to_mix(db: Session) -> list[uuid.UUID]:
    """Votes holding ballots or receipts cast since their last mix."""
    return sorted(
        set(db.scalars(select(Ballot.vote_id).where(Ballot.mixed.is_(False)).distinct()))
        | set(db.scalars(select(Receipt.vote_id).where(Receipt.mixed.is_(False)).distinct()))
    )


def reissue(
    db: Session,
    org: Organization,
    vote: Vote,
    voter: Voter,
    *,
    actor: StaffUser,
    secret_key: str,
) -> None:
    """A new credential for one voter (a lost letter, a link someone else saw): the old link,
    and any voter session opened with it, stop working at once. Audited, by member number;
    the certificate counts reissues (rule 4)."""
    if voter.vote_id != vote.id:
        raise NotFound()
    if vote.status not in (VoteStatus.SCHEDULED, VoteStatus.OPEN):
        raise Conflict(N_("Links can be reissued only while the vote is scheduled or open."))
    issue = voter.credential_issue + 1
    moved = db.execute(
        update(Voter)
        .where(Voter.id == voter.id, Voter.credential_issue == voter.credential_issue)
        .values(
            credential_issue=issue,
            credential_hash=credentials.Minter(secret_key, vote.id).lookup(voter.id, issue),
            factor_failures=0,
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(moved, "rowcount", 0)) != 1:
        raise Conflict()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.credential_reissued",
        object_type="vote",
        object_id=vote.id,
        data={"member_number": voter.member_number, "issue": issue},
    )
