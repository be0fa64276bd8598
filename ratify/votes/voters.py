"""The frozen voter list: the eligibility rule evaluated once, at scheduling, and stored as one
Voter row per member it considered (eligible, or excluded with the rule's reason). Later roster
changes do not move it; staff exclude (until opening) or add challenged voters by hand, each
audited. Its fingerprint is a SHA-256 of the sorted member numbers and groups."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import analyze, bulk_insert
from ratify.errors import N_, BadRequest, Conflict
from ratify.orgs.models import Organization
from ratify.rosters import eligibility as elig
from ratify.rosters import queries as roster_queries
from ratify.rosters.models import Member
from ratify.votes import credentials, factors
from ratify.votes.models import (
    SecondFactor,
    TallyGrouping,
    Vote,
    VoteKind,
    Voter,
    VoterStatus,
    VoteStatus,
)

AGGREGATE_GROUP = "all"
SMALL_GROUP = 5  # DESIGN.md §4 rule 6: fewer voters than this in a group leaks choices
VOTING = (VoterStatus.ELIGIBLE, VoterStatus.CHALLENGED)


FactorData = dict[uuid.UUID, tuple[Any, str, str]]
Check = Callable[[uuid.UUID, str], str]


def _factor_data(db: Session, org: Organization, member_ids: list[uuid.UUID] | None) -> FactorData:
    """Member -> (birth date, postal code, phone): the named members, or (for a whole list)
    every member of the organization in one plain query."""
    stmt = select(Member.id, Member.birth_date, Member.postal_code, Member.phone).where(
        Member.organization_id == org.id
    )
    if member_ids is None:
        return {m: (b, p, t) for m, b, p, t in db.connection().execute(stmt)}
    found: FactorData = {}
    for start in range(0, len(member_ids), 1000):
        chunk = stmt.where(Member.id.in_(member_ids[start : start + 1000]))
        found.update((m, (b, p, t)) for m, b, p, t in db.execute(chunk).all())
    return found


def _answer(
    check: Check,
    voter_id: uuid.UUID,
    factor: SecondFactor,
    number: str,
    data: tuple[Any, str, str] | None,
) -> tuple[SecondFactor | None, str | None]:
    """(factor, check value) for one voter; (None, None) when the roster lacks the data."""
    if factor == SecondFactor.NONE:
        return SecondFactor.NONE, None
    birth, postal, phone = data or (None, "", "")
    value = factors.member_value(factor, number, birth, postal, phone)
    if not value:
        return None, None
    return factor, check(voter_id, value)


def freeze(db: Session, org: Organization, vote: Vote, *, secret_key: str) -> dict[str, Any]:
    """Evaluate the vote's rule once and store everyone it considered, bulk-inserted (COPY on
    PostgreSQL) with only the columns that differ between voters. A 300,000-member roster
    takes about 20 s on PostgreSQL and 30 s on SQLite: in ``ratify worker`` for a big
    organization (``services.request_schedule``), else in the request that schedules it."""
    decisions = electorate(db, org, vote)
    needs_data = vote.second_factor in (
        SecondFactor.BIRTH_YEAR,
        SecondFactor.POSTAL_CODE,
        SecondFactor.PHONE_LAST4,
    )
    data = _factor_data(db, org, None) if needs_data else {}
    check = factors.checker(secret_key)
    minter = credentials.Minter(secret_key, vote.id)
    per_unit = vote.tally_grouping == TallyGrouping.PER_UNIT
    rows: list[dict[str, Any]] = []
    for d in decisions:
        voter_id = uuid.uuid4()
        factor: SecondFactor | None = None
        value: str | None = None
        link: str | None = None  # the keyed hash of the voter's credential (rule 4)
        if d.eligible:
            factor, value = _answer(
                check, voter_id, vote.second_factor, d.member_number, data.get(d.member_id)
            )
            link = minter.lookup(voter_id, 1)
        rows.append(
            {
                "id": voter_id,
                "vote_id": vote.id,
                "member_id": d.member_id,
                "member_number": d.member_number,
                # In two of the vote's units: the first by code.
                "tally_group": d.units[0] if per_unit and d.units else AGGREGATE_GROUP,
                "status": VoterStatus.ELIGIBLE if d.eligible else VoterStatus.EXCLUDED,
                "reason": "" if d.eligible else d.reasons[0],
                "factor": factor,
                "factor_check": value,
                "credential_hash": link,
            }
        )
    bulk_insert(db, Voter, rows)
    # Fresh statistics, or the list's pages are planned as if it were empty (a name search
    # then probes the members once per voter: seconds instead of milliseconds).
    analyze(db, Voter)
    refresh_fingerprint(db, vote)
    counts = summarize(db, vote)
    return {
        "fingerprint": vote.voter_fingerprint,
        "eligible": counts.eligible,
        "excluded": counts.excluded,
        "missing_second_factor": counts.missing_factor,
    }


def electorate(db: Session, org: Organization, vote: Vote) -> list[elig.Decision]:
    """Everyone the vote's rule considers, each eligible or with their reasons: a union's
    eligibility rule on the cutoff, or (an offer decision) the constituency's criteria."""
    from ratify.votes.services import constituency_of, rule_of

    if vote.kind == VoteKind.OFFER_DECISION:
        from ratify.community import constituencies

        constituency_id = constituency_of(vote)
        assert constituency_id is not None and vote.cutoff is not None and vote.eligibility
        constituency = constituencies.get_constituency(db, org, constituency_id)
        pinned = vote.eligibility  # with the criteria copied in at scheduling
        return constituencies.evaluate(
            db,
            org,
            constituency,
            vote.cutoff,
            criteria=constituencies.stored_criteria(pinned["criteria"])
            if "criteria" in pinned
            else None,
            approval_required=pinned.get("approval_required"),
        ).decisions
    rule = rule_of(vote)
    assert rule is not None
    return elig.evaluate(db, org, rule).decisions


def sharing_contacts(db: Session, vote: Vote) -> int:
    """Eligible voters whose phone or email another eligible voter has too: a family sharing
    a phone, or one person signed up twice (leaders check before the vote opens: each of
    them gets a link, to the same phone)."""
    voters = (
        select(Voter.member_id)
        .where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
        .subquery()
    )
    shared = 0
    for column in (Member.phone, Member.email):
        counted = (
            select(func.count().label("n"))
            .select_from(Member)
            .join(voters, voters.c.member_id == Member.id)
            .where(column != "")
            .group_by(column)
            .having(func.count() > 1)
            .subquery()
        )
        shared += db.scalar(select(func.coalesce(func.sum(counted.c.n), 0))) or 0
    return int(shared)


def drop(db: Session, vote: Vote) -> None:
    db.execute(delete(Voter).where(Voter.vote_id == vote.id))
    vote.voter_fingerprint = None
    db.flush()


def fingerprint(db: Session, vote: Vote) -> str:
    """SHA-256 over "member number TAB group" lines of the eligible voters, sorted in Python
    (the two databases would sort text differently)."""
    stmt = select(Voter.member_number, Voter.tally_group).where(
        Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE
    )
    lines = sorted(f"{number}\t{group}\n" for number, group in db.execute(stmt).all())
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
    return digest.hexdigest()


def refresh_fingerprint(db: Session, vote: Vote) -> None:
    vote.voter_fingerprint = fingerprint(db, vote)
    db.flush()


@dataclass(frozen=True)
class ListSummary:
    eligible: int
    excluded: int
    challenged: int
    missing_factor: int  # eligible or challenged, lacking the data of their factor
    by_factor: dict[str, int]  # factor value -> voters answering it
    groups: dict[str, int]  # tally group -> eligible and challenged voters

    @property
    def small_groups(self) -> dict[str, int]:
        return {g: n for g, n in self.groups.items() if n < SMALL_GROUP}


def summarize(db: Session, vote: Vote) -> ListSummary:
    stmt = (
        select(Voter.status, Voter.tally_group, Voter.factor, func.count())
        .where(Voter.vote_id == vote.id)
        .group_by(Voter.status, Voter.tally_group, Voter.factor)
    )
    status: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    by_factor: Counter[str] = Counter()
    missing = 0
    for st, group, factor, n in db.execute(stmt).all():
        status[st.value] += n
        if st in VOTING:
            groups[group] += n
            if factor is None:
                missing += n
            else:
                by_factor[factor.value] += n
    return ListSummary(
        eligible=status[VoterStatus.ELIGIBLE.value],
        excluded=status[VoterStatus.EXCLUDED.value],
        challenged=status[VoterStatus.CHALLENGED.value],
        missing_factor=missing,
        by_factor=dict(by_factor),
        groups=dict(sorted(groups.items())),
    )


@dataclass(frozen=True)
class VoterRow:
    voter: Voter
    name: str


@dataclass(frozen=True)
class VoterPage:
    rows: list[VoterRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def search(
    db: Session,
    vote: Vote,
    query: str = "",
    *,
    status: VoterStatus | None = None,
    missing_factor: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> VoterPage:
    """The list in member-number order, found by exact member number or else by the start
    of a name. Counted and paged on the voters' own indexes, names joined for one page only, so
    it stays quick at 300,000 voters."""
    where = [Voter.vote_id == vote.id]
    if status is not None:
        where.append(Voter.status == status)
    if missing_factor:
        where += [Voter.status.in_(VOTING), Voter.factor.is_(None)]
    query = query.strip()
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        named = select(Member.id).where(
            Member.organization_id == vote.organization_id,
            Member.sort_name.like(f"{escaped}%", escape="\\"),
        )
        # A member number first (one index lookup), else the start of a name: an OR of the
        # two would have the database read the whole list for each search.
        number = select(Voter.id).where(Voter.vote_id == vote.id, Voter.member_number == query)
        if db.execute(number).first() is not None:
            where.append(Voter.member_number == query)
        else:
            where.append(Voter.member_id.in_(named))
    total = db.execute(select(func.count()).select_from(Voter).where(*where)).scalar_one()
    page = max(1, min(page, max(1, -(-total // per_page))))
    shown = (
        select(Voter.id)
        .where(*where)
        .order_by(Voter.member_number)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = db.execute(
        select(Voter, Member.first_name, Member.last_name)
        .join(Member, Member.id == Voter.member_id)
        .where(Voter.id.in_(shown))
        .order_by(Voter.member_number)
    ).all()
    return VoterPage(
        [VoterRow(v, f"{last}, {first}".strip(", ")) for v, first, last in rows],
        total,
        page,
        per_page,
    )


def find_voter(db: Session, vote: Vote, member_number: str) -> Voter | None:
    """The vote's voter with this member number, or None."""
    stmt = select(Voter).where(Voter.vote_id == vote.id, Voter.member_number == member_number)
    return db.scalars(stmt).first()


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise BadRequest(N_("Give the reason."))
    if len(reason) > 500:
        raise BadRequest(N_("Use at most 500 characters."))
    return reason


def exclude(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    member_number: str,
    reason: str,
) -> Voter:
    """Take a voter off the list, with the reason, until the vote opens."""
    if vote.status != VoteStatus.SCHEDULED:
        raise Conflict(N_("Voters can be excluded only between scheduling and opening."))
    reason = _check_reason(reason)
    voter = find_voter(db, vote, member_number.strip())
    if voter is None or voter.status not in VOTING:
        raise BadRequest(N_("No voter on this list has that member number."))
    voter.status = VoterStatus.EXCLUDED
    voter.reason = reason
    db.flush()
    refresh_fingerprint(db, vote)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="voter.excluded",
        object_type="vote",
        object_id=vote.id,
        member_id=voter.member_id,
        data={"reason": reason, "fingerprint": vote.voter_fingerprint},
    )
    return voter


def challenge(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    member_number: str,
    reason: str,
    group: str,
    secret_key: str,
) -> Voter:
    """Add a member who says they belong on the list, as challenged: their ballot will be a
    sealed envelope decided by the committee (issue 6)."""
    if vote.status not in (VoteStatus.SCHEDULED, VoteStatus.OPEN):
        raise Conflict(N_("Challenged voters can be added between scheduling and the close."))
    reason = _check_reason(reason)
    number = member_number.strip()
    member_id = roster_queries.member_ids(db, org, [number]).get(number)
    if member_id is None:
        raise BadRequest(N_("No member has these member numbers: %(numbers)s"), numbers=number)
    groups = {AGGREGATE_GROUP}
    if vote.tally_grouping == TallyGrouping.PER_UNIT:
        from ratify.votes.services import unit_codes

        groups = set(unit_codes(db, org, (vote.eligibility or {}).get("units", [])))
    else:
        group = AGGREGATE_GROUP
    if group not in groups:
        raise BadRequest(N_("Choose the bargaining unit the voter would vote in."))
    voter = find_voter(db, vote, number)
    if voter is not None and voter.status in VOTING:
        raise BadRequest(N_("This member is already on the list."))
    data = _factor_data(db, org, [member_id]).get(member_id)
    voter_id = voter.id if voter is not None else uuid.uuid4()
    factor, check = _answer(factors.checker(secret_key), voter_id, vote.second_factor, number, data)
    if voter is None:
        voter = Voter(
            id=voter_id,
            vote_id=vote.id,
            member_id=member_id,
            member_number=number,
            credential_issue=1,
            has_voted=False,
        )
    if factor is None and vote.status == VoteStatus.OPEN:
        factor = SecondFactor.NONE  # no time left to choose another: counted as none
    voter.status = VoterStatus.CHALLENGED
    voter.reason = reason
    voter.tally_group = group
    voter.factor = factor
    voter.factor_check = check
    if voter.credential_hash is None:  # excluded by the rule, so never given a link
        voter.credential_hash = credentials.Minter(secret_key, vote.id).lookup(
            voter_id, voter.credential_issue
        )
    db.add(voter)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="voter.challenged",
        object_type="vote",
        object_id=vote.id,
        member_id=member_id,
        data={
            "reason": reason,
            "group": group,
            "second_factor": factor.value if factor else "missing",
        },
    )
    return voter


def use_fallback_factor(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    factor: SecondFactor,
    secret_key: str,
) -> dict[str, int]:
    """For the voters whose roster lacks the data of the vote's factor: another factor (for
    those who have its data) or none. Returns how many changed and how many still lack."""
    if vote.status != VoteStatus.SCHEDULED:
        raise Conflict(N_("The second factor can be changed only between scheduling and opening."))
    if factor == SecondFactor.POSTAL_CODE and vote.mail_letters:
        raise BadRequest(
            N_(
                "The postal code shows through a letter's envelope window: choose another second "
                "factor when letters are mailed."
            )
        )
    lacking = select(Voter.id).where(
        Voter.vote_id == vote.id, Voter.status.in_(VOTING), Voter.factor.is_(None)
    )
    if factor == SecondFactor.NONE:
        result = db.execute(
            update(Voter)
            .where(Voter.id.in_(lacking))
            .values(factor=SecondFactor.NONE, factor_check=None)
            .execution_options(synchronize_session=False)
        )
        changed = int(getattr(result, "rowcount", 0))
    else:
        rows = db.execute(
            select(Voter.id, Voter.member_id, Voter.member_number).where(Voter.id.in_(lacking))
        ).all()
        data = _factor_data(db, org, [r.member_id for r in rows] if len(rows) < 5000 else None)
        checking = factors.checker(secret_key)
        updates = []
        for voter_id, member_id, number in rows:
            chosen, check = _answer(checking, voter_id, factor, number, data.get(member_id))
            if chosen is not None:
                updates.append({"id": voter_id, "factor": chosen, "factor_check": check})
        if updates:
            db.execute(update(Voter), updates)
        changed = len(updates)
    db.expire_all()
    still = summarize(db, vote).missing_factor
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.second_factor_fallback",
        object_type="vote",
        object_id=vote.id,
        data={"second_factor": factor.value, "changed": changed, "still_missing": still},
    )
    return {"changed": changed, "still_missing": still}


def eligible_by_group(db: Session, vote: Vote) -> dict[str, int]:
    """Eligible voters per tally group (``Vote.eligible_counts`` fixes them at opening)."""
    stmt = (
        select(Voter.tally_group, func.count())
        .where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
        .group_by(Voter.tally_group)
    )
    return {group: int(n) for group, n in db.execute(stmt).all()}


def at_opening(db: Session, vote: Vote) -> dict[str, Any]:
    """The list as it opens (for the audit log). Voters still lacking their factor's data
    answer none: they are counted here, and on the certificate."""
    result = db.execute(
        update(Voter)
        .where(Voter.vote_id == vote.id, Voter.status.in_(VOTING), Voter.factor.is_(None))
        .values(factor=SecondFactor.NONE)
        .execution_options(synchronize_session=False)
    )
    counts = summarize(db, vote)
    return {
        "fingerprint": vote.voter_fingerprint,
        "eligible": counts.eligible,
        "challenged": counts.challenged,
        "no_second_factor": counts.by_factor.get(SecondFactor.NONE.value, 0),
        "defaulted_to_none": int(getattr(result, "rowcount", 0)),
        "small_groups": sorted(counts.small_groups),
    }


# -- letters ------------------------------------------------------------------------------------

LETTER_FIELDS = ("first_name", "last_name", "address_line1", "address_line2", "city", "region",
                 "postal_code", "country")  # fmt: skip


def factors_of_voters(db: Session, vote: Vote) -> set[SecondFactor | None]:
    """The second factors that the vote's eligible and challenged voters answer."""
    stmt = select(Voter.factor).where(Voter.vote_id == vote.id, Voter.status.in_(VOTING))
    return set(db.scalars(stmt.distinct()))


def letter_recipients(db: Session, vote: Vote) -> Iterator[Any]:
    """Every eligible and challenged voter with what a letter needs: voter id, credential
    issue, member number, the LETTER_FIELDS and the preferred language; by postal code, as
    a mail house sorts letters. One streamed query."""
    stmt = (
        select(
            Voter.id,
            Voter.credential_issue,
            Voter.member_number,
            *(getattr(Member, name) for name in LETTER_FIELDS),
            Member.preferred_language,
        )
        .join(Member, Member.id == Voter.member_id)
        .where(Voter.vote_id == vote.id, Voter.status.in_(VOTING))
        .order_by(Member.postal_code, Voter.member_number)
    )
    yield from db.execute(stmt)
