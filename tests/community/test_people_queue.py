"""The leaders' approval queue: pending people with their possible duplicates; approving,
turning down (with a reason) and merging a duplicate into the person already known; each
audited, each refused for someone already decided, another organization's people unreachable."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.community import people
from ratify.community.models import (
    Attendance,
    AttendanceMethod,
    Constituency,
    ConstituencyMember,
    Event,
    EventKind,
    PersonSource,
    PersonStatus,
)
from ratify.errors import BadRequest, Conflict
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.rosters.models import Member
from tests.community.support import make_community, make_constituency, make_leader
from tests.helpers import csrf_from, login

TODAY = date(2026, 12, 1)


def _signed_up(
    db: Session, org: Organization, c: Constituency, first: str = "Rosa", **values: str
) -> ConstituencyMember:
    fields = people.PersonFields(
        first_name=first,
        last_name=values.pop("last_name", "Parks"),
        phone=values.pop("phone", "4155550132"),
        area=values.pop("area", "12 Elm St"),
        relationship=values.pop("relationship", "tenant"),
        consent=True,
        **values,
    )
    return people.sign_up(db, org, c, fields, today=TODAY)


def _added(db: Session, org: Organization, c: Constituency, first: str, **values: str):  # type: ignore[no-untyped-def]
    fields = people.PersonFields(first_name=first, last_name=values.pop("last_name", "Parks"),
                                 **values)  # fmt: skip
    return people.add_person(db, org, c, fields, actor=None, today=TODAY)


def _event(db: Session, org: Organization, title: str) -> Event:
    event = Event(
        organization_id=org.id,
        kind=EventKind.MEETING,
        title=title,
        held_on=date(2026, 11, 1),
        checkin_code=title[:12],
        checkin_closes_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    db.add(event)
    db.flush()
    return event


def _attend(db: Session, event: Event, member_id) -> None:  # type: ignore[no-untyped-def]
    db.add(Attendance(event_id=event.id, member_id=member_id, method=AttendanceMethod.LEADER))
    db.flush()


def _place(db: Session, c: Constituency, member_id, status: PersonStatus) -> ConstituencyMember:  # type: ignore[no-untyped-def]
    place = ConstituencyMember(
        constituency_id=c.id,
        member_id=member_id,
        status=status,
        source=PersonSource.LEADER,
        joined_on=date(2026, 1, 5),
        approved_on=date(2026, 1, 5) if status == PersonStatus.APPROVED else None,
    )
    db.add(place)
    db.flush()
    return place


def _setup(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_community(db)
    c = make_constituency(db, org)
    leader = make_leader(db, org, role)
    login(client, leader.email)
    return org, c, leader


def _queue_url(org: Organization, c: Constituency) -> str:
    return f"/o/{org.slug}/constituencies/{c.id}/queue"


def _post(client, org, c, person, action: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client, _queue_url(org, c))
    return client.post(
        f"{_queue_url(org, c)}/{person.id}/{action}", data={**data, "csrf_token": token}
    )


def test_the_queue_lists_pending_people_with_their_details_and_duplicates(
    db: Session, client
) -> None:
    org, c, _ = _setup(db, client)
    known = _added(db, org, make_constituency(db, org), "Rosa", phone="4155550132")
    same_email = _added(db, org, c, "Other", last_name="Person", email="rosa@example.org")
    _added(db, org, c, "Unrelated", last_name="Human", phone="4155559999")
    pending = _signed_up(db, org, c, email="ROSA@example.org")
    page = client.get(_queue_url(org, c))
    assert page.status_code == 200
    text = page.text
    assert "Rosa Parks" in text and "+14155550132" in text and "rosa@example.org" in text
    assert "1 waiting for approval." in text
    assert "Possibly the same person as:" in text
    known_member = db.get(Member, known.member_id)
    assert known_member is not None and f"#{known_member.member_number}" in text
    assert "same name, same phone" in text
    assert "same email" in text and "Other Person" in text
    assert "Unrelated" not in text
    assert f'name="into" value="{known.member_id}"' in text
    assert f'name="into" value="{same_email.member_id}"' in text
    assert f'name="into" value="{pending.member_id}"' not in text  # not themselves


def test_approve_from_the_queue(db: Session, client) -> None:
    org, c, leader = _setup(db, client)
    person = _signed_up(db, org, c)
    response = _post(client, org, c, person, "approve")
    assert response.status_code == 303
    assert response.headers["location"].endswith("/queue?done=approved")
    db.refresh(person)
    assert person.status == PersonStatus.APPROVED
    assert person.approved_on == org_today(org)
    assert person.decided_by_id == leader.id
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "constituency.person_approved")
    ).one()
    assert event.member_id == person.member_id
    assert event.data == {"constituency_id": str(c.id)}
    assert "Nobody is waiting." in client.get(_queue_url(org, c)).text


def test_deciding_someone_already_decided_is_409(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    person = _signed_up(db, org, c)
    assert _post(client, org, c, person, "approve").status_code == 303
    for action, data in (("approve", {}), ("reject", {"reason": "dup"})):
        response = _post(client, org, c, person, action, **data)
        assert response.status_code == 409, action
        assert "Someone already decided about this person." in response.text
    db.refresh(person)
    assert person.status == PersonStatus.APPROVED and person.reason == ""


def test_rejecting_needs_a_reason(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    person = _signed_up(db, org, c)
    response = _post(client, org, c, person, "reject", reason="  ")
    assert response.status_code == 400
    assert "Say why." in response.text
    db.refresh(person)
    assert person.status == PersonStatus.PENDING
    response = _post(client, org, c, person, "reject", reason="Does not live in the buildings")
    assert response.status_code == 303
    db.refresh(person)
    assert person.status == PersonStatus.REJECTED
    assert person.reason == "Does not live in the buildings"
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "constituency.person_rejected")
    ).one()
    assert "Does not live" not in str(event.data)


def test_merge_moves_attendance_and_memberships_and_marks_the_duplicate(
    db: Session, client
) -> None:
    org, c, leader = _setup(db, client)
    other = make_constituency(db, org)
    third = make_constituency(db, org)
    kept = _added(db, org, other, "Rosa", phone="", email="")  # no contact details yet
    kept_member_id = kept.member_id
    duplicate = _signed_up(db, org, c, email="rosa@example.org", preferred_language="es")
    # The duplicate is also in a third constituency (where the kept person is not) and in a
    # fourth, approved, where the kept person waits for approval.
    moved = _place(db, third, duplicate.member_id, PersonStatus.APPROVED)
    fourth = make_constituency(db, org)
    kept_waiting = _place(db, fourth, kept_member_id, PersonStatus.PENDING)
    dup_approved = _place(db, fourth, duplicate.member_id, PersonStatus.APPROVED)
    both, only_dup, only_kept = (
        _event(db, org, "both"),
        _event(db, org, "dup"),
        _event(db, org, "kept"),
    )
    _attend(db, both, kept.member_id)
    _attend(db, both, duplicate.member_id)
    _attend(db, only_dup, duplicate.member_id)
    _attend(db, only_kept, kept.member_id)
    response = _post(client, org, c, duplicate, "merge", into=str(kept.member_id))
    assert response.status_code == 303
    assert response.headers["location"].endswith("/queue?done=merged")
    db.expire_all()
    # The duplicate's place is marked merged into the kept person.
    assert duplicate.status == PersonStatus.MERGED
    assert duplicate.merged_into_id == kept.member_id
    assert duplicate.decided_by_id == leader.id
    # The kept person now has a place here, pending like the duplicate's was.
    place = db.scalars(
        select(ConstituencyMember).where(
            ConstituencyMember.constituency_id == c.id,
            ConstituencyMember.member_id == kept.member_id,
        )
    ).one()
    assert place.status == PersonStatus.PENDING
    assert (place.area, place.relationship, place.source) == (
        "12 Elm St",
        "tenant",
        PersonSource.SIGNUP,
    )
    assert place.consented_at is not None
    # Attendance moved; the event both attended counts once.
    attended = db.scalars(select(Attendance.event_id).where(Attendance.member_id == kept.member_id))
    assert sorted(attended) == sorted([both.id, only_dup.id, only_kept.id])
    assert not db.scalars(
        select(Attendance).where(Attendance.member_id == duplicate.member_id)
    ).all()
    # The duplicate's other places moved to the kept member, or were folded into theirs.
    assert moved.member_id == kept_member_id and moved.status == PersonStatus.APPROVED
    assert kept_waiting.status == PersonStatus.APPROVED
    assert dup_approved.status == PersonStatus.MERGED
    assert dup_approved.merged_into_id == kept_member_id
    # Blank details were filled from the duplicate.
    kept_member = db.get(Member, kept.member_id)
    assert kept_member is not None
    assert kept_member.phone == "+14155550132" and kept_member.email == "rosa@example.org"
    assert kept_member.preferred_language == "es"
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "constituency.person_merged")
    ).one()
    assert event.data["merged_into"] == str(kept.member_id)
    assert "rosa@example.org" not in str(event.data) and "+1415" not in str(event.data)
    # The duplicate is no longer offered as a possible duplicate of anyone.
    later = _signed_up(db, org, c, "Rosa")
    entries = people.queue(db, org, c)
    offered = {d.member.id for e in entries if e.person.id == later.id for d in e.duplicates}
    assert kept.member_id in offered and duplicate.member_id not in offered


def test_merging_an_approved_duplicate_approves_the_kept_persons_place(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org)
    kept_pending = _signed_up(db, org, c, "Ann", phone="4155550100")
    approved_dup = _added(db, org, c, "Ann", phone="4155550100")
    assert approved_dup.status == PersonStatus.APPROVED
    kept_member = db.get(Member, kept_pending.member_id)
    assert kept_member is not None
    result = people.merge(db, org, approved_dup, into=kept_member, actor=None)
    assert result.id == kept_pending.id
    assert kept_pending.status == PersonStatus.APPROVED
    assert kept_pending.approved_on == TODAY
    assert approved_dup.status == PersonStatus.MERGED


def test_merge_refusals(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org)
    a = _signed_up(db, org, c, "Ann")
    b = _signed_up(db, org, c, "Bea")
    d = _signed_up(db, org, c, "Dee")
    a_member, b_member = db.get(Member, a.member_id), db.get(Member, b.member_id)
    assert a_member is not None and b_member is not None
    with pytest.raises(BadRequest):
        people.merge(db, org, a, into=a_member, actor=None)
    people.merge(db, org, a, into=b_member, actor=None)
    with pytest.raises(Conflict):  # merged already
        people.merge(db, org, a, into=b_member, actor=None)
    with pytest.raises(Conflict):  # into someone merged away
        people.merge(db, org, d, into=a_member, actor=None)


def test_another_organizations_leader_gets_404_everywhere(db: Session, client) -> None:
    theirs = make_community(db)
    c = make_constituency(db, theirs)
    person = _signed_up(db, theirs, c)
    mine = make_community(db)
    login(client, make_leader(db, mine, Role.ADMIN).email)
    token = csrf_from(client, "/account")
    for path in (_queue_url(theirs, c), f"/o/{theirs.slug}/constituencies/{c.id}/people"):
        assert client.get(path).status_code == 404, path
    # Their constituency under my organization's address is not found either.
    base = f"/o/{mine.slug}/constituencies/{c.id}"
    for path in (f"{base}/queue", f"{base}/people", f"{base}/people/new", f"{base}/people/import"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Rosa" not in response.text
    for path, data in (
        (f"{base}/queue/{person.id}/approve", {}),
        (f"{base}/queue/{person.id}/reject", {"reason": "x"}),
        (f"{base}/queue/{person.id}/merge", {"into": str(person.member_id)}),
        (f"{base}/people/{person.id}/remove", {"reason": "x"}),
        (f"{base}/people", {"first_name": "Intruder"}),
        (f"{_queue_url(theirs, c)}/{person.id}/approve", {}),
    ):
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 404, path
    db.refresh(person)
    assert person.status == PersonStatus.PENDING
    assert db.scalar(select(func.count()).where(Member.first_name == "Intruder")) == 0


def test_merging_into_another_organizations_member_is_404(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    person = _signed_up(db, org, c)
    other_org = make_community(db)
    elsewhere = _added(db, other_org, make_constituency(db, other_org), "Rosa")
    response = _post(client, org, c, person, "merge", into=str(elsewhere.member_id))
    assert response.status_code == 404
    assert _post(client, org, c, person, "merge", into="not-a-uuid").status_code == 404
    db.refresh(person)
    assert person.status == PersonStatus.PENDING


@pytest.mark.parametrize("role", [Role.COMMITTEE, Role.OBSERVER])
def test_committee_and_observers_cannot_see_or_decide(db: Session, client, role: Role) -> None:
    org, c, _ = _setup(db, client, role)
    person = _signed_up(db, org, c)
    assert client.get(_queue_url(org, c)).status_code == 403
    assert client.get(f"/o/{org.slug}/constituencies/{c.id}/people").status_code == 403
    token = csrf_from(client, "/account")
    response = client.post(f"{_queue_url(org, c)}/{person.id}/approve", data={"csrf_token": token})
    assert response.status_code == 403
    db.refresh(person)
    assert person.status == PersonStatus.PENDING


def test_admins_are_leaders_too(db: Session, client) -> None:
    org, c, _ = _setup(db, client, Role.ADMIN)
    person = _signed_up(db, org, c)
    assert _post(client, org, c, person, "approve").status_code == 303
