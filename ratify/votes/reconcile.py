"""Reconciliation: do the ballots counted match the voters marked voted, channel by channel and
tally group by tally group? Shown on the result and the certificate; any mismatch blocks
certification until the committee explains it (``Vote.reconciliation_note``).

Per group:

- online: ballots in the box = voters marked voted online (eligible voters, and challenged
  ones whose envelope was accepted: its ballot joins the box); receipts = online ballots;
- paper and in person: ballots in confirmed paper batches = voters struck off on paper or in
  person (eligible, and challenged ones whose paper envelope was accepted).

Beside them, for the whole vote, what the certificate counts from the audit log: credentials
reissued, links shown to staff, mail-house exports (DESIGN.md §4 rule 4).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.votes.models import (
    Ballot,
    BatchStatus,
    Channel,
    Envelope,
    EnvelopeStatus,
    PaperBatch,
    Receipt,
    Vote,
    Voter,
    VoterStatus,
)

PAPER_CHANNELS = (Channel.PAPER, Channel.IN_PERSON)


@dataclass(frozen=True)
class GroupReconciliation:
    group: str
    online_voters: int
    online_ballots: int
    receipts: int
    paper_voters: int
    paper_ballots: int

    @property
    def online_matches(self) -> bool:
        return self.online_voters == self.online_ballots == self.receipts

    @property
    def paper_matches(self) -> bool:
        return self.paper_voters == self.paper_ballots

    @property
    def matches(self) -> bool:
        return self.online_matches and self.paper_matches


@dataclass(frozen=True)
class Reconciliation:
    groups: list[GroupReconciliation]
    reissued: int  # credentials reissued
    links_shown: int  # personal links displayed to staff
    mail_house_exports: int

    @property
    def matches(self) -> bool:
        return all(g.matches for g in self.groups)

    @property
    def total(self) -> GroupReconciliation:
        return GroupReconciliation(
            "all",
            *(sum(getattr(g, name) for g in self.groups) for name in _FIGURES),
        )

    def as_dict(self) -> dict[str, object]:
        """As stored with the result and quoted by the record and the certificate."""
        return {
            "groups": [
                {"group": g.group, **{name: getattr(g, name) for name in _FIGURES}}
                for g in self.groups
            ],
            "reissued": self.reissued,
            "links_shown": self.links_shown,
            "mail_house_exports": self.mail_house_exports,
            "matches": self.matches,
        }


_FIGURES = ("online_voters", "online_ballots", "receipts", "paper_voters", "paper_ballots")


def _counted(channels: tuple[Channel, ...]) -> object:
    """Voters marked voted in these channels whose vote counts: eligible, or challenged with
    an accepted envelope."""
    accepted = (
        select(Envelope.voter_id)
        .where(Envelope.status == EnvelopeStatus.ACCEPTED)
        .scalar_subquery()
    )
    return and_(
        Voter.has_voted.is_(True),
        Voter.channel.in_(channels),
        or_(
            Voter.status == VoterStatus.ELIGIBLE,
            and_(Voter.status == VoterStatus.CHALLENGED, Voter.id.in_(accepted)),
        ),
    )


def reconcile(db: Session, vote: Vote) -> Reconciliation:
    figures: dict[str, Counter[str]] = {name: Counter() for name in _FIGURES}
    for name, channels in (("online_voters", (Channel.ONLINE,)), ("paper_voters", PAPER_CHANNELS)):
        stmt = (
            select(Voter.tally_group, func.count())
            .where(Voter.vote_id == vote.id, _counted(channels))  # type: ignore[arg-type]
            .group_by(Voter.tally_group)
        )
        figures[name].update({group: n for group, n in db.execute(stmt).all()})
    for name, model in (("online_ballots", Ballot), ("receipts", Receipt)):
        stmt = (
            select(model.tally_group, func.count())
            .where(model.vote_id == vote.id)
            .group_by(model.tally_group)
        )
        figures[name].update({group: n for group, n in db.execute(stmt).all()})
    batches = select(PaperBatch.tally_group, PaperBatch.counts).where(
        PaperBatch.vote_id == vote.id, PaperBatch.status == BatchStatus.CONFIRMED
    )
    for group, counts in db.execute(batches).all():
        figures["paper_ballots"][group] += sum(int(n) for n in counts.values())
    groups = sorted(set().union(*figures.values()) | set(_voting_groups(db, vote)))
    audit = _audit_counts(db, vote)
    return Reconciliation(
        groups=[
            GroupReconciliation(group, *(figures[name][group] for name in _FIGURES))
            for group in groups
        ],
        reissued=audit["vote.credential_reissued"],
        links_shown=audit["vote.link_shown"],
        mail_house_exports=audit["vote.mail_house_exported"],
    )


def _voting_groups(db: Session, vote: Vote) -> list[str]:
    stmt = (
        select(Voter.tally_group)
        .where(
            Voter.vote_id == vote.id,
            Voter.status.in_((VoterStatus.ELIGIBLE, VoterStatus.CHALLENGED)),
        )
        .distinct()
    )
    return list(db.scalars(stmt))


def _audit_counts(db: Session, vote: Vote) -> Counter[str]:
    stmt = (
        select(AuditEvent.action, func.count())
        .where(
            AuditEvent.organization_id == vote.organization_id,
            AuditEvent.object_type == "vote",
            AuditEvent.object_id == str(vote.id),
            AuditEvent.action.in_(
                ("vote.credential_reissued", "vote.link_shown", "vote.mail_house_exported")
            ),
        )
        .group_by(AuditEvent.action)
    )
    return Counter({action: n for action, n in db.execute(stmt).all()})
