"""People joining a constituency: the public sign-up, leaders adding people or importing a
file of them, the approval queue with its possible duplicates, and merging a duplicate into
the person already known.

People are ``Member`` rows of the organization; a ``ConstituencyMember`` says how one belongs
to one constituency. Every decision a leader makes is audited with member ids only, never a
person's contact details.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.community.models import (
    Attendance,
    Constituency,
    ConstituencyMember,
    PersonSource,
    PersonStatus,
)
from ratify.contact import checked_contact
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound, TooManyRequests
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.rosters import imports as roster_files
from ratify.rosters.models import Member
from ratify.rosters.services import sort_name
from ratify.settings import LANGUAGES, Settings
from ratify.throttle import services as throttle

DEFAULT_PHONE_REGION = str(Settings.__dataclass_fields__["phone_region"].default)  # "US"
NAME_MAX = 100
CHOICE_MAX = {"area": 200, "relationship": 100}  # the columns' lengths
REASON_MAX = 500
DEFAULT_CONSENT = N_(
    "I agree that the organizers keep my name and contact details to reach me about this "
    "group's meetings and votes, and share them with nobody else."
)


@dataclass(frozen=True)
class PersonFields:
    """A person as given by the sign-up form, a leader's form or an import row.

    ``email``/``phone`` as typed (normalized when checked: lower-case email, E.164 phone);
    ``area``/``relationship`` one of the constituency's choices when it has any;
    ``preferred_language`` one of the app's ``LANGUAGES`` or blank; ``joined_on`` for an
    import (blank: today); ``consent`` whether the sign-up's consent line was ticked (the
    sign-up requires it; leaders' forms ignore it)."""

    first_name: str
    last_name: str = ""
    email: str = ""
    phone: str = ""
    area: str = ""
    relationship: str = ""
    preferred_language: str = ""
    joined_on: date | None = None
    consent: bool = False


class PersonInvalid(BadRequest):
    """Field name -> message (``N_`` strings), every problem at once."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


def _choice(value: str, choices: list[str]) -> str | None:
    """The choice as the leaders spelled it, matched case-insensitively; None if none."""
    for choice in choices:
        if value == choice:
            return choice
    lowered = value.casefold()
    return next((c for c in choices if c.casefold() == lowered), None)


def clean_person(
    fields: PersonFields,
    constituency: Constituency,
    *,
    phone_region: str,
    signup: bool = False,
    today: date | None = None,
) -> PersonFields:
    """The fields checked and normalized, or ``PersonInvalid`` naming every problem.

    The public sign-up (``signup``) needs a phone or an email, an area and a relationship
    when the constituency offers choices, and the consent box; a leader's form or a file may
    leave those blank (a paper sign-in sheet has no email)."""
    errors: dict[str, str] = {}
    first, last = fields.first_name.strip(), fields.last_name.strip()
    if not first and not last:
        errors["first_name"] = N_("Enter a name.")
    for name, value in (("first_name", first), ("last_name", last)):
        if len(value) > NAME_MAX:
            errors[name] = N_("Use at most 100 characters.")
    email, phone = checked_contact(fields.email, fields.phone, phone_region, errors)
    if signup and not fields.email.strip() and not fields.phone.strip():
        errors["phone"] = N_("Give a phone number or an email address (or both).")
    picked: dict[str, str] = {}
    for name, choices, missing, unknown in (
        (
            "area",
            constituency.area_choices or [],
            N_("Choose where you live or work."),
            N_("Choose one of the areas listed."),
        ),
        (
            "relationship",
            constituency.relationship_choices or [],
            N_("Choose how you are connected to the group."),
            N_("Choose one of the relationships listed."),
        ),
    ):
        value = getattr(fields, name).strip()
        if not value:
            if signup and choices:
                errors[name] = missing
            picked[name] = ""
        elif choices:
            found = _choice(value, choices)
            if found is None:
                errors[name] = unknown
            picked[name] = found or ""
        elif len(value) > CHOICE_MAX[name]:
            errors[name] = (
                N_("Use at most 200 characters.")
                if CHOICE_MAX[name] == 200
                else N_("Use at most 100 characters.")
            )
        else:
            picked[name] = value
    language = fields.preferred_language.strip().lower()
    if language and language not in LANGUAGES:
        errors["preferred_language"] = N_("Choose one of the languages listed.")
    if fields.joined_on is not None and today is not None and fields.joined_on > today:
        errors["joined_on"] = N_("The date someone joined cannot be in the future.")
    if signup and not fields.consent:
        errors["consent"] = N_("Tick the box to agree, or we cannot keep your details.")
    if errors:
        raise PersonInvalid(errors)
    return PersonFields(
        first_name=first,
        last_name=last,
        email=email,
        phone=phone,
        area=picked["area"],
        relationship=picked["relationship"],
        preferred_language=language,
        joined_on=fields.joined_on,
        consent=fields.consent,
    )


# -- finding ----------------------------------------------------------------------------------


def constituency_for_signup(db: Session, code: str) -> tuple[Organization, Constituency]:
    """The constituency whose sign-up link this is, while the link is open; else 404 (an
    unknown, changed or closed link says nothing more)."""
    if not code or len(code) > 64:
        raise NotFound()
    found = db.execute(
        select(Constituency, Organization)
        .join(Organization, Organization.id == Constituency.organization_id)
        .where(Constituency.signup_code == code)
    ).first()
    if found is None:
        raise NotFound()
    constituency, org = found
    if not constituency.signup_open or constituency.archived_at is not None:
        raise NotFound()
    return org, constituency


def get_person(
    db: Session, org: Organization, constituency: Constituency, person_id: uuid.UUID
) -> ConstituencyMember:
    """One person's place in this constituency (of this organization); else 404."""
    if constituency.organization_id != org.id:
        raise NotFound()
    found = db.scalar(
        select(ConstituencyMember).where(
            ConstituencyMember.id == person_id,
            ConstituencyMember.constituency_id == constituency.id,
        )
    )
    if found is None:
        raise NotFound()
    return found


def get_member(db: Session, org: Organization, member_id: uuid.UUID) -> Member:
    found = db.scalar(
        select(Member).where(Member.id == member_id, Member.organization_id == org.id)
    )
    if found is None:
        raise NotFound()
    return found


# -- joining ----------------------------------------------------------------------------------

SIGNUPS_PER_ADDRESS = 5
SIGNUP_WINDOW = timedelta(hours=1)


def signup_throttle(db: Session, settings: Settings, client_address: str) -> str:
    """Refuse (429) a sign-up from a client address that signed up ``SIGNUPS_PER_ADDRESS``
    times within the window; else the key a successful sign-up is counted under
    (``count_signup``). The window is at most what the worker's purge keeps of the hits."""
    key = throttle.throttle_key(settings.secret_key, "signup-address", client_address)
    throttle.serialize(db, key)
    if throttle.count_hits(db, key, signup_window(settings)) >= SIGNUPS_PER_ADDRESS:
        raise TooManyRequests(
            N_(
                "Too many people signed up from this connection in the last while. Wait an "
                "hour and try again, or ask one of the organizers to add you."
            )
        )
    return key


def signup_window(settings: Settings) -> timedelta:
    """An hour; the worker's purge keeps hits that long (throttle.LONGEST_WINDOW)."""
    return min(
        SIGNUP_WINDOW,
        max(throttle.LONGEST_WINDOW, 2 * timedelta(seconds=settings.login_throttle_window)),
    )


def count_signup(db: Session, key: str) -> None:
    throttle.add_hit(db, key)


NUMBER_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O, misread as 1 and 0


def _candidate_number() -> str:
    return "J" + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(7))


def fresh_member_numbers(db: Session, org: Organization, count: int) -> list[str]:
    """``count`` member numbers nobody in the organization has ("J" and 7 characters)."""
    numbers: set[str] = set()
    for _ in range(20):
        wanted = {_candidate_number() for _ in range(count - len(numbers))} - numbers
        taken: set[str] = set()
        listed = sorted(wanted)
        for start in range(0, len(listed), 1000):
            taken |= set(
                db.scalars(
                    select(Member.member_number).where(
                        Member.organization_id == org.id,
                        Member.member_number.in_(listed[start : start + 1000]),
                    )
                )
            )
        numbers |= wanted - taken
        if len(numbers) >= count:
            return sorted(numbers)[:count]
    raise Conflict(N_("No free member number was found. Try again."))  # pragma: no cover


def _new_member(db: Session, org: Organization, fields: PersonFields, number: str) -> Member:
    member = Member(
        organization_id=org.id,
        member_number=number,
        first_name=fields.first_name,
        last_name=fields.last_name,
        sort_name=sort_name(fields.first_name, fields.last_name),
        email=fields.email,
        phone=fields.phone,
        preferred_language=fields.preferred_language,
    )
    db.add(member)
    return member


def _merged_away() -> Select[uuid.UUID]:
    """Members merged into another as duplicates: never offered or matched again."""
    return select(ConstituencyMember.member_id).where(
        ConstituencyMember.status == PersonStatus.MERGED
    )


def _known_contact(db: Session, org: Organization, fields: PersonFields) -> bool:
    """Whether a member of the organization (not merged away) has this phone or email."""
    matches = [
        column == value
        for column, value in ((Member.phone, fields.phone), (Member.email, fields.email))
        if value
    ]
    if not matches:
        return False
    found = db.scalar(
        select(Member.id)
        .where(Member.organization_id == org.id, or_(*matches), Member.id.not_in(_merged_away()))
        .limit(1)
    )
    return found is not None


def sign_up(
    db: Session,
    org: Organization,
    constituency: Constituency,
    fields: PersonFields,
    *,
    today: date,
    phone_region: str = DEFAULT_PHONE_REGION,
) -> ConstituencyMember:
    """Someone signs up through the constituency's public link: a new ``Member`` and their
    place in the constituency, pending a leader's approval when the constituency asks for
    one (else approved from ``today``). ``fields.consent`` must be True. ``PersonInvalid``
    names every problem; nothing is written then."""
    if constituency.organization_id != org.id:
        raise NotFound()
    if not constituency.signup_open or constituency.archived_at is not None:
        raise NotFound()
    cleaned = clean_person(fields, constituency, phone_region=phone_region, signup=True)
    (number,) = fresh_member_numbers(db, org, 1)
    # Someone already known by this phone or email waits for a leader even where the
    # constituency asks for no approval: a second sign-up must not be a second voter.
    known = _known_contact(db, org, cleaned)
    member = _new_member(db, org, cleaned, number)
    db.flush()
    approved = not constituency.approval_required and not known
    person = ConstituencyMember(
        constituency_id=constituency.id,
        member_id=member.id,
        status=PersonStatus.APPROVED if approved else PersonStatus.PENDING,
        source=PersonSource.SIGNUP,
        area=cleaned.area,
        relationship=cleaned.relationship,
        joined_on=today,
        approved_on=today if approved else None,
        consented_at=utcnow(),
    )
    db.add(person)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=None,
        actor_label="sign-up",
        action="constituency.signed_up",
        object_type="constituency_member",
        object_id=person.id,
        member_id=member.id,
        data={"constituency_id": str(constituency.id), "status": person.status.value},
    )
    return person


def _add(
    db: Session,
    constituency: Constituency,
    member: Member,
    fields: PersonFields,
    *,
    actor: StaffUser | None,
    source: PersonSource,
    today: date,
) -> ConstituencyMember:
    joined = fields.joined_on or today
    person = ConstituencyMember(
        constituency_id=constituency.id,
        member_id=member.id,
        status=PersonStatus.APPROVED,
        source=source,
        area=fields.area,
        relationship=fields.relationship,
        joined_on=joined,
        # Added by a leader, so approved as they joined: an older list's dates stand.
        approved_on=joined,
        decided_by_id=actor.id if actor else None,
        decided_at=utcnow(),
    )
    db.add(person)
    return person


def add_person(
    db: Session,
    org: Organization,
    constituency: Constituency,
    fields: PersonFields,
    *,
    actor: StaffUser | None,
    source: PersonSource = PersonSource.LEADER,
    today: date | None = None,
    phone_region: str = DEFAULT_PHONE_REGION,
) -> ConstituencyMember:
    """A leader adds someone: a new ``Member``, approved in the constituency at once (from
    ``fields.joined_on``, else today in the organization's time zone)."""
    if constituency.organization_id != org.id:
        raise NotFound()
    today = today or org_today(org)
    cleaned = clean_person(fields, constituency, phone_region=phone_region, today=today)
    (number,) = fresh_member_numbers(db, org, 1)
    member = _new_member(db, org, cleaned, number)
    db.flush()
    person = _add(db, constituency, member, cleaned, actor=actor, source=source, today=today)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="constituency.person_added",
        object_type="constituency_member",
        object_id=person.id,
        member_id=member.id,
        data={"constituency_id": str(constituency.id), "source": source.value},
        actor_label=None if actor else "system",
    )
    return person


# -- deciding ---------------------------------------------------------------------------------

ALREADY_DECIDED = N_(
    "Someone already decided about this person. Reload the page to see the list as it is now."
)


def _decide(
    db: Session,
    person: ConstituencyMember,
    expected: Iterable[PersonStatus],
    **values: object,
) -> None:
    """Change the row only if it is still in an ``expected`` state: of two leaders deciding
    the same person at once, the second hears 409 instead of overwriting the first."""
    expected = tuple(expected)
    result = db.execute(
        update(ConstituencyMember)
        .where(ConstituencyMember.id == person.id, ConstituencyMember.status.in_(expected))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.refresh(person)
    if not getattr(result, "rowcount", 0):
        raise Conflict(ALREADY_DECIDED)


def _record(
    db: Session,
    org: Organization,
    actor: StaffUser | None,
    action: str,
    person: ConstituencyMember,
    **data: object,
) -> None:
    audit.record(
        db,
        organization=org,
        actor=actor,
        action=action,
        object_type="constituency_member",
        object_id=person.id,
        member_id=person.member_id,
        data={"constituency_id": str(person.constituency_id), **data},
        actor_label=None if actor else "system",
    )


def approve(
    db: Session,
    org: Organization,
    person: ConstituencyMember,
    *,
    actor: StaffUser | None,
    today: date | None = None,
) -> ConstituencyMember:
    """A pending person is approved from ``today``; anyone else decided already is 409."""
    today = today or org_today(org)
    _decide(
        db,
        person,
        [PersonStatus.PENDING],
        status=PersonStatus.APPROVED,
        approved_on=today,
        decided_by_id=actor.id if actor else None,
        decided_at=utcnow(),
    )
    _record(db, org, actor, "constituency.person_approved", person)
    return person


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise PersonInvalid({"reason": N_("Say why.")})
    if len(reason) > REASON_MAX:
        raise PersonInvalid({"reason": N_("Use at most 500 characters.")})
    return reason


def reject(
    db: Session,
    org: Organization,
    person: ConstituencyMember,
    *,
    actor: StaffUser | None,
    reason: str,
) -> ConstituencyMember:
    """A pending person is turned down, with the reason (kept on the row, not in the audit
    log, which sees only that it happened)."""
    reason = _reason(reason)
    _decide(
        db,
        person,
        [PersonStatus.PENDING],
        status=PersonStatus.REJECTED,
        reason=reason,
        decided_by_id=actor.id if actor else None,
        decided_at=utcnow(),
    )
    _record(db, org, actor, "constituency.person_rejected", person)
    return person


def remove(
    db: Session,
    org: Organization,
    person: ConstituencyMember,
    *,
    actor: StaffUser | None,
    reason: str,
    today: date | None = None,
) -> ConstituencyMember:
    """An approved person leaves from ``today``: counted before, not after."""
    reason = _reason(reason)
    today = today or org_today(org)
    if person.status == PersonStatus.APPROVED and person.joined_on > today:
        raise BadRequest(N_("Someone cannot leave before the day they joined."))
    _decide(
        db,
        person,
        [PersonStatus.APPROVED],
        status=PersonStatus.REMOVED,
        left_on=today,
        reason=reason,
        decided_by_id=actor.id if actor else None,
        decided_at=utcnow(),
    )
    _record(db, org, actor, "constituency.person_removed", person)
    return person


# Details a kept person lacks and takes from their duplicate.
FILLED_FROM_DUPLICATE = (
    "first_name", "last_name", "email", "phone", "preferred_language", "address_line1",
    "address_line2", "city", "region", "postal_code", "country", "worksite", "classification",
    "hire_date", "join_date", "birth_date",
)  # fmt: skip


def _was_merged(db: Session, member_id: uuid.UUID) -> bool:
    return (
        db.scalar(
            select(ConstituencyMember.id)
            .where(
                ConstituencyMember.member_id == member_id,
                ConstituencyMember.status == PersonStatus.MERGED,
            )
            .limit(1)
        )
        is not None
    )


def _membership(
    db: Session, constituency_id: uuid.UUID, member_id: uuid.UUID
) -> ConstituencyMember | None:
    return db.scalar(
        select(ConstituencyMember).where(
            ConstituencyMember.constituency_id == constituency_id,
            ConstituencyMember.member_id == member_id,
        )
    )


def _fold(
    duplicate: ConstituencyMember,
    kept: ConstituencyMember,
    into: Member,
    decided: dict[str, object],
) -> None:
    """The duplicate's place in a constituency where the kept person has one too: the kept
    one stays, with the earlier of the two dates it joined and was approved. A kept place
    that had left or was rejected takes the duplicate's standing when the duplicate is
    pending or approved: someone who left and signed up again is in again (from the day the
    new sign-up says), never out of both. The duplicate's place is marked merged."""
    active = (PersonStatus.PENDING, PersonStatus.APPROVED)
    if duplicate.status in active and kept.status not in active:
        kept.status = duplicate.status
        kept.joined_on = duplicate.joined_on
        kept.approved_on = duplicate.approved_on
        kept.left_on = None
        kept.reason = ""
        kept.decided_by_id = decided["decided_by_id"]  # type: ignore[assignment]
        kept.decided_at = decided["decided_at"]  # type: ignore[assignment]
    else:
        if duplicate.status == PersonStatus.APPROVED and kept.status == PersonStatus.PENDING:
            kept.status = PersonStatus.APPROVED
            kept.approved_on = duplicate.approved_on
            kept.decided_by_id = decided["decided_by_id"]  # type: ignore[assignment]
            kept.decided_at = decided["decided_at"]  # type: ignore[assignment]
        elif duplicate.status == PersonStatus.APPROVED and kept.status == PersonStatus.APPROVED:
            dates = [d for d in (kept.approved_on, duplicate.approved_on) if d is not None]
            kept.approved_on = min(dates) if dates else None
        kept.joined_on = min(kept.joined_on, duplicate.joined_on)
    kept.area = kept.area or duplicate.area
    kept.relationship = kept.relationship or duplicate.relationship
    kept.consented_at = kept.consented_at or duplicate.consented_at
    duplicate.status = PersonStatus.MERGED
    duplicate.merged_into_id = into.id
    duplicate.decided_by_id = decided["decided_by_id"]  # type: ignore[assignment]
    duplicate.decided_at = decided["decided_at"]  # type: ignore[assignment]


def merge(
    db: Session,
    org: Organization,
    duplicate: ConstituencyMember,
    *,
    into: Member,
    actor: StaffUser | None,
) -> ConstituencyMember:
    """``duplicate`` (a pending or approved person of a constituency) is someone the
    organization already knows as ``into``: the kept member takes the details it lacks,
    the duplicate's attendance (an event both attended counts once) and its places in other
    constituencies; in this one the kept member's place is kept or created (approved if the
    duplicate's was), and the duplicate's becomes ``merged`` into it. Returns the kept
    member's place in the constituency."""
    if into.organization_id != org.id:
        raise NotFound()
    if duplicate.member_id == into.id:
        raise BadRequest(N_("A person cannot be merged into themselves."))
    if duplicate.status not in (PersonStatus.PENDING, PersonStatus.APPROVED):
        raise Conflict(ALREADY_DECIDED)
    if _was_merged(db, into.id):
        raise Conflict(
            N_("That person was merged into someone else already. Merge into that person.")
        )
    dup_member = get_member(db, org, duplicate.member_id)
    for name in FILLED_FROM_DUPLICATE:
        if not getattr(into, name) and getattr(dup_member, name):
            setattr(into, name, getattr(dup_member, name))
    into.sort_name = sort_name(into.first_name, into.last_name)
    into.updated_at = utcnow()
    decided: dict[str, object] = {
        "decided_by_id": actor.id if actor else None,
        "decided_at": utcnow(),
    }
    # Attendance: unique per event and member, so an event both attended keeps one row.
    kept_events = set(
        db.scalars(select(Attendance.event_id).where(Attendance.member_id == into.id))
    )
    moved_attendance = 0
    for row in db.scalars(select(Attendance).where(Attendance.member_id == dup_member.id)):
        if row.event_id in kept_events:
            db.delete(row)
        else:
            row.member_id = into.id
            moved_attendance += 1
    # Places in the other constituencies move to the kept member.
    others = db.scalars(
        select(ConstituencyMember).where(
            ConstituencyMember.member_id == dup_member.id,
            ConstituencyMember.id != duplicate.id,
            ConstituencyMember.status != PersonStatus.MERGED,
        )
    ).all()
    for other in others:
        existing = _membership(db, other.constituency_id, into.id)
        if existing is None:
            other.member_id = into.id
        else:
            _fold(other, existing, into, decided)
    # This constituency: the duplicate's place is marked merged, the kept one's kept or made.
    kept = _membership(db, duplicate.constituency_id, into.id)
    was = duplicate.status
    if kept is None:
        kept = ConstituencyMember(
            constituency_id=duplicate.constituency_id,
            member_id=into.id,
            status=was,
            source=duplicate.source,
            area=duplicate.area,
            relationship=duplicate.relationship,
            joined_on=duplicate.joined_on,
            approved_on=duplicate.approved_on,
            consented_at=duplicate.consented_at,
            decided_by_id=duplicate.decided_by_id,
            decided_at=duplicate.decided_at,
        )
        db.add(kept)
        duplicate.status = PersonStatus.MERGED
        duplicate.merged_into_id = into.id
        duplicate.decided_by_id = decided["decided_by_id"]  # type: ignore[assignment]
        duplicate.decided_at = decided["decided_at"]  # type: ignore[assignment]
    else:
        _fold(duplicate, kept, into, decided)
    db.flush()
    _record(
        db,
        org,
        actor,
        "constituency.person_merged",
        duplicate,
        merged_into=str(into.id),
        was=was.value,
        attendance_moved=moved_attendance,
        memberships_moved=len(others),
    )
    return kept


# -- reading: the queue and the list ------------------------------------------------------------

NAME_MATCH, EMAIL_MATCH, PHONE_MATCH = "name", "email", "phone"


@dataclass(frozen=True)
class Duplicate:
    member: Member
    matches: tuple[str, ...]  # of NAME_MATCH, EMAIL_MATCH, PHONE_MATCH
    place: ConstituencyMember | None  # their place in this constituency, if any


@dataclass(frozen=True)
class QueueEntry:
    person: ConstituencyMember
    member: Member
    duplicates: list[Duplicate]


QUEUE_SHOWN = 200


def queue(db: Session, org: Organization, constituency: Constituency) -> list[QueueEntry]:
    """The pending people, oldest first (at most ``QUEUE_SHOWN``), each with the other people
    of the organization who may be the same person: the same email, phone, or name
    (case-insensitive). People merged away already are not offered."""
    if constituency.organization_id != org.id:
        raise NotFound()
    rows = db.execute(
        select(ConstituencyMember, Member)
        .join(Member, Member.id == ConstituencyMember.member_id)
        .where(
            ConstituencyMember.constituency_id == constituency.id,
            ConstituencyMember.status == PersonStatus.PENDING,
        )
        .order_by(ConstituencyMember.created_at, ConstituencyMember.id)
        .limit(QUEUE_SHOWN)
    ).all()
    if not rows:
        return []
    emails = {m.email for _, m in rows if m.email}
    phones = {m.phone for _, m in rows if m.phone}
    names = {m.sort_name for _, m in rows if m.sort_name}
    matches = [Member.sort_name.in_(names)] if names else []
    if emails:
        matches.append(Member.email.in_(emails))
    if phones:
        matches.append(Member.phone.in_(phones))
    candidates = (
        list(
            db.scalars(
                select(Member)
                .where(Member.organization_id == org.id, or_(*matches))
                .where(Member.id.not_in(_merged_away()))
                .order_by(Member.sort_name, Member.member_number)
                .limit(2000)
            )
        )
        if matches
        else []
    )
    places = {
        p.member_id: p
        for p in db.scalars(
            select(ConstituencyMember).where(
                ConstituencyMember.constituency_id == constituency.id,
                ConstituencyMember.member_id.in_([c.id for c in candidates]),
            )
        )
    }
    entries = []
    for person, member in rows:
        found = []
        for other in candidates:
            if other.id == member.id:
                continue
            why = tuple(
                kind
                for kind, mine, theirs in (
                    (NAME_MATCH, member.sort_name, other.sort_name),
                    (EMAIL_MATCH, member.email, other.email),
                    (PHONE_MATCH, member.phone, other.phone),
                )
                if mine and mine == theirs
            )
            if why:
                found.append(Duplicate(other, why, places.get(other.id)))
        entries.append(QueueEntry(person, member, found))
    return entries


def pending_count(db: Session, constituency: Constituency) -> int:
    return db.execute(
        select(func.count()).where(
            ConstituencyMember.constituency_id == constituency.id,
            ConstituencyMember.status == PersonStatus.PENDING,
        )
    ).scalar_one()


@dataclass(frozen=True)
class PeoplePage:
    rows: list[tuple[ConstituencyMember, Member]]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


def list_people(
    db: Session,
    org: Organization,
    constituency: Constituency,
    *,
    status: PersonStatus | None = None,
    page: int = 1,
    per_page: int = 100,
) -> PeoplePage:
    """The constituency's people by name, of one status or all, a page at a time, with the
    number in each status."""
    if constituency.organization_id != org.id:
        raise NotFound()
    counts = {
        s.value: n
        for s, n in db.execute(
            select(ConstituencyMember.status, func.count())
            .where(ConstituencyMember.constituency_id == constituency.id)
            .group_by(ConstituencyMember.status)
        ).all()
    }
    total = counts.get(status.value, 0) if status else sum(counts.values())
    pages = max(1, -(-total // per_page))
    page = max(1, min(page, pages))
    stmt = (
        select(ConstituencyMember, Member)
        .join(Member, Member.id == ConstituencyMember.member_id)
        .where(ConstituencyMember.constituency_id == constituency.id)
    )
    if status is not None:
        stmt = stmt.where(ConstituencyMember.status == status)
    rows = db.execute(
        stmt.order_by(Member.sort_name, Member.member_number)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return PeoplePage([(p, m) for p, m in rows], total, page, pages, counts)


# -- importing a file of people ------------------------------------------------------------------

IMPORT_FIELDS = (
    "first_name", "last_name", "email", "phone", "area", "relationship", "preferred_language",
    "joined_on",
)  # fmt: skip
IMPORT_SYNONYMS: dict[str, tuple[str, ...]] = {
    **{
        name: roster_files.SYNONYMS[name]
        for name in ("first_name", "last_name", "email", "phone", "preferred_language")
    },
    "area": ("area", "building", "neighborhood", "neighbourhood", "zone", "district", "block",
             "address", "street", "location", "site"),
    "relationship": ("relationship", "relation", "connection", "role"),
    "joined_on": ("joined", "joined on", "join date", "date joined", "signed up", "sign up date",
                  "since", "member since", "start date"),
}  # fmt: skip
MAX_IMPORT_ROWS = 10_000
IMPORT_ERRORS_SHOWN = 200


class ImportInvalid(BadRequest):
    """Some rows cannot be imported: every problem, by row, column and message."""

    def __init__(self, errors: list[roster_files.RowError]) -> None:
        super().__init__(N_("Some rows need correcting. Nothing was imported."))
        self.errors = errors


@dataclass(frozen=True)
class ImportCheck:
    mapping: dict[str, str]  # field -> header
    rows: list[PersonFields]
    errors: list[roster_files.RowError]


def check_import(
    constituency: Constituency,
    file_name: str,
    data: bytes,
    *,
    phone_region: str,
    today: date,
) -> ImportCheck:
    """Read a CSV or spreadsheet of people the way roster files are read (encoding,
    delimiter, .xlsx; columns guessed from their headers) and check every row. Errors name
    the row (as a spreadsheet numbers it), the column and the problem."""
    roster = roster_files.read_roster(file_name, data)
    if roster.row_count > MAX_IMPORT_ROWS:
        raise BadRequest(
            N_("A file may hold at most %(max)s people; split it into smaller files."),
            max=MAX_IMPORT_ROWS,
        )
    mapping = roster_files.guess_mapping(roster.headers, IMPORT_SYNONYMS)
    if "first_name" not in mapping and "last_name" not in mapping:
        raise BadRequest(
            N_(
                "The file needs a header row with a “First name” or “Last name” column "
                "(and any of: Email, Phone, Area, Relationship, Language, Joined)."
            )
        )
    index = {name: roster.headers.index(header) for name, header in mapping.items()}
    rows: list[PersonFields] = []
    errors: list[roster_files.RowError] = []
    emails: set[str] = set()
    for number, cells in enumerate(roster.iter_rows(), start=2):
        problems: list[roster_files.RowError] = []
        values: dict[str, str] = {}
        for name, at in index.items():
            raw = cells[at].strip() if at < len(cells) else ""
            if len(raw) > roster_files.MAX_CELL:
                problems.append(
                    roster_files.RowError(number, mapping[name], N_("This is too long."))
                )
            elif raw and roster_files.looks_like_formula(raw):
                problems.append(
                    roster_files.RowError(
                        number, mapping[name], N_("A cell may not start with a formula.")
                    )
                )
            else:
                values[name] = raw
        joined: date | None = None
        if values.get("joined_on"):
            joined = roster_files.parse_date(values["joined_on"])
            if joined is None:
                problems.append(
                    roster_files.RowError(number, mapping["joined_on"], N_("This is not a date."))
                )
        fields = PersonFields(
            first_name=values.get("first_name", ""),
            last_name=values.get("last_name", ""),
            email=values.get("email", ""),
            phone=values.get("phone", ""),
            area=values.get("area", ""),
            relationship=values.get("relationship", ""),
            preferred_language=values.get("preferred_language", ""),
            joined_on=joined,
        )
        try:
            cleaned = clean_person(fields, constituency, phone_region=phone_region, today=today)
        except PersonInvalid as exc:
            columns = {**mapping, "first_name": mapping.get("first_name") or mapping["last_name"]}
            problems += [
                roster_files.RowError(number, columns.get(name, name), message)
                for name, message in exc.errors.items()
                if not any(p.column == columns.get(name) for p in problems)
            ]
        else:
            if cleaned.email and cleaned.email in emails:
                problems.append(
                    roster_files.RowError(
                        number,
                        mapping["email"],
                        N_("This email address is also on an earlier row."),
                    )
                )
            elif cleaned.email:
                emails.add(cleaned.email)
        if problems:
            errors += problems
        else:
            rows.append(cleaned)
    return ImportCheck(mapping, rows, errors)


def import_people(
    db: Session,
    org: Organization,
    constituency: Constituency,
    file_name: str,
    data: bytes,
    *,
    actor: StaffUser | None,
    phone_region: str = DEFAULT_PHONE_REGION,
    today: date | None = None,
) -> int:
    """Every row checked first; with any error ``ImportInvalid`` lists them all and nothing
    is written. Otherwise each row becomes a new member, approved in the constituency
    (source: import), all in the caller's transaction. Returns how many were imported."""
    if constituency.organization_id != org.id:
        raise NotFound()
    today = today or org_today(org)
    checked = check_import(constituency, file_name, data, phone_region=phone_region, today=today)
    if checked.errors:
        raise ImportInvalid(checked.errors)
    numbers = fresh_member_numbers(db, org, len(checked.rows))
    members = [_new_member(db, org, f, n) for f, n in zip(checked.rows, numbers, strict=True)]
    db.flush()
    for fields, member in zip(checked.rows, members, strict=True):
        _add(db, constituency, member, fields, actor=actor, source=PersonSource.IMPORT, today=today)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="constituency.people_imported",
        object_type="constituency",
        object_id=constituency.id,
        data={"rows": len(members), "file_digest": hashlib.sha256(data).hexdigest()},
        actor_label=None if actor else "system",
    )
    return len(members)


def consent_line(constituency: Constituency) -> str | None:
    """The constituency's own consent line, or None for the default (translated where shown)."""
    return constituency.consent_text.strip() or None


STATUS_LABELS = {
    PersonStatus.PENDING.value: N_("Waiting for approval"),
    PersonStatus.APPROVED.value: N_("Approved"),
    PersonStatus.REJECTED.value: N_("Turned down"),
    PersonStatus.MERGED.value: N_("Merged into another person"),
    PersonStatus.REMOVED.value: N_("Left"),
}
SOURCE_LABELS = {
    PersonSource.SIGNUP.value: N_("signed up"),
    PersonSource.LEADER.value: N_("added by a leader"),
    PersonSource.IMPORT.value: N_("imported"),
}
