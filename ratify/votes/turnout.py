"""Turnout: how many of the eligible voters have voted, per tally group and channel, and by
the hour. Read from the voter rows only, never from the ballot box: no count of choices can
come out of here (DESIGN.md §4 rule 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.votes.models import Channel, Vote, Voter, VoterStatus


@dataclass
class GroupTurnout:
    group: str
    eligible: int = 0
    voted: int = 0
    by_channel: dict[Channel, int] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return 100 * self.voted / self.eligible if self.eligible else 0.0


@dataclass
class Turnout:
    groups: list[GroupTurnout]
    total: GroupTurnout
    hourly: list[tuple[datetime, int]]  # (hour, voters who voted in it), in order
    challenged: int

    @property
    def busiest_hour(self) -> int:
        return max((count for _, count in self.hourly), default=0)


def turnout(db: Session, vote: Vote) -> Turnout:
    """Eligible voters, and those of them marked voted (online, on paper or in person)."""
    groups: dict[str, GroupTurnout] = {}
    total = GroupTurnout("")
    rows = db.execute(
        select(Voter.tally_group, Voter.has_voted, Voter.channel, func.count())
        .where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
        .group_by(Voter.tally_group, Voter.has_voted, Voter.channel)
    ).all()
    for group, has_voted, channel, count in rows:
        found = groups.setdefault(group, GroupTurnout(group))
        for target in (found, total):
            target.eligible += count
            if has_voted:
                target.voted += count
                if channel is not None:
                    target.by_channel[channel] = target.by_channel.get(channel, 0) + count
    hourly: list[tuple[datetime, int]] = [
        (hour, count)
        for hour, count in db.execute(
            select(Voter.voted_hour, func.count())
            .where(Voter.vote_id == vote.id, Voter.voted_hour.is_not(None))
            .group_by(Voter.voted_hour)
            .order_by(Voter.voted_hour)
        ).all()
        if hour is not None
    ]
    challenged = db.scalar(
        select(func.count()).where(Voter.vote_id == vote.id, Voter.status == VoterStatus.CHALLENGED)
    )
    return Turnout(
        sorted(groups.values(), key=lambda g: g.group), total, hourly, int(challenged or 0)
    )
