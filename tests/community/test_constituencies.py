"""Constituencies: each criterion alone and combined, evaluated as of past dates, and the
leaders' pages that define a constituency and show who met it, with reasons."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.community import constituencies as cons
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
from ratify.orgs.models import Organization, OrgKind
from ratify.rosters.models import Member
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login


def _constituency(db: Session, org: Organization, **values: object) -> Constituency:
    fields = {
        "name": f"Tenants {uuid.uuid4().hex[:6]}",
        "description": "Tenants of the Eastside buildings",
        "area_choices": ["12 Elm St", "14 Elm St", "3 Oak Ave"],
        "relationship_choices": ["tenant", "worker"],
        "criteria": {},
        "approval_required": True,
        "signup_code": uuid.uuid4().hex,
    }
    fields.update(values)
    found = Constituency(organization_id=org.id, **fields)
    db.add(found)
    db.flush()
    return found


def _person(
    db: Session,
    org: Organization,
    constituency: Constituency,
    name: str,
    *,
    joined: date,
    approved: date | None = None,
    status: PersonStatus = PersonStatus.APPROVED,
    area: str = "12 Elm St",
    relationship: str = "tenant",
    left: date | None = None,
    phone: str = "",
) -> Member:
    member = Member(
        organization_id=org.id,
        member_number=f"P{uuid.uuid4().hex[:8]}",
        first_name=name,
        last_name="Resident",
        sort_name=f"resident {name.lower()}",
        phone=phone,
    )
    db.add(member)
    db.flush()
    db.add(
        ConstituencyMember(
            constituency_id=constituency.id,
            member_id=member.id,
            status=status,
            source=PersonSource.SIGNUP,
            area=area,
            relationship=relationship,
            joined_on=joined,
            approved_on=approved
            if approved is not None or status != PersonStatus.APPROVED
            else joined,
            left_on=left,
        )
    )
    db.flush()
    return member


def _event(db: Session, org: Organization, held: date, constituency: Constituency | None) -> Event:
    event = Event(
        organization_id=org.id,
        constituency_id=constituency.id if constituency else None,
        kind=EventKind.MEETING,
        title=f"Meeting {held}",
        held_on=held,
        checkin_code=uuid.uuid4().hex[:12],
        checkin_closes_at=datetime(held.year, held.month, held.day, 23, tzinfo=UTC),
    )
    db.add(event)
    db.flush()
    return event


def _attend(db: Session, event: Event, *members: Member) -> None:
    for m in members:
        db.add(Attendance(event_id=event.id, member_id=m.id, method=AttendanceMethod.LEADER))
    db.flush()


def _met(db: Session, org: Organization, c: Constituency, on: date) -> dict[str, tuple[str, ...]]:
    return {d.name.split(", ")[1]: d.reasons for d in cons.evaluate(db, org, c, on).decisions}


def test_approval_joining_and_leaving_are_read_as_of_the_date(db: Session) -> None:
    org = make_org(db, kind=OrgKind.COMMUNITY)
    c = _constituency(db, org)
    _person(db, org, c, "Ann", joined=date(2026, 1, 5), approved=date(2026, 1, 20))
    _person(db, org, c, "Ben", joined=date(2026, 3, 1), status=PersonStatus.PENDING)
    _person(db, org, c, "Cy", joined=date(2026, 1, 5), status=PersonStatus.REJECTED)
    _person(db, org, c, "Di", joined=date(2026, 1, 5), status=PersonStatus.REMOVED,
            approved=date(2026, 1, 6), left=date(2026, 6, 1))  # fmt: skip
    _person(db, org, c, "Ed", joined=date(2026, 1, 5), status=PersonStatus.MERGED)
    assert _met(db, org, c, date(2026, 1, 10)) == {
        "Ann": (cons.NOT_APPROVED,), "Ben": (cons.NOT_YET_JOINED,), "Cy": (cons.REJECTED,),
        "Di": (),
    }  # fmt: skip
    later = _met(db, org, c, date(2026, 7, 1))
    assert later["Ann"] == () and later["Ben"] == (cons.NOT_APPROVED,)
    assert later["Di"] == (cons.LEFT,)
    assert "Ed" not in later  # a merged duplicate is not a person of its own
    # Without approval, joining is enough: Ann counts from the day she joined; Ben, still
    # pending (held for a leader, a second sign-up say), waits either way.
    c.approval_required = False
    unapproved = _met(db, org, c, date(2026, 1, 10))
    assert unapproved["Ann"] == ()
    assert _met(db, org, c, date(2026, 3, 2))["Ben"] == (cons.NOT_APPROVED,)


def test_each_criterion_and_their_combination(db: Session) -> None:
    org = make_org(db, kind=OrgKind.COMMUNITY)
    c = _constituency(db, org)
    ann = _person(db, org, c, "Ann", joined=date(2025, 6, 1))
    bea = _person(db, org, c, "Bea", joined=date(2026, 2, 1), area="3 Oak Ave")
    cal = _person(db, org, c, "Cal", joined=date(2025, 6, 1), relationship="worker")
    dot = _person(db, org, c, "Dot", joined=date(2025, 6, 1), area="14 Elm St")
    # Five events: four of this constituency (one after the dates asked), one org-wide, one
    # of another constituency (never counted).
    other = _constituency(db, org)
    e1 = _event(db, org, date(2026, 1, 10), c)
    e2 = _event(db, org, date(2026, 2, 10), None)
    e3 = _event(db, org, date(2026, 3, 10), c)
    e4 = _event(db, org, date(2026, 4, 10), other)
    e5 = _event(db, org, date(2026, 5, 10), c)
    _attend(db, e1, ann, cal, dot)
    _attend(db, e2, ann, bea)
    _attend(db, e3, bea, dot)
    _attend(db, e4, cal, dot)
    _attend(db, e5, cal, dot)

    c.criteria = cons.Criteria(joined_before=date(2026, 1, 1)).stored()
    assert _met(db, org, c, date(2026, 4, 30))["Bea"] == (cons.JOINED_TOO_LATE,)
    c.criteria = cons.Criteria(areas=frozenset({"12 Elm St", "14 Elm St"})).stored()
    assert _met(db, org, c, date(2026, 4, 30))["Bea"] == (cons.OUTSIDE_AREAS,)
    c.criteria = cons.Criteria(relationships=frozenset({"tenant"})).stored()
    assert _met(db, org, c, date(2026, 4, 30))["Cal"] == (cons.RELATIONSHIP,)
    # At least 2 of the last 2 events held by April 30: e2 (org-wide) and e3.
    c.criteria = cons.Criteria(attended_at_least=2, of_last=2).stored()
    april = cons.evaluate(db, org, c, date(2026, 4, 30))
    assert april.events_counted == 2
    assert {d.name.split(", ")[1]: d.eligible for d in april.decisions} == {
        "Ann": False, "Bea": True, "Cal": False, "Dot": False,
    }  # fmt: skip
    # By May 31 the last two are e3 and e5: Dot attended both.
    assert _met(db, org, c, date(2026, 5, 31))["Dot"] == ()
    may = cons.evaluate(db, org, c, date(2026, 5, 31)).attended
    assert {m: may.get(m, 0) for m in (dot.id, bea.id)} == {dot.id: 2, bea.id: 1}

    # All together (AND): every reason is reported, the first one counted.
    c.criteria = cons.Criteria(
        joined_before=date(2026, 1, 1),
        areas=frozenset({"12 Elm St", "14 Elm St"}),
        relationships=frozenset({"tenant"}),
        attended_at_least=1,
        of_last=2,
    ).stored()
    combined = _met(db, org, c, date(2026, 4, 30))
    assert combined == {
        "Ann": (),
        "Bea": (cons.JOINED_TOO_LATE, cons.OUTSIDE_AREAS),
        "Cal": (cons.RELATIONSHIP, cons.TOO_FEW_EVENTS),  # e1 is not among the last two
        "Dot": (),
    }
    membership = cons.evaluate(db, org, c, date(2026, 4, 30))
    assert membership.included == 2
    assert membership.excluded_by_reason() == {cons.JOINED_TOO_LATE: 1, cons.RELATIONSHIP: 1}


def _form(client, path: str, **fields: str):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": csrf_from(client, path),
        "name": "Eastside tenants",
        "description": "Tenants of the three Eastside buildings owned by Acme",
        "area_choices": "12 Elm St\n14 Elm St\n3 Oak Ave",
        "relationship_choices": "tenant\nworker",
        "areas": "12 Elm St\n14 Elm St",
        "relationships": "tenant",
        "joined_before": "",
        "attended_at_least": "1",
        "of_last": "3",
        "approval_required": "1",
        "signup_open": "1",
        "consent_text": "",
    }
    data.update(fields)
    return data


def test_a_leader_defines_a_constituency_and_sees_who_met_it(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db, kind=OrgKind.COMMUNITY)
    leader = make_user(db, org, Role.STAFF)
    login(client, leader.email)
    new = f"/o/{org.slug}/constituencies/new"
    created = client.post(f"/o/{org.slug}/constituencies", data=_form(client, new))
    assert created.status_code == 303
    c = db.scalars(select(Constituency).where(Constituency.organization_id == org.id)).one()
    assert c.criteria == {
        "areas": ["12 Elm St", "14 Elm St"],
        "relationships": ["tenant"],
        "attended": {"at_least": 1, "of_last": 3},
    }
    assert c.approval_required and c.signup_open and len(c.signup_code) >= 16
    ann = _person(db, org, c, "Ann", joined=date(2026, 1, 5))
    _person(db, org, c, "Bea", joined=date(2026, 1, 5), area="3 Oak Ave")
    _attend(db, _event(db, org, date(2026, 2, 1), c), ann)
    page = client.get(f"{created.headers['location']}?on=2026-03-01")
    assert page.status_code == 200
    assert "1 met the criteria" in page.text and "Not in one of the areas" in page.text
    assert f"/join/{c.signup_code}" in page.text
    assert "Attended too few" in page.text  # Bea attended nothing either
    # The same list, a day before the meeting: nobody had attended.
    assert "0 met the criteria" in client.get(f"{created.headers['location']}?on=2026-01-31").text
    bad_date = client.get(f"{created.headers['location']}?on=someday")
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.text

    # Editing: criteria outside the choices, half an attendance rule, a taken name: 400,
    # every problem named, nothing changed.
    edit = f"/o/{org.slug}/constituencies/{c.id}/edit"
    other = client.post(
        f"/o/{org.slug}/constituencies", data=_form(client, new, name="Youth", areas="")
    )
    assert other.status_code == 303
    refused = client.post(
        edit, data=_form(client, edit, name="youth", areas="Mars", of_last="", joined_before="x")
    )
    assert refused.status_code == 400
    for message in ("Another constituency has this name", "from the list of areas",
                    "both numbers of events", "YYYY-MM-DD"):  # fmt: skip
        assert message in refused.text
    db.expire_all()
    assert db.get_one(Constituency, c.id).name == "Eastside tenants"
    changed = client.post(edit, data=_form(client, edit, approval_required="", of_last="5"))
    assert changed.status_code == 303
    db.expire_all()
    assert db.get_one(Constituency, c.id).criteria["attended"] == {"at_least": 1, "of_last": 5}
    assert not db.get_one(Constituency, c.id).approval_required
    # A new sign-up link replaces the old.
    old = c.signup_code
    link = f"/o/{org.slug}/constituencies/{c.id}"
    assert (
        client.post(f"{link}/signup-link", data={"csrf_token": csrf_from(client, link)}).status_code
        == 303
    )
    db.expire_all()
    assert db.get_one(Constituency, c.id).signup_code != old


def test_another_organization_and_other_roles_cannot_reach_a_constituency(
    db: Session, client
) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db, kind=OrgKind.COMMUNITY)
    c = _constituency(db, org)
    _person(db, org, c, "Ann", joined=date(2026, 1, 5))
    outsider_org = make_org(db, kind=OrgKind.COMMUNITY)
    outsider = make_user(db, outsider_org, Role.ADMIN)
    login(client, outsider.email)
    # Their own organization's URL with our constituency's id: not found.
    for path in (f"/o/{outsider_org.slug}/constituencies/{c.id}",
                 f"/o/{outsider_org.slug}/constituencies/{c.id}/edit"):  # fmt: skip
        assert client.get(path).status_code == 404
    own = f"/o/{outsider_org.slug}/constituencies"
    token = csrf_from(client, own)
    assert (
        client.post(
            f"{own}/{c.id}/edit", data={"csrf_token": token, "name": "Taken over"}
        ).status_code
        == 404
    )
    assert client.get(f"/o/{org.slug}/constituencies/{c.id}").status_code in (403, 404)
    client.cookies.clear()
    observer = make_user(db, org, Role.OBSERVER)
    login(client, observer.email)
    assert client.get(f"/o/{org.slug}/constituencies").status_code == 200
    assert client.get(f"/o/{org.slug}/constituencies/{c.id}").status_code == 403
    assert "Ann" not in client.get(f"/o/{org.slug}/constituencies").text
    assert db.scalar(select(func.count()).select_from(Constituency)) == 1
