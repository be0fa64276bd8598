"""Events (meetings, actions, listening sessions) and who attended them: recorded by a leader
from the event's list of people, or by the person checking in on their phone with the event's
short code until check-in closes.

An event belongs to one constituency, or to the whole organization (no constituency). Its
people are those of its constituency (of every constituency of the organization when it is
organization-wide) whose status is approved or pending. Attendance feeds the constituencies'
"attended at least N of the last M events" criterion (``ratify.community.constituencies``),
which reads the ``Attendance`` rows written here.

Functions other domains call:

- ``create_event(db, org, *, actor, fields) -> Event``: validate, give it a fresh check-in
  code, audit. Raises ``EventInvalid`` (field -> message) when a field is wrong.
- ``update_event(db, org, event, *, actor, fields) -> dict``: title, date, location and
  closing time; the audit event keeps each change.
- ``record_attendance(db, org, event, member_ids, *, actor) -> int``: mark people present
  (method leader); returns how many were newly recorded (people already recorded are left
  as they are). Raises ``BadRequest`` and writes nothing when any id is not among the
  event's people.
- ``remove_attendance(db, org, event, attendance_id, *, actor) -> None``.
- ``check_in(db, org_or_none, *, code, contact, now, phone_region) -> CheckIn``: one
  person's check-in with the event's code and the phone or email they signed up with.
  Raises ``CheckinRefused`` (status 400) for a wrong or closed code, or a person not on the
  event's list; a second check-in is a success with ``already=True`` and no second row.
- ``attempt_check_in(db, settings, *, code, contact, client_address, now, org=None)``:
  ``check_in`` behind the throttle (refused attempts counted per client address and per code;
  ``TooManyRequests`` past the limit, before anything is looked up or written).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.community import constituencies
from ratify.community.models import (
    Attendance,
    AttendanceMethod,
    Constituency,
    ConstituencyMember,
    Event,
    EventKind,
    PersonStatus,
)
from ratify.contact import normalize_email, normalize_phone
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, NotFound, TooManyRequests
from ratify.orgs.models import Organization, OrgKind
from ratify.rosters.models import Member
from ratify.settings import Settings
from ratify.throttle import services as throttle

# No 0/O, 1/I/L: a code read off a wall or a phone screen is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_ATTEMPTS = 20  # fresh codes tried before giving up (31**6 codes: a collision is rare)

# Who is on an event's list: not rejected, merged or removed.
LISTED_STATUSES = (PersonStatus.APPROVED, PersonStatus.PENDING)

TITLE_MAX = 200
LOCATION_MAX = 200
PEOPLE_SHOWN = 500  # on the record-attendance form; the name filter narrows a longer list

# Refused check-ins (wrong or closed code, a person not on the list) counted per client
# address and per code over a sliding window. Successes are not counted: everyone at a
# meeting may share the hall's one wifi address.
CHECKIN_WINDOW = timedelta(minutes=10)
CHECKIN_FAILURES_PER_ADDRESS = 20
CHECKIN_FAILURES_PER_CODE = 50

KIND_LABELS = {
    EventKind.MEETING: N_("Meeting"),
    EventKind.ACTION: N_("Action"),
    EventKind.LISTENING_SESSION: N_("Listening session"),
}
METHOD_LABELS = {
    AttendanceMethod.LEADER: N_("recorded by a leader"),
    AttendanceMethod.CHECKIN: N_("checked in"),
}

WRONG_CODE = N_("No event has this code: check it with the organizer.")
CHECKIN_CLOSED = N_("Check-in for this event has closed.")
CHECKIN_NOT_YET = N_("Check-in for this event opens on the day of the event.")
# The same words whether the phone or email is unknown everywhere, known in another
# organization, or known here but not on this event's list.
NOT_ON_LIST = N_(
    "We could not find you on this event's list. Check the phone number or email you signed "
    "up with, or ask the organizer to record your attendance."
)
NO_CONTACT = N_("Enter the phone number or email you signed up with.")
SHARED_CONTACT = N_(
    "More than one person signed up with this phone number or email: ask the organizer to "
    "record your attendance."
)


class EventInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


class CheckinRefused(BadRequest):
    """A check-in that cannot be accepted; its message is shown to the person."""


@dataclass(frozen=True)
class EventFields:
    """An event as a leader enters it. ``checkin_closes_at`` None: the end of the day after
    the event, in the organization's zone. ``constituency_id`` is ignored by updates."""

    kind: EventKind
    title: str
    held_on: date
    location: str = ""
    constituency_id: uuid.UUID | None = None
    checkin_closes_at: datetime | None = None


@dataclass(frozen=True)
class Person:
    """One line of the record-attendance form."""

    member_id: uuid.UUID
    name: str
    pending: bool  # not yet approved by a leader
    recorded: bool  # already on the attendance list


@dataclass(frozen=True)
class AttendanceRow:
    id: uuid.UUID
    member_id: uuid.UUID
    name: str
    method: AttendanceMethod
    recorded_at: datetime


@dataclass(frozen=True)
class CheckIn:
    event: Event
    member_id: uuid.UUID
    already: bool  # had checked in (or been recorded) before: nothing was written


def require_community(org: Organization) -> None:
    """Events and constituencies belong to community organizations."""
    if org.kind != OrgKind.COMMUNITY:
        raise NotFound()


# -- check-in codes -------------------------------------------------------------------------


def new_checkin_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """As people type it: any case, with spaces or dashes ("abc-234", "ABC 234")."""
    return "".join(raw.split()).replace("-", "").upper()


def _unused_code(db: Session) -> str:
    for _ in range(CODE_ATTEMPTS):
        code = new_checkin_code()
        if db.execute(select(Event.id).where(Event.checkin_code == code)).first() is None:
            return code
    raise RuntimeError("no unused check-in code found")  # 31**6 codes: never in practice


# -- events -----------------------------------------------------------------------------------


def default_closing(held_on: date, timezone: str) -> datetime:
    """The end of the day after the event, in the organization's zone (as UTC)."""
    end = datetime.combine(held_on + timedelta(days=1), time(23, 59, 59), ZoneInfo(timezone))
    return end.astimezone(UTC)


def check_fields(db: Session, org: Organization, fields: EventFields) -> dict[str, str]:
    """Every problem at once (field -> message)."""
    errors: dict[str, str] = {}
    if not fields.title:
        errors["title"] = N_("Enter the event's title.")
    elif len(fields.title) > TITLE_MAX:
        errors["title"] = N_("Use at most 200 characters.")
    if len(fields.location) > LOCATION_MAX:
        errors["location"] = N_("Use at most 200 characters.")
    if fields.constituency_id is not None:
        try:
            constituencies.get_constituency(db, org, fields.constituency_id)
        except NotFound:
            errors["constituency"] = N_("Choose one of the organization's constituencies.")
    if fields.checkin_closes_at is not None:
        day_begins = datetime.combine(fields.held_on, time(0), ZoneInfo(org.timezone))
        if fields.checkin_closes_at < day_begins:
            errors["closes"] = N_("Check-in must close after the event's day begins.")
    return errors


def list_events(db: Session, org: Organization) -> list[tuple[Event, int]]:
    """The organization's events, newest first, each with how many attended."""
    counts = (
        select(Attendance.event_id, func.count().label("n"))
        .join(Event, Event.id == Attendance.event_id)
        .where(Event.organization_id == org.id)
        .group_by(Attendance.event_id)
        .subquery()
    )
    stmt = (
        select(Event, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.event_id == Event.id)
        .where(Event.organization_id == org.id)
        .order_by(Event.held_on.desc(), Event.created_at.desc())
    )
    return [(event, int(n)) for event, n in db.execute(stmt)]


def get_event(db: Session, org: Organization, event_id: uuid.UUID) -> Event:
    """An event of *this* organization; another organization's is 404."""
    stmt = select(Event).where(Event.id == event_id, Event.organization_id == org.id)
    event = db.execute(stmt).scalar_one_or_none()
    if event is None:
        raise NotFound()
    return event


def constituency_name(db: Session, event: Event) -> str | None:
    """The event's constituency's name, or None for an organization-wide event."""
    if event.constituency_id is None:
        return None
    return db.execute(
        select(Constituency.name).where(Constituency.id == event.constituency_id)
    ).scalar_one()


def create_event(
    db: Session, org: Organization, *, actor: StaffUser | None, fields: EventFields
) -> Event:
    require_community(org)
    errors = check_fields(db, org, fields)
    if errors:
        raise EventInvalid(errors)
    event = Event(
        organization_id=org.id,
        constituency_id=fields.constituency_id,
        kind=fields.kind,
        title=fields.title,
        held_on=fields.held_on,
        location=fields.location,
        checkin_code=_unused_code(db),
        checkin_closes_at=fields.checkin_closes_at or default_closing(fields.held_on, org.timezone),
    )
    db.add(event)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="event.created",
        object_type="event",
        object_id=event.id,
        data={
            "kind": event.kind.value,
            "title": event.title,
            "held_on": event.held_on.isoformat(),
            "constituency_id": str(event.constituency_id) if event.constituency_id else None,
            "checkin_closes_at": event.checkin_closes_at.isoformat(),
        },
        actor_label=None if actor else "cli",
    )
    return event


def update_event(
    db: Session, org: Organization, event: Event, *, actor: StaffUser, fields: EventFields
) -> dict[str, dict[str, str]]:
    """Change the title, date, location or closing time (kind and constituency stay: they
    decide whose attendance the event counts for). Returns each changed field's before and
    after, as the audit event keeps them."""
    kept = EventFields(
        kind=event.kind,
        title=fields.title,
        held_on=fields.held_on,
        location=fields.location,
        constituency_id=event.constituency_id,
        checkin_closes_at=fields.checkin_closes_at,
    )
    errors = check_fields(db, org, kept)
    if errors:
        raise EventInvalid(errors)
    closes = fields.checkin_closes_at or default_closing(fields.held_on, org.timezone)
    # A time entered to the minute that names the minute already saved is no change.
    if closes.replace(second=0, microsecond=0) == event.checkin_closes_at.replace(
        second=0, microsecond=0
    ):
        closes = event.checkin_closes_at
    after = {
        "title": fields.title,
        "held_on": fields.held_on,
        "location": fields.location,
        "checkin_closes_at": closes,
    }
    changes: dict[str, dict[str, str]] = {}
    for name, value in after.items():
        before = getattr(event, name)
        if before != value:
            changes[name] = {"from": _shown(before), "to": _shown(value)}
            setattr(event, name, value)
    if changes:
        db.flush()
        audit.record(
            db,
            organization=org,
            actor=actor,
            action="event.updated",
            object_type="event",
            object_id=event.id,
            data={"changes": changes},
        )
    return changes


def _shown(value: object) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


# -- the event's people and its attendance ---------------------------------------------------


def _listed(
    event: Event, statuses: tuple[PersonStatus, ...] = LISTED_STATUSES
) -> Select[uuid.UUID]:
    """The member ids of the event's people (see the module's docstring)."""
    stmt = select(ConstituencyMember.member_id).where(ConstituencyMember.status.in_(statuses))
    if event.constituency_id is not None:
        return stmt.where(ConstituencyMember.constituency_id == event.constituency_id)
    return stmt.join(Constituency, Constituency.id == ConstituencyMember.constituency_id).where(
        Constituency.organization_id == event.organization_id,
        Constituency.archived_at.is_(None),
    )


def people(db: Session, event: Event, *, name: str = "") -> tuple[list[Person], bool]:
    """The event's people in name order, filtered by the words of ``name`` (each must be in
    the person's name), at most ``PEOPLE_SHOWN``; and whether there were more."""
    approved = _listed(event, (PersonStatus.APPROVED,))
    recorded = select(Attendance.member_id).where(Attendance.event_id == event.id)
    stmt = (
        select(
            Member.id,
            Member.first_name,
            Member.last_name,
            Member.id.in_(approved).label("approved"),
            Member.id.in_(recorded).label("recorded"),
        )
        .where(Member.organization_id == event.organization_id, Member.id.in_(_listed(event)))
        .order_by(Member.sort_name, Member.id)
        .limit(PEOPLE_SHOWN + 1)
    )
    for word in name.lower().split()[:5]:
        stmt = stmt.where(Member.sort_name.contains(word, autoescape=True))
    rows = db.execute(stmt).all()
    found = [
        Person(
            member_id=row.id,
            name=_full_name(row.first_name, row.last_name),
            pending=not row.approved,
            recorded=bool(row.recorded),
        )
        for row in rows[:PEOPLE_SHOWN]
    ]
    return found, len(rows) > PEOPLE_SHOWN


def _full_name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def attendance(db: Session, event: Event) -> list[AttendanceRow]:
    """Who attended, in name order."""
    stmt = (
        select(Attendance, Member.first_name, Member.last_name)
        .join(Member, Member.id == Attendance.member_id)
        .where(Attendance.event_id == event.id)
        .order_by(Member.sort_name, Member.id)
    )
    return [
        AttendanceRow(
            id=row.id,
            member_id=row.member_id,
            name=_full_name(first, last),
            method=row.method,
            recorded_at=row.recorded_at,
        )
        for row, first, last in db.execute(stmt)
    ]


def _insert_attendance(
    db: Session,
    event: Event,
    member_ids: list[uuid.UUID],
    *,
    method: AttendanceMethod,
    recorded_by: StaffUser | None,
) -> list[uuid.UUID]:
    """Insert the rows not there yet; the members newly recorded. ON CONFLICT DO NOTHING on
    the unique (event, member) pair settles a leader and a check-in at the same moment: one
    row, no error; RETURNING names only the rows this statement wrote."""
    if not member_ids:
        return []
    now = utcnow()
    wanted = list(dict.fromkeys(member_ids))
    rows: list[dict[str, object]] = [
        {
            "id": uuid.uuid4(),
            "event_id": event.id,
            "member_id": member_id,
            "method": method,
            "recorded_by_id": recorded_by.id if recorded_by else None,
            "recorded_at": now,
        }
        for member_id in wanted
    ]
    insert = (
        postgresql.insert(Attendance)
        if db.get_bind().dialect.name == "postgresql"
        else sqlite.insert(Attendance)
    )
    stmt = insert.values(rows).on_conflict_do_nothing().returning(Attendance.member_id)
    written = set(db.scalars(stmt))
    return [member_id for member_id in wanted if member_id in written]


def record_attendance(
    db: Session,
    org: Organization,
    event: Event,
    member_ids: list[uuid.UUID],
    *,
    actor: StaffUser | None,
) -> int:
    """Mark the given people present (method leader). Everyone must be among the event's
    people; anyone already recorded stays as they were. Returns how many were newly
    recorded; the audit event names them by member id."""
    require_community(org)
    if event.organization_id != org.id:
        raise NotFound()
    wanted = list(dict.fromkeys(member_ids))
    if not wanted:
        return 0
    listed = set(
        db.scalars(
            select(Member.id).where(
                Member.organization_id == org.id,
                Member.id.in_(wanted),
                Member.id.in_(_listed(event)),
            )
        )
    )
    if len(listed) != len(wanted):
        raise BadRequest(
            N_("Someone you ticked is not on this event's list any more. Reload the page.")
        )
    new = _insert_attendance(db, event, wanted, method=AttendanceMethod.LEADER, recorded_by=actor)
    if new:
        audit.record(
            db,
            organization=org,
            actor=actor,
            action="event.attendance_recorded",
            object_type="event",
            object_id=event.id,
            data={"member_ids": [str(member_id) for member_id in new]},
            actor_label=None if actor else "cli",
        )
    return len(new)


def remove_attendance(
    db: Session,
    org: Organization,
    event: Event,
    attendance_id: uuid.UUID,
    *,
    actor: StaffUser,
) -> None:
    """Take one person off the event's attendance (recorded by mistake)."""
    if event.organization_id != org.id:
        raise NotFound()
    row = db.execute(
        select(Attendance).where(Attendance.id == attendance_id, Attendance.event_id == event.id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound()
    member_id, method = row.member_id, row.method
    db.delete(row)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="event.attendance_removed",
        object_type="event",
        object_id=event.id,
        member_id=member_id,
        data={"member_id": str(member_id), "method": method.value},
    )


# -- check-in ---------------------------------------------------------------------------------


def checkin_closed(event: Event, now: datetime | None = None) -> bool:
    return (now or utcnow()) > event.checkin_closes_at


def checkin_not_yet(db: Session, event: Event, now: datetime | None = None) -> bool:
    """Before the event's day (in the organization's zone): a code on a flyer posted early
    checks nobody in ahead of time."""
    org = db.get(Organization, event.organization_id)
    zone = ZoneInfo(org.timezone if org is not None else "UTC")
    return (now or utcnow()).astimezone(zone).date() < event.held_on


def _event_by_code(db: Session, org: Organization | None, code: str) -> Event | None:
    normalized = normalize_code(code)
    if len(normalized) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in normalized):
        return None
    stmt = select(Event).where(Event.checkin_code == normalized)
    if org is not None:
        stmt = stmt.where(Event.organization_id == org.id)
    return db.execute(stmt).scalar_one_or_none()


def _contact_filter(contact: str, phone_region: str):  # type: ignore[no-untyped-def]
    raw = contact.strip()
    if "@" in raw:
        email = normalize_email(raw)
        return Member.email == email if email else None
    phone = normalize_phone(raw, phone_region) if raw else None
    return Member.phone == phone if phone else None


def check_in(
    db: Session,
    org: Organization | None,
    *,
    code: str,
    contact: str,
    now: datetime,
    phone_region: str,
) -> CheckIn:
    """One person checks in with the event's code and the phone number (normalized to E.164
    in ``phone_region``) or email they signed up with. ``org`` None: the code alone says
    which organization's event it is. Raises ``CheckinRefused``; writes only the attendance
    row (method checkin) and its audit event."""
    event = _event_by_code(db, org, code)
    if event is None:
        raise CheckinRefused(WRONG_CODE)
    if checkin_closed(event, now):
        raise CheckinRefused(CHECKIN_CLOSED)
    if checkin_not_yet(db, event, now):
        raise CheckinRefused(CHECKIN_NOT_YET)
    matches = _contact_filter(contact, phone_region)
    if matches is None:
        raise CheckinRefused(NO_CONTACT)
    found = list(
        db.scalars(
            select(Member.id)
            .where(Member.organization_id == event.organization_id, matches)
            .where(Member.id.in_(_listed(event)))
            .limit(2)
        )
    )
    if not found:
        raise CheckinRefused(NOT_ON_LIST)
    if len(found) > 1:
        raise CheckinRefused(SHARED_CONTACT)
    member_id = found[0]
    new = _insert_attendance(
        db, event, [member_id], method=AttendanceMethod.CHECKIN, recorded_by=None
    )
    if new:
        organization = org or db.get(Organization, event.organization_id)
        audit.record(
            db,
            organization=organization,
            actor=None,
            action="event.checked_in",
            object_type="event",
            object_id=event.id,
            member_id=member_id,
            data={"member_id": str(member_id)},
            actor_label="checkin",
        )
    return CheckIn(event=event, member_id=member_id, already=not new)


@dataclass(frozen=True)
class CheckinThrottle:
    address_key: str
    code_key: str


def checkin_throttle_keys(settings: Settings, *, client_address: str, code: str) -> CheckinThrottle:
    return CheckinThrottle(
        address_key=throttle.throttle_key(settings.secret_key, "checkin-address", client_address),
        code_key=throttle.throttle_key(settings.secret_key, "checkin-code", normalize_code(code)),
    )


def attempt_check_in(
    db: Session,
    settings: Settings,
    *,
    code: str,
    contact: str,
    client_address: str,
    now: datetime | None = None,
    org: Organization | None = None,
) -> CheckIn:
    """``check_in`` behind the throttle: past the limit of refused attempts per client
    address or per code, ``TooManyRequests`` before anything is looked up. A refusal writes
    only its throttle hits (the caller commits them: return the error page, don't raise)."""
    now = now or utcnow()
    keys = checkin_throttle_keys(settings, client_address=client_address, code=code)
    throttle.serialize(db, keys.address_key, keys.code_key)
    if (
        throttle.count_hits(db, keys.address_key, CHECKIN_WINDOW, now)
        >= CHECKIN_FAILURES_PER_ADDRESS
        or throttle.count_hits(db, keys.code_key, CHECKIN_WINDOW, now) >= CHECKIN_FAILURES_PER_CODE
    ):
        raise TooManyRequests(
            N_("Too many attempts. Try again in %(minutes)s min."),
            minutes=CHECKIN_WINDOW.seconds // 60,
        )
    try:
        with db.begin_nested():
            return check_in(
                db, org, code=code, contact=contact, now=now, phone_region=settings.phone_region
            )
    except CheckinRefused:
        throttle.add_hit(db, keys.address_key, now)
        throttle.add_hit(db, keys.code_key, now)
        raise
