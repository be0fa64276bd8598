"""Constituencies: who "we" are, in the organization's own words and criteria, and who met
those criteria on any date, with each person's reasons (like a union's eligibility preview).

Criteria (``Constituency.criteria``, combined with AND; a missing key is no criterion):
``joined_before`` (ISO date: joined on an earlier day), ``areas`` (lives or works in one of
them), ``relationships`` (tenant, worker, parent, ...), ``attended`` (``{"at_least": N,
"of_last": M}``: at N or more of the last M events held by the date, the constituency's own
and the organization-wide ones). With ``approval_required`` a person counts from the day a
leader approved them; otherwise from the day they joined (a pending person, a second
sign-up with a known phone say, waits for a leader either way). Nobody merged as a duplicate
counts; a removed person counts until the day they left."""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.community.models import (
    Attendance,
    Constituency,
    ConstituencyMember,
    Event,
    PersonStatus,
)
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, NotFound
from ratify.orgs.models import Organization
from ratify.rosters.eligibility import Decision
from ratify.rosters.models import Member

MAX_CHOICES = 100
MAX_EVENTS_LOOKED_BACK = 100

# Reasons, in the order they are reported (a person's first reason is the one counted).
NOT_YET_JOINED = "not_yet_joined"
REJECTED = "rejected"
NOT_APPROVED = "not_approved"
LEFT = "left"
JOINED_TOO_LATE = "joined_too_late"
OUTSIDE_AREAS = "outside_areas"
RELATIONSHIP = "relationship"
TOO_FEW_EVENTS = "too_few_events"
REASONS = {
    NOT_YET_JOINED: N_("Had not joined yet"),
    REJECTED: N_("Rejected by a leader"),
    NOT_APPROVED: N_("Not yet approved by a leader"),
    LEFT: N_("Had left"),
    JOINED_TOO_LATE: N_("Joined too late"),
    OUTSIDE_AREAS: N_("Not in one of the areas"),
    RELATIONSHIP: N_("Relationship not included"),
    TOO_FEW_EVENTS: N_("Attended too few of the recent events"),
}


@dataclass(frozen=True)
class Criteria:
    joined_before: date | None = None
    areas: frozenset[str] = frozenset()
    relationships: frozenset[str] = frozenset()
    attended_at_least: int | None = None
    of_last: int | None = None

    def stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        if self.joined_before is not None:
            stored["joined_before"] = self.joined_before.isoformat()
        if self.areas:
            stored["areas"] = sorted(self.areas)
        if self.relationships:
            stored["relationships"] = sorted(self.relationships)
        if self.attended_at_least is not None and self.of_last is not None:
            stored["attended"] = {"at_least": self.attended_at_least, "of_last": self.of_last}
        return stored


def criteria_of(constituency: Constituency) -> Criteria:
    return stored_criteria(constituency.criteria or {})


def stored_criteria(stored: dict[str, Any]) -> Criteria:
    """Criteria as ``Criteria.stored`` wrote them (on a constituency, or copied into a vote's
    rule when its list was frozen)."""
    attended = stored.get("attended") or {}
    joined = stored.get("joined_before")
    return Criteria(
        joined_before=date.fromisoformat(joined) if joined else None,
        areas=frozenset(stored.get("areas", [])),
        relationships=frozenset(stored.get("relationships", [])),
        attended_at_least=attended.get("at_least"),
        of_last=attended.get("of_last"),
    )


@dataclass(frozen=True)
class ConstituencyFields:
    name: str
    description: str
    area_choices: list[str]
    relationship_choices: list[str]
    criteria: Criteria
    approval_required: bool
    signup_open: bool
    consent_text: str
    form_errors: dict[str, str]


class ConstituencyInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


# -- reading -----------------------------------------------------------------------------------


def list_constituencies(
    db: Session, org: Organization, *, archived: bool = False
) -> list[Constituency]:
    stmt = select(Constituency).where(Constituency.organization_id == org.id)
    stmt = stmt.where(
        Constituency.archived_at.is_not(None) if archived else Constituency.archived_at.is_(None)
    )
    return list(db.scalars(stmt.order_by(Constituency.name)))


def get_constituency(db: Session, org: Organization, constituency_id: uuid.UUID) -> Constituency:
    """A constituency of *this* organization; anyone else's is 404."""
    found = db.scalar(
        select(Constituency).where(
            Constituency.id == constituency_id, Constituency.organization_id == org.id
        )
    )
    if found is None:
        raise NotFound()
    return found


def status_counts(db: Session, constituency: Constituency) -> dict[str, int]:
    stmt = (
        select(ConstituencyMember.status, func.count())
        .where(ConstituencyMember.constituency_id == constituency.id)
        .group_by(ConstituencyMember.status)
    )
    return {status.value: n for status, n in db.execute(stmt).all()}


# -- changing ----------------------------------------------------------------------------------


def check_fields(
    db: Session, org: Organization, fields: ConstituencyFields, current: Constituency | None
) -> dict[str, str]:
    errors = dict(fields.form_errors)
    if not fields.name:
        errors["name"] = N_("Give the constituency a name.")
    elif len(fields.name) > 200:
        errors["name"] = N_("Use at most 200 characters.")
    else:
        clash = db.scalar(
            select(Constituency.id).where(
                Constituency.organization_id == org.id,
                func.lower(Constituency.name) == fields.name.lower(),
            )
        )
        if clash is not None and (current is None or clash != current.id):
            errors["name"] = N_("Another constituency has this name.")
    if len(fields.description) > 5000:
        errors["description"] = N_("Use at most 5000 characters.")
    if len(fields.consent_text) > 2000:
        errors["consent_text"] = N_("Use at most 2000 characters.")
    for name, choices in (
        ("area_choices", fields.area_choices),
        ("relationship_choices", fields.relationship_choices),
    ):
        if len(choices) > MAX_CHOICES:
            errors[name] = N_("Write at most 100 choices.")
        elif any(len(c) > 100 for c in choices):
            errors[name] = N_("Use at most 100 characters for each choice.")
    criteria = fields.criteria
    if not criteria.areas <= set(fields.area_choices):
        errors["areas"] = N_("Choose areas from the list of areas.")
    if not criteria.relationships <= set(fields.relationship_choices):
        errors["relationships"] = N_("Choose relationships from the list of relationships.")
    at_least, of_last = criteria.attended_at_least, criteria.of_last
    if (at_least is None) != (of_last is None):
        errors.setdefault("attended", N_("Enter both numbers of events, or neither."))
    elif at_least is not None and of_last is not None:
        if not 1 <= of_last <= MAX_EVENTS_LOOKED_BACK:
            errors.setdefault("attended", N_("Look back over 1 to 100 events."))
        elif not 1 <= at_least <= of_last:
            errors.setdefault(
                "attended", N_("The events attended must be between 1 and the events looked at.")
            )
    return errors


def _apply(constituency: Constituency, fields: ConstituencyFields) -> None:
    constituency.name = fields.name
    constituency.description = fields.description
    constituency.area_choices = list(fields.area_choices)
    constituency.relationship_choices = list(fields.relationship_choices)
    constituency.criteria = fields.criteria.stored()
    constituency.approval_required = fields.approval_required
    constituency.signup_open = fields.signup_open
    constituency.consent_text = fields.consent_text
    constituency.updated_at = utcnow()


def _described(constituency: Constituency) -> dict[str, Any]:
    return {
        "name": constituency.name,
        "criteria": constituency.criteria,
        "area_choices": constituency.area_choices,
        "relationship_choices": constituency.relationship_choices,
        "approval_required": constituency.approval_required,
        "signup_open": constituency.signup_open,
    }


def create_constituency(
    db: Session, org: Organization, *, actor: StaffUser | None, fields: ConstituencyFields
) -> Constituency:
    errors = check_fields(db, org, fields, None)
    if errors:
        raise ConstituencyInvalid(errors)
    constituency = Constituency(
        id=uuid.uuid4(), organization_id=org.id, signup_code=secrets.token_urlsafe(12)
    )
    _apply(constituency, fields)
    db.add(constituency)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        actor_label=None if actor else "cli",
        action="constituency.created",
        object_type="constituency",
        object_id=constituency.id,
        data=_described(constituency),
    )
    return constituency


def update_constituency(
    db: Session,
    org: Organization,
    constituency: Constituency,
    *,
    actor: StaffUser,
    fields: ConstituencyFields,
) -> None:
    """Change a constituency. Votes already scheduled keep the list they froze; later ones
    freeze under the new criteria."""
    errors = check_fields(db, org, fields, constituency)
    if errors:
        raise ConstituencyInvalid(errors)
    _apply(constituency, fields)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="constituency.updated",
        object_type="constituency",
        object_id=constituency.id,
        data=_described(constituency),
    )


def new_signup_code(
    db: Session, org: Organization, constituency: Constituency, *, actor: StaffUser
) -> None:
    """A new sign-up link: the old one (shared too widely, say) stops working."""
    constituency.signup_code = secrets.token_urlsafe(12)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="constituency.signup_link_changed",
        object_type="constituency",
        object_id=constituency.id,
    )


# -- who met the criteria on a date ---------------------------------------------------------


@dataclass
class Membership:
    """Everyone in the constituency on the list (merged duplicates left out), each with the
    reasons they did not meet the criteria on ``on`` (none: they did)."""

    constituency: Constituency
    on: date
    decisions: list[Decision]
    events_counted: int  # the recent events the attendance criterion looked at
    attended: dict[uuid.UUID, int]  # member -> how many of those they attended

    @property
    def included(self) -> int:
        return sum(1 for d in self.decisions if d.eligible)

    def excluded_by_reason(self) -> Counter[str]:
        return Counter(d.reasons[0] for d in self.decisions if d.reasons)


def recent_events(db: Session, constituency: Constituency, on: date, count: int) -> list[uuid.UUID]:
    """The last ``count`` events held by ``on``: the constituency's own and the
    organization-wide ones, before that day, and on the day itself once anyone's attendance
    is recorded (a meeting that evening has not been missed by everyone that morning)."""
    happened = exists(select(Attendance.id).where(Attendance.event_id == Event.id))
    stmt = (
        select(Event.id)
        .where(
            Event.organization_id == constituency.organization_id,
            or_(Event.constituency_id == constituency.id, Event.constituency_id.is_(None)),
            or_(Event.held_on < on, and_(Event.held_on == on, happened)),
        )
        .order_by(Event.held_on.desc(), Event.created_at.desc())
        .limit(count)
    )
    return list(db.scalars(stmt))


def evaluate(
    db: Session,
    org: Organization,
    constituency: Constituency,
    on: date,
    *,
    criteria: Criteria | None = None,
    approval_required: bool | None = None,
) -> Membership:
    """Who met the constituency's criteria on ``on``, each with their reasons: three queries
    whatever the constituency's size (its people, the recent events, attendance at them).
    ``criteria`` and ``approval_required``: as a vote froze them, instead of today's."""
    if constituency.organization_id != org.id:
        raise NotFound()
    if criteria is None:
        criteria = criteria_of(constituency)
    if approval_required is None:
        approval_required = constituency.approval_required
    stmt = (
        select(
            ConstituencyMember.member_id,
            Member.member_number,
            Member.first_name,
            Member.last_name,
            ConstituencyMember.status,
            ConstituencyMember.area,
            ConstituencyMember.relationship,
            ConstituencyMember.joined_on,
            ConstituencyMember.approved_on,
            ConstituencyMember.left_on,
            ConstituencyMember.reason,
        )
        .join(Member, Member.id == ConstituencyMember.member_id)
        .where(
            ConstituencyMember.constituency_id == constituency.id,
            ConstituencyMember.status != PersonStatus.MERGED,
            Member.organization_id == org.id,
        )
        .order_by(Member.sort_name, Member.member_number, Member.id)
    )
    rows = db.execute(stmt).all()
    attended: Counter[uuid.UUID] = Counter()
    events: list[uuid.UUID] = []
    if criteria.attended_at_least is not None and criteria.of_last is not None:
        events = recent_events(db, constituency, on, criteria.of_last)
        if events:
            counted = (
                select(Attendance.member_id, func.count())
                .where(Attendance.event_id.in_(events))
                .group_by(Attendance.member_id)
            )
            attended.update({m: n for m, n in db.execute(counted).all()})
    decisions: list[Decision] = []
    for (
        member_id,
        number,
        first,
        last,
        status,
        area,
        relationship,
        joined_on,
        approved_on,
        left_on,
        note,
    ) in rows:
        reasons: list[str] = []
        if joined_on > on:
            reasons.append(NOT_YET_JOINED)
        elif status == PersonStatus.REJECTED:
            reasons.append(REJECTED)
        elif (approval_required or status == PersonStatus.PENDING) and (
            approved_on is None or approved_on > on
        ):  # a pending person waits for a leader either way (a second sign-up, say)
            reasons.append(NOT_APPROVED)
        if left_on is not None and left_on <= on:
            reasons.append(LEFT)
        if criteria.joined_before is not None and joined_on >= criteria.joined_before:
            reasons.append(JOINED_TOO_LATE)
        if criteria.areas and area not in criteria.areas:
            reasons.append(OUTSIDE_AREAS)
        if criteria.relationships and relationship not in criteria.relationships:
            reasons.append(RELATIONSHIP)
        if criteria.attended_at_least is not None and (
            attended[member_id] < criteria.attended_at_least
        ):
            reasons.append(TOO_FEW_EVENTS)
        decisions.append(
            Decision(
                member_id,
                number,
                f"{last}, {first}".strip(", "),
                (),
                tuple(reasons),
                note if status in (PersonStatus.REJECTED, PersonStatus.REMOVED) else "",
            )
        )
    return Membership(constituency, on, decisions, len(events), dict(attended))
