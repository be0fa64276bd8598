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

import base64
import random
import secrets
import typing
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import copy_rows, holds_connection, utcnow
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
from ratify.rosters.models import Member
from ratify.throttle import services as throttle
from ratify.throttle.models import ThrottleHit
from ratify.votes import credentials, factors, sheets
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
    """Who a personal link or a voter session names, with what the member's pages need of
    the vote and the organization now (the vote's fixed content is on its sheet)."""

    voter_id: uuid.UUID
    vote_id: uuid.UUID
    member_id: uuid.UUID
    issue: int
    tally_group: str
    status: VoterStatus
    factor: SecondFactor | None
    has_voted: bool
    vote_status: VoteStatus
    opens_at: datetime | None
    closes_at: datetime | None
    org_name: str
    timezone: str
    preferred_language: str  # the member's, or ""

    @property
    def seat(self) -> Seat:
        return Seat(self.voter_id, self.issue, self.vote_id)

    def due(self, now: datetime) -> bool:
        """Whether the vote's window has an edge behind it that its status has not caught up
        with (the worker's tick or ``services.advance`` moves it)."""
        return (
            self.vote_status == VoteStatus.SCHEDULED
            and self.opens_at is not None
            and self.opens_at <= now
        ) or (
            self.vote_status == VoteStatus.OPEN
            and self.closes_at is not None
            and self.closes_at <= now
        )


@dataclass(frozen=True)
class Seat:
    """What a voter session names: the voter, the credential issue it began with, the vote."""

    voter_id: uuid.UUID
    issue: int
    vote_id: uuid.UUID


def table(model: type[Any]) -> Table:
    return typing.cast(Table, model.__table__)


# The member's pages run one statement each to know who is asking; Core statements built
# once, so each request pays neither the ORM's loading nor the statement's construction.
_voters, _votes = table(Voter), table(Vote)
_orgs, _members = table(Organization), table(Member)
_ACCESS = (
    select(
        _voters.c.id, _voters.c.vote_id, _voters.c.member_id, _voters.c.credential_issue,
        _voters.c.tally_group, _voters.c.status, _voters.c.factor, _voters.c.has_voted,
        _votes.c.status, _votes.c.opens_at, _votes.c.closes_at,
        _orgs.c.name, _orgs.c.timezone, _members.c.preferred_language,
    )
    .select_from(_voters)
    .join(_votes, _votes.c.id == _voters.c.vote_id)
    .join(_orgs, _orgs.c.id == _votes.c.organization_id)
    .join(_members, _members.c.id == _voters.c.member_id)
)  # fmt: skip
_BY_HASH = _ACCESS.where(_voters.c.credential_hash == bindparam("digest"))
_BY_ID = _ACCESS.where(_voters.c.id == bindparam("voter_id"))


def _access(row: Any) -> VoterAccess:
    voter_id, vote_id, member_id, issue, group, status, factor, has_voted, *rest = row
    vote_status, opens_at, closes_at, org_name, timezone, language = rest
    return VoterAccess(
        voter_id, vote_id, member_id, issue, group, status, factor, has_voted,
        vote_status, opens_at, closes_at, org_name, timezone, language or "",
    )  # fmt: skip


@contextmanager
def alone(db: Session) -> Iterator[Connection]:
    """A connection for one statement that is a transaction by itself: on PostgreSQL, while
    the session has not begun its own (no statement run yet), a connection of its own in
    autocommit, with no BEGIN or COMMIT round trip; else the session's, the statement then
    joining its transaction (and seeing what it wrote). Taken only while the session holds
    no connection, so that a request never waits on the pool holding one already; and only
    on an engine (a test's outer transaction keeps every statement inside it). Under READ
    COMMITTED each statement reads its own snapshot either way: one run alone reads the same."""
    bind = db.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and not holds_connection(db):
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn
    else:
        yield db.connection()


def find_by_credential(
    db: Session, secret_key: str, credential: str, *, in_transaction: bool = False
) -> VoterAccess:
    """The voter a link names, or BadLink. Read alone (``alone``) unless ``in_transaction``:
    a caller that goes on to lock and write saves a connection."""
    parsed = credentials.parse(credential)
    if parsed is None:
        raise BadLink()
    digest = credentials.lookup_hash(credentials.lookup_key(secret_key), parsed)
    with nullcontext(db.connection()) if in_transaction else alone(db) as conn:
        row = conn.execute(_BY_HASH, {"digest": digest}).first()
    if row is None:
        raise BadLink()
    return _access(row)


def find_by_session(db: Session, voter_id: uuid.UUID, issue: int) -> VoterAccess | None:
    """The voter a voter session names, while its credential issue is still current (read
    alone: the member's pages run no other statement)."""
    with alone(db) as conn:
        return _by_session(conn, voter_id, issue)


def _by_session(conn: Connection, voter_id: uuid.UUID, issue: int) -> VoterAccess | None:
    row = conn.execute(_BY_ID, {"voter_id": voter_id}).first()
    if row is None or row[3] != issue:
        return None
    return _access(row)


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


_hits = table(ThrottleHit)
_FACTOR_STATE = select(
    _voters.c.factor_failures,
    _voters.c.factor_check,
    select(func.count())
    .where(_hits.c.key == bindparam("voter_key"), _hits.c.at > bindparam("since"))
    .scalar_subquery(),
    select(func.count())
    .where(_hits.c.key == bindparam("address_key"), _hits.c.at > bindparam("since"))
    .scalar_subquery(),
).where(_voters.c.id == bindparam("voter_id"))


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
    # Read once the locks are held, so parallel answers each see the others' counts.
    failures, check, voter_hits, address_hits = (
        db.connection()
        .execute(
            _FACTOR_STATE,
            {
                "voter_id": access.voter_id,
                "voter_key": voter_key,
                "address_key": address_key,
                "since": utcnow() - FACTOR_WINDOW,
            },
        )
        .one()
    )
    if failures >= FACTOR_LOCK_AFTER:
        raise LinkLocked()
    if voter_hits >= FACTOR_TRIES_PER_CREDENTIAL or address_hits >= FACTOR_TRIES_PER_ADDRESS:
        raise TooManyRequests(
            N_("Too many wrong answers. Wait 15 minutes and try again, or ask for help.")
        )
    if access.factor == SecondFactor.NONE:
        return True
    right = (
        access.factor is not None
        and check is not None
        and factors.matches(secret_key, access.voter_id, check, typed, access.factor)
    )
    if right:
        if voter_hits:
            throttle.remove_hits(db, address_key, voter_hits)
            throttle.clear_hits(db, voter_key)
        if failures:
            db.execute(update(Voter).where(Voter.id == access.voter_id).values(factor_failures=0))
    else:
        throttle.add_hit(db, voter_key)
        throttle.add_hit(db, address_key)
        db.execute(
            update(Voter)
            .where(Voter.id == access.voter_id)
            .values(factor_failures=Voter.factor_failures + 1)
        )
    return right


class SealInstead(Conflict):
    """A challenged voter's ballot goes into a sealed envelope (``envelopes.seal``), never
    straight into the box: the cast refuses it, having written nothing."""

    default_message = N_(
        "Your vote is challenged: it goes into a sealed envelope, not straight into the ballot box."
    )


CHALLENGED_ALREADY_VOTED = N_(
    "You have already voted. Your ballot is sealed in an envelope until the election "
    "committee decides your challenge."
)


def may_cast(access: VoterAccess) -> None:
    """Refusals before the ballot is shown or a choice is taken. Past the closing time the
    vote is not open even while its status (moved by the ballot page or the worker, never
    by a cast) still says so. A challenged voter may go on: their ballot will be sealed in
    an envelope (``envelopes.seal``) instead of cast."""
    closed = access.closes_at is not None and access.closes_at <= utcnow()
    if access.vote_status != VoteStatus.OPEN or closed:
        raise Conflict(N_("Voting is not open."))
    if access.status not in (VoterStatus.ELIGIBLE, VoterStatus.CHALLENGED):
        raise Forbidden(N_("You are not on the list of voters for this vote."))
    if access.has_voted:
        challenged = access.status == VoterStatus.CHALLENGED
        raise AlreadyVoted(CHALLENGED_ALREADY_VOTED if challenged else None)


def spending(status: VoterStatus) -> Update:
    """The conditional update that spends a credential online, the first write of a cast
    (and of a challenged voter's seal, for ``status`` challenged): this voter, this
    credential issue, of ``status``, not yet voted, and the vote open now; it marks them
    voted online, to the hour, and returns their tally group. Parameters: ``spent``."""
    return (
        update(_voters)
        .where(
            _voters.c.id == bindparam("b_voter"),
            _voters.c.vote_id == bindparam("b_vote"),
            _voters.c.credential_issue == bindparam("b_issue"),
            _voters.c.status == status,
            _voters.c.has_voted.is_(False),
            exists().where(
                _votes.c.id == _voters.c.vote_id,
                _votes.c.status == VoteStatus.OPEN,
                or_(_votes.c.closes_at.is_(None), _votes.c.closes_at > bindparam("b_now")),
            ),
        )
        .values(has_voted=True, channel=Channel.ONLINE, voted_hour=bindparam("b_hour"))
        .returning(_voters.c.tally_group)
    )


def spent(seat: Seat, now: datetime) -> dict[str, Any]:
    """``spending``'s parameters for a seat, now."""
    return {
        "b_voter": seat.voter_id,
        "b_vote": seat.vote_id,
        "b_issue": seat.issue,
        "b_now": now,
        "b_hour": now.replace(minute=0, second=0, microsecond=0),
    }


_MARK_VOTED = spending(VoterStatus.ELIGIBLE)
_BALLOT = insert(table(Ballot))
_RECEIPT = insert(table(Receipt))


def _one_statement_cast() -> Select[tuple[str]]:
    """PostgreSQL: the same three writes in one statement, one round trip instead of three.
    The ballot and the receipt are inserted from what the conditional update returned, so
    when it matches nothing (voted already, reissued, closed) neither is written, and the
    statement returns no row. PostgreSQL runs every data-modifying WITH clause once, to
    completion, whether or not the main query reads it. (``mixed`` takes its server default,
    false, in both tables.)"""
    marked = _MARK_VOTED.returning(_voters.c.vote_id).cte("marked")
    ballots, receipts = table(Ballot), table(Receipt)
    ballot = insert(ballots).from_select(
        ["id", "vote_id", "tally_group", "choice"],
        select(
            bindparam("c_id", type_=ballots.c.id.type),
            marked.c.vote_id,
            marked.c.tally_group,
            bindparam("c_choice", type_=ballots.c.choice.type),
        ),
        include_defaults=False,
    )
    receipt = insert(receipts).from_select(
        ["code", "vote_id", "tally_group"],
        select(
            bindparam("c_code", type_=receipts.c.code.type),
            marked.c.vote_id,
            marked.c.tally_group,
        ),
        include_defaults=False,
    )
    return select(marked.c.tally_group).add_cte(ballot.cte("ballot"), receipt.cte("receipt"))


_CAST = _one_statement_cast()


def cast(db: Session, seat: Seat, choice: str) -> str:
    """Cast a ballot and return its receipt code (shown once, stored nowhere beside the
    voter). One transaction, three writes and no read before them (rule 2): the conditional
    update holds every condition (so a second cast with the same credential issue matches
    nothing, under any concurrency); only when it matches nothing is the voter read, to say
    why, and the caller's transaction then rolls back having written nothing.

    On PostgreSQL the three writes are one statement. When the session has not yet begun
    its transaction (a member's cast, the sheet kept), that statement is run on its own, in
    autocommit: it is then the whole transaction, committed before this returns, so the
    receipt shown is one that was stored."""
    if choice not in sheets.sheet(db, seat.vote_id).keys:
        _refuse(db, seat)
        raise BadRequest(N_("Choose one of the options on the ballot."))
    now = utcnow()
    code = new_receipt_code()
    if db.get_bind().dialect.name == "postgresql":
        cast_now = {**spent(seat, now), "c_id": uuid.uuid4(), "c_choice": choice, "c_code": code}
        # Alone, the one statement is the whole transaction: PostgreSQL runs it as one (all
        # three writes or none) and nothing else can join it. Else it joins the session's.
        with alone(db) as conn:
            group = conn.execute(_CAST, cast_now).scalar()
            if group is None:  # nothing was written: why, read on the same connection
                _refused(_by_session(conn, seat.voter_id, seat.issue), seat)
                raise AlreadyVoted()  # by another request with the same credential, just now
        return code
    conn = db.connection()
    group = conn.execute(_MARK_VOTED, spent(seat, now)).scalar()
    if group is None:
        _refuse(db, seat)
        raise AlreadyVoted()
    conn.execute(
        _BALLOT,
        {"id": uuid.uuid4(), "vote_id": seat.vote_id, "tally_group": group, "choice": choice},
    )
    conn.execute(_RECEIPT, {"code": code, "vote_id": seat.vote_id, "tally_group": group})
    return code


def _refuse(db: Session, seat: Seat) -> None:
    """Raise why this seat may not cast, if it may not: the voter is read only here."""
    _refused(find_by_session(db, seat.voter_id, seat.issue), seat)


def _refused(access: VoterAccess | None, seat: Seat) -> None:
    if access is None or access.vote_id != seat.vote_id:
        raise LinkReplaced()  # reissued since this session began: nothing was cast
    may_cast(access)  # not open, excluded, voted
    if access.status == VoterStatus.CHALLENGED:
        raise SealInstead()


def new_receipt_code() -> str:
    """80 random bits, five to a letter: base 32 spelt in the receipt alphabet."""
    spelt = base64.b32encode(secrets.token_bytes(RECEIPT_LENGTH * 5 // 8)).decode()
    return spelt.translate(_SPELLING)


_SPELLING = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", RECEIPT_ALPHABET)


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


def unmixed(db: Session, vote_id: uuid.UUID) -> bool:
    """Whether this vote holds ballots or receipts cast since its last mix (one probe each of
    the (vote_id, mixed) indexes)."""
    return any(
        db.execute(
            select(model.vote_id).where(model.vote_id == vote_id, model.mixed.is_(False)).limit(1)
        ).first()
        for model in (Ballot, Receipt)
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
    # The member hears that the old link is dead, with the new one (issue 7), in this
    # transaction: a reissue that rolls back sends nothing.
    from ratify.notices import outbox
    from ratify.notices.models import MessageKind

    member = db.get_one(Member, voter.member_id)
    outbox.enqueue_voter_notice(db, vote, voter, member, MessageKind.LINK_REISSUED, issue=issue)
