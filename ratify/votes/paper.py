"""Paper and in-person voting. While the vote is open an election worker *strikes off* a
voter who votes on paper or in person, which spends their credential exactly as an online
cast does (one conditional update, so the two channels together give one vote, DESIGN.md §4
rule 2). After the close (rule 3) the committee enters those ballots as hand-counted batches
per tally group; a batch counts once a second committee member confirms it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, Forbidden, NotFound
from ratify.orgs.models import Organization
from ratify.votes import voters
from ratify.votes.models import (
    BatchStatus,
    Channel,
    Envelope,
    EnvelopeStatus,
    PaperBatch,
    Vote,
    Voter,
    VoterStatus,
    VoteStatus,
)

PHYSICAL = (Channel.PAPER, Channel.IN_PERSON)
BLANK = "blank"  # the count of blank ballots, where the vote allows them
MAX_COUNT = 1_000_000  # ballots in one batch: more is a typing slip
MAX_LABEL = 200
COUNTING = (VoteStatus.CLOSED,)  # batches change only between the close and the tally
BEFORE_CLOSE = (VoteStatus.DRAFT, VoteStatus.SCHEDULED, VoteStatus.OPEN)


# -- strike-off -----------------------------------------------------------------------------------


class VoterState:
    """What the strike-off page says of a voter (never how they voted)."""

    NOT_VOTED = "not_voted"
    ONLINE = "online"
    PAPER = "paper"
    IN_PERSON = "in_person"
    EXCLUDED = "excluded"


def state_of(voter: Voter) -> str:
    if voter.status == VoterStatus.EXCLUDED:
        return VoterState.EXCLUDED
    if not voter.has_voted:
        return VoterState.NOT_VOTED
    if voter.channel == Channel.PAPER:
        return VoterState.PAPER
    if voter.channel == Channel.IN_PERSON:
        return VoterState.IN_PERSON
    return VoterState.ONLINE


def strike_off(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    member_number: str,
    channel: Channel,
) -> Voter:
    """Mark the voter voted on paper or in person. One conditional update holds every
    condition (on the list, not yet voted, the vote open now), the same kind as the online
    cast's: whichever of the two comes second matches nothing, so under any concurrency a
    voter votes once. Only when it matches nothing is the voter read again, to say why. A
    challenged voter's ballot goes into a sealed envelope, recorded here for the committee.
    Audited with the member number and the channel, nothing else."""
    if channel not in PHYSICAL:
        raise BadRequest(N_("Choose on paper or in person."))
    if vote.status != VoteStatus.OPEN:
        raise Conflict(N_("Voters can be struck off only while the vote is open."))
    number = member_number.strip()
    voter = voters.find_voter(db, vote, number) if number else None
    if voter is None:
        raise NotFound(N_("Nobody with this member number is on the list for this vote."))
    now = utcnow()
    status = db.execute(
        update(Voter)
        .where(
            Voter.id == voter.id,
            Voter.status.in_(voters.VOTING),
            Voter.has_voted.is_(False),
            exists().where(
                Vote.id == Voter.vote_id,
                Vote.status == VoteStatus.OPEN,
                or_(Vote.closes_at.is_(None), Vote.closes_at > now),
            ),
        )
        .values(has_voted=True, channel=channel, voted_hour=_hour(now))
        .returning(Voter.status)
        .execution_options(synchronize_session=False)
    ).scalar()
    db.refresh(voter)
    if status is None:
        _refuse(voter)
    if status == VoterStatus.CHALLENGED:
        db.add(
            Envelope(
                vote_id=vote.id,
                voter_id=voter.id,
                channel=channel,
                sealed=None,  # the envelope is physical: this row records it
                status=EnvelopeStatus.SEALED,
            )
        )
        db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="voter.struck_off",
        object_type="vote",
        object_id=vote.id,
        data={"member_number": voter.member_number, "channel": channel.value},
    )
    return voter


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)  # rule 1: when, to the hour


def _refuse(voter: Voter) -> None:
    state = state_of(voter)
    number = voter.member_number
    if state == VoterState.EXCLUDED:
        raise Conflict(
            N_("Member %(number)s is excluded from this vote and cannot vote."), number=number
        )
    if state == VoterState.ONLINE:
        raise Conflict(
            N_("Member %(number)s has already voted online: they cannot vote again on paper "
               "or in person."), number=number,
        )  # fmt: skip
    if state == VoterState.PAPER:
        raise Conflict(N_("Member %(number)s is already marked voted on paper."), number=number)
    if state == VoterState.IN_PERSON:
        raise Conflict(N_("Member %(number)s is already marked voted in person."), number=number)
    raise Conflict(N_("Voters can be struck off only while the vote is open."))


# -- paper batches --------------------------------------------------------------------------------


class BatchInvalid(BadRequest):
    """A batch the form got wrong: a message by field (``group``, ``label``, ``count_KEY``,
    ``counts``), with the figures a message names."""

    def __init__(
        self, errors: dict[str, str], params: dict[str, dict[str, object]] | None = None
    ) -> None:
        super().__init__(N_("Check the highlighted fields."))
        self.errors = errors
        self.field_params = params or {}


@dataclass(frozen=True)
class BatchRow:
    batch: PaperBatch
    entered_by: str
    confirmed_by: str | None

    @property
    def total(self) -> int:
        return sum(self.batch.counts.values())


@dataclass
class GroupPaper:
    """One tally group's paper and in-person ballots: how many voters were struck off (a
    challenged voter's once the committee accepts their envelope), how many ballots the
    batches entered or confirmed hold, and the envelopes still undecided."""

    group: str
    struck_off: int = 0
    entered: int = 0  # in batches entered or confirmed (withdrawn ones are not)
    confirmed: int = 0
    undecided_envelopes: int = 0
    batches: list[BatchRow] = field(default_factory=list)
    counted: dict[str, int] = field(default_factory=dict)  # option key -> confirmed ballots

    @property
    def remaining(self) -> int:
        return max(0, self.struck_off - self.entered)


def option_keys(vote: Vote) -> list[str]:
    """The keys a batch counts, in ballot order: the options, then blank if allowed."""
    keys = [option.key for option in vote.options]
    return [*keys, BLANK] if vote.allow_blank else keys


def require_after_close(vote: Vote) -> None:
    if vote.status in BEFORE_CLOSE:
        raise Conflict(
            N_("Paper ballots are counted in only after the vote closes: until then nobody "
               "may see any count of choices.")
        )  # fmt: skip


def _require_counting(vote: Vote) -> None:
    require_after_close(vote)
    if vote.status not in COUNTING:
        raise Conflict(N_("The vote has been counted: its paper batches can no longer change."))


_not_yet_counted = exists().where(
    Envelope.voter_id == Voter.id, Envelope.status != EnvelopeStatus.ACCEPTED
)


def paper_groups(db: Session, vote: Vote) -> list[GroupPaper]:
    """Every tally group of the vote with its struck-off voters and its batches."""
    groups = {g: GroupPaper(g) for g in voters.summarize(db, vote).groups}
    physical = [
        Voter.vote_id == vote.id,
        Voter.status.in_(voters.VOTING),
        Voter.has_voted.is_(True),
        Voter.channel.in_(PHYSICAL),
    ]
    for group, count in db.execute(
        select(Voter.tally_group, func.count())
        .where(*physical, ~_not_yet_counted)
        .group_by(Voter.tally_group)
    ).all():
        groups.setdefault(group, GroupPaper(group)).struck_off = count
    for group, count in db.execute(
        select(Voter.tally_group, func.count())
        .join(Envelope, Envelope.voter_id == Voter.id)
        .where(*physical, Envelope.status == EnvelopeStatus.SEALED)
        .group_by(Voter.tally_group)
    ).all():
        groups.setdefault(group, GroupPaper(group)).undecided_envelopes = count
    for row in batches_of(db, vote):
        found = groups.setdefault(row.batch.tally_group, GroupPaper(row.batch.tally_group))
        found.batches.append(row)
        if row.batch.status != BatchStatus.WITHDRAWN:
            found.entered += row.total
        if row.batch.status == BatchStatus.CONFIRMED:
            found.confirmed += row.total
            for key, count in row.batch.counts.items():
                found.counted[key] = found.counted.get(key, 0) + count
    return sorted(groups.values(), key=lambda g: g.group)


def batches_of(db: Session, vote: Vote) -> list[BatchRow]:
    entered_by = aliased(StaffUser)
    confirmed_by = aliased(StaffUser)
    rows = db.execute(
        select(PaperBatch, entered_by.name, confirmed_by.name)
        .join(entered_by, entered_by.id == PaperBatch.entered_by_id)
        .outerjoin(confirmed_by, confirmed_by.id == PaperBatch.confirmed_by_id)
        .where(PaperBatch.vote_id == vote.id)
        .order_by(PaperBatch.entered_at, PaperBatch.id)
    ).all()
    return [BatchRow(batch, entered, confirmed) for batch, entered, confirmed in rows]


def _parse_count(raw: str) -> int | None:
    raw = raw.strip()
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 7:
        return None
    value = int(raw)
    return value if value <= MAX_COUNT else None


def _check_batch(
    vote: Vote, groups: dict[str, GroupPaper], group: str, label: str, counts: dict[str, str]
) -> tuple[str, dict[str, int]]:
    errors: dict[str, str] = {}
    params: dict[str, dict[str, object]] = {}
    if group not in groups:
        errors["group"] = N_("Choose the tally group the ballots were cast in.")
    label = label.strip()
    if not label:
        errors["label"] = N_("Name the batch (the ballot box or site, say).")
    elif len(label) > MAX_LABEL:
        errors["label"] = N_("Use at most 200 characters.")
    keys = option_keys(vote)
    if set(counts) - set(keys):
        errors["counts"] = N_("Count only the options on this vote's ballot.")
    parsed: dict[str, int] = {}
    for key in keys:
        value = _parse_count(counts.get(key, ""))
        if value is None:
            errors[f"count_{key}"] = N_("Enter a whole number of ballots, 0 or more.")
        else:
            parsed[key] = value
    if not errors:
        total = sum(parsed.values())
        remaining = groups[group].remaining
        if total == 0:
            errors["counts"] = N_("A batch holds at least one ballot.")
        elif total > remaining:
            errors["counts"] = N_(
                "This batch holds %(total)s ballots, but only %(remaining)s voters struck off on "
                "paper or in person in %(group)s are not yet in a batch."
            )
            params["counts"] = {"total": total, "remaining": remaining, "group": group}
    if errors:
        raise BatchInvalid(errors, params)
    return label, parsed


def enter_batch(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    group: str,
    label: str,
    counts: dict[str, str],
) -> PaperBatch:
    """A committee member's count of one batch of paper ballots (the caller holds the vote's
    row lock, so two entries at once cannot both take the last struck-off voters)."""
    _require_counting(vote)
    groups = {g.group: g for g in paper_groups(db, vote)}
    label, parsed = _check_batch(vote, groups, group, label, counts)
    batch = PaperBatch(
        id=uuid.uuid4(),
        vote_id=vote.id,
        tally_group=group,
        label=label,
        counts=parsed,
        status=BatchStatus.ENTERED,
        entered_by_id=actor.id,
        entered_at=utcnow(),
    )
    db.add(batch)
    db.flush()
    _audit(db, org, vote, actor, "paper_batch.entered", batch)
    return batch


def _batch(db: Session, vote: Vote, batch_id: uuid.UUID) -> PaperBatch:
    batch = db.get(PaperBatch, batch_id)
    if batch is None or batch.vote_id != vote.id:
        raise NotFound()
    return batch


def _audit(
    db: Session, org: Organization, vote: Vote, actor: StaffUser, action: str, batch: PaperBatch
) -> None:
    # Counts are fine here: the vote is closed (rule 3), and a batch names no voter.
    audit.record(
        db,
        organization=org,
        actor=actor,
        action=action,
        object_type="vote",
        object_id=vote.id,
        data={
            "batch": str(batch.id),
            "group": batch.tally_group,
            "label": batch.label,
            "counts": dict(batch.counts),
        },
    )


def _move(db: Session, batch: PaperBatch, **values: object) -> bool:
    """Entered → confirmed or withdrawn, only if still entered: of a confirmation and a
    withdrawal at once, one wins."""
    moved = db.execute(
        update(PaperBatch)
        .where(PaperBatch.id == batch.id, PaperBatch.status == BatchStatus.ENTERED)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.refresh(batch)
    return int(getattr(moved, "rowcount", 0)) == 1


def _not_entered(batch: PaperBatch) -> Conflict:
    if batch.status == BatchStatus.CONFIRMED:
        return Conflict(N_("This batch is already confirmed."))
    return Conflict(N_("This batch was withdrawn."))


def confirm_batch(
    db: Session, org: Organization, vote: Vote, *, actor: StaffUser, batch_id: uuid.UUID
) -> PaperBatch:
    """A second committee member's confirmation: from now on the batch counts."""
    _require_counting(vote)
    batch = _batch(db, vote, batch_id)
    if batch.entered_by_id == actor.id:
        raise Forbidden(N_("You entered this batch: a second committee member has to confirm it."))
    if batch.status != BatchStatus.ENTERED:
        raise _not_entered(batch)
    # Struck-off voters can only become fewer after the close (a challenge rejected), so the
    # check made at entry is made again against what is already counted.
    group = next((g for g in paper_groups(db, vote) if g.group == batch.tally_group), None)
    total = sum(batch.counts.values())
    if group is None or group.confirmed + total > group.struck_off:
        raise Conflict(
            N_("Confirmed, this batch would count more paper ballots in %(group)s than voters "
               "struck off there (%(count)s): withdraw the wrong batch first."),
            group=batch.tally_group, count=group.struck_off if group else 0,
        )  # fmt: skip
    if not _move(
        db,
        batch,
        status=BatchStatus.CONFIRMED,
        confirmed_by_id=actor.id,
        confirmed_at=utcnow(),
    ):
        raise _not_entered(batch)
    _audit(db, org, vote, actor, "paper_batch.confirmed", batch)
    return batch


def withdraw_batch(
    db: Session, org: Organization, vote: Vote, *, actor: StaffUser, batch_id: uuid.UUID
) -> PaperBatch:
    """The member who entered a batch takes it back before anyone confirms it."""
    _require_counting(vote)
    batch = _batch(db, vote, batch_id)
    if batch.entered_by_id != actor.id:
        raise Forbidden(N_("Only the committee member who entered a batch can withdraw it."))
    if batch.status != BatchStatus.ENTERED or not _move(db, batch, status=BatchStatus.WITHDRAWN):
        raise _not_entered(batch)
    _audit(db, org, vote, actor, "paper_batch.withdrawn", batch)
    return batch
