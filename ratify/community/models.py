"""Community decisions: who "we" are (constituencies, their people and criteria), events and
attendance, the campaign's demands aimed at decision-makers, and the offers (and the
organization's counter-proposals) put on the table, each demand assessed.

People are ``Member`` rows of the organization (the vote engine, notices and letters already
know them); a ``ConstituencyMember`` says how one belongs to one constituency."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from ratify.db import Base, UUIDPrimaryKey, utcnow


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


def _enum(enum: type[StrEnum], length: int = 20) -> Enum:
    return Enum(enum, native_enum=False, length=length, values_callable=_values)


class Constituency(UUIDPrimaryKey, Base):
    """A deciding body the organization defines for itself ("tenants of the three Eastside
    buildings owned by X"). ``criteria`` (combined with AND; a missing key is no criterion):
    ``joined_before`` (ISO date), ``areas`` (a subset of ``area_choices``),
    ``relationships`` (a subset of ``relationship_choices``), ``attended`` ({"at_least": N,
    "of_last": M}). With ``approval_required`` a person counts only once a leader approved
    them; without it, from when they joined."""

    __tablename__ = "constituencies"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The choices offered on the sign-up form (buildings, postal codes, neighborhoods; tenant,
    # worker, parent, ...), one a line as leaders write them.
    area_choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    relationship_choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    approval_required: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The public sign-up link's code (/join/<code>); the link can be closed.
    signup_code: Mapped[str] = mapped_column(String(32), unique=True)
    signup_open: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The consent line shown on the sign-up form (how the person's data is used).
    consent_text: Mapped[str] = mapped_column(Text, default="")
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonStatus(StrEnum):
    PENDING = "pending"  # signed up; waits for a leader when approval is required
    APPROVED = "approved"
    REJECTED = "rejected"  # with a reason
    MERGED = "merged"  # a duplicate of ``merged_into_id``; nothing of it counts
    REMOVED = "removed"  # left (``left_on``): counted before, not after


class PersonSource(StrEnum):
    SIGNUP = "signup"
    LEADER = "leader"
    IMPORT = "import"


class ConstituencyMember(UUIDPrimaryKey, Base):
    """One person in one constituency: how they came in, where they live or work and their
    relationship, and the leaders' decision. Dated, so "who met the criteria on D" is a
    query: ``joined_on`` (signed up or added), ``approved_on``, ``left_on``."""

    __tablename__ = "constituency_members"
    __table_args__ = (
        UniqueConstraint("constituency_id", "member_id"),
        Index("ix_constituency_members_constituency_status", "constituency_id", "status"),
    )

    constituency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("constituencies.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    status: Mapped[PersonStatus] = mapped_column(_enum(PersonStatus))
    source: Mapped[PersonSource] = mapped_column(_enum(PersonSource))
    area: Mapped[str] = mapped_column(String(200), default="")
    relationship: Mapped[str] = mapped_column(String(100), default="")
    joined_on: Mapped[date]
    approved_on: Mapped[date | None]
    left_on: Mapped[date | None]
    consented_at: Mapped[datetime | None]  # the sign-up's consent line, ticked
    reason: Mapped[str] = mapped_column(String(500), default="")  # a rejection's or removal's
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None]
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventKind(StrEnum):
    MEETING = "meeting"
    ACTION = "action"
    LISTENING_SESSION = "listening_session"


class Event(UUIDPrimaryKey, Base):
    """A meeting, action or listening session. Attendance feeds a constituency's "attended at
    least N of the last M events" criterion: its own events and the organization-wide ones
    (no constituency). Members check in on their phone with ``checkin_code`` until
    ``checkin_closes_at``."""

    __tablename__ = "community_events"
    __table_args__ = (Index("ix_community_events_org_held_on", "organization_id", "held_on"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    constituency_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("constituencies.id"))
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind))
    title: Mapped[str] = mapped_column(String(200))
    held_on: Mapped[date]
    location: Mapped[str] = mapped_column(String(200), default="")
    checkin_code: Mapped[str] = mapped_column(String(12), unique=True)
    checkin_closes_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttendanceMethod(StrEnum):
    LEADER = "leader"  # recorded by a leader from the list
    CHECKIN = "checkin"  # the person checked in with the event's code


class Attendance(UUIDPrimaryKey, Base):
    __tablename__ = "community_attendance"
    __table_args__ = (UniqueConstraint("event_id", "member_id"),)

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("community_events.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    method: Mapped[AttendanceMethod] = mapped_column(_enum(AttendanceMethod))
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommunityCampaign(UUIDPrimaryKey, Base):
    """A campaign: what the constituency presses for, with whom it negotiates. (Not a notices
    campaign, which is a mailing.)"""

    __tablename__ = "community_campaigns"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    constituency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("constituencies.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Shown to members (through a shareable link) when the organization chooses to.
    record_code: Mapped[str] = mapped_column(String(32), unique=True)
    record_shared: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DecisionMaker(UUIDPrimaryKey, Base):
    """Who can grant a demand: a person, in a role, at an institution."""

    __tablename__ = "decision_makers"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    institution: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemandStatus(StrEnum):
    PRESSING = "pressing"  # on the table, campaigned for
    REVISING = "revising"  # reopened for revision after an offer was rejected
    WON = "won"  # met by an accepted offer
    PARTLY_WON = "partly_won"
    DROPPED = "dropped"


class Demand(UUIDPrimaryKey, Base):
    """One demand, aimed at one decision-maker. Edits keep every earlier version as a
    ``DemandVersion``; ``version`` is the current one's number."""

    __tablename__ = "demands"

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("community_campaigns.id"), index=True)
    decision_maker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decision_makers.id"))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DemandStatus] = mapped_column(_enum(DemandStatus))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemandVersion(UUIDPrimaryKey, Base):
    """A demand as it stood from ``changed_at``: the first version, and one per change."""

    __tablename__ = "demand_versions"
    __table_args__ = (UniqueConstraint("demand_id", "version"),)

    demand_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("demands.id"))
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DemandStatus] = mapped_column(_enum(DemandStatus))
    decision_maker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decision_makers.id"))
    note: Mapped[str] = mapped_column(String(500), default="")  # why it changed
    # A leader, or null when an offer's outcome changed it.
    changed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class OfferSide(StrEnum):
    DECISION_MAKER = "decision_maker"  # an offer put on the table
    ORGANIZATION = "organization"  # the organization's counter-proposal


class OfferStatus(StrEnum):
    ON_TABLE = "on_table"
    VOTING = "voting"  # a decision vote on it is set up or running
    ACCEPTED = "accepted"  # by a certified decision vote
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"  # a later offer replaced it


class Offer(UUIDPrimaryKey, Base):
    """One entry in the negotiation's thread, in order of ``made_on`` then ``created_at``:
    an offer from the decision-maker (assessed demand by demand, and put to a decision
    vote) or a counter-proposal from the organization."""

    __tablename__ = "offers"

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("community_campaigns.id"), index=True)
    side: Mapped[OfferSide] = mapped_column(_enum(OfferSide))
    # A counter-proposal answers an offer (or none): the thread shows which.
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("offers.id"))
    decision_maker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decision_makers.id"))
    made_on: Mapped[date]
    made_by: Mapped[str] = mapped_column(String(200))  # who made it, in words
    text: Mapped[str] = mapped_column(Text, default="")
    # An attached document (a PDF), as the vote's full text is kept.
    document: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    document_name: Mapped[str] = mapped_column(String(255), default="")
    document_size: Mapped[int] = mapped_column(default=0)
    document_digest: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[OfferStatus] = mapped_column(_enum(OfferStatus), default=OfferStatus.ON_TABLE)
    # The certified decision, written back: {vote_id, passed, counts, certified_at, ...}.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Assessment(StrEnum):
    MET = "met"
    PARTLY_MET = "partly_met"
    NOT_MET = "not_met"


class OfferAssessment(UUIDPrimaryKey, Base):
    """How an offer answers one demand: met, partly met or not met, with a note."""

    __tablename__ = "offer_assessments"
    __table_args__ = (UniqueConstraint("offer_id", "demand_id"),)

    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id"))
    demand_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("demands.id"))
    assessment: Mapped[Assessment] = mapped_column(_enum(Assessment))
    note: Mapped[str] = mapped_column(Text, default="")
