"""Events and attendance: leaders record who came from the event's list; members check in on
their phone with the event's code."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.community import events
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
from ratify.errors import BadRequest, NotFound
from ratify.orgs.models import Organization, OrgKind
from ratify.orgs.services import org_today
from ratify.rosters.models import Member
from ratify.throttle.models import ThrottleHit
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login, post_form, run_together

WRONG_CODE = "No event has this code: check it with the organizer"
CLOSED = "Check-in for this event has closed"
NOT_ON_LIST = "We could not find you on this event&#39;s list"


# -- fixtures ----------------------------------------------------------------------------------


def community(db: Session, timezone: str = "America/Chicago") -> Organization:
    org = make_org(db, kind=OrgKind.COMMUNITY)
    org.timezone = timezone
    db.flush()
    return org


def constituency(db: Session, org: Organization, name: str = "Eastside tenants") -> Constituency:
    found = Constituency(
        organization_id=org.id, name=name, signup_code=uuid.uuid4().hex, criteria={}
    )
    db.add(found)
    db.flush()
    return found


def person(
    db: Session,
    org: Organization,
    first: str,
    last: str,
    *,
    email: str = "",
    phone: str = "",
    within: Constituency | None = None,
    status: PersonStatus = PersonStatus.APPROVED,
) -> Member:
    member = Member(
        organization_id=org.id,
        member_number=uuid.uuid4().hex[:12],
        first_name=first,
        last_name=last,
        sort_name=f"{last} {first}".lower(),
        email=email,
        phone=phone,
    )
    db.add(member)
    db.flush()
    if within is not None:
        db.add(
            ConstituencyMember(
                constituency_id=within.id,
                member_id=member.id,
                status=status,
                source=PersonSource.LEADER,
                joined_on=date(2026, 1, 5),
            )
        )
        db.flush()
    return member


def event_of(
    db: Session,
    org: Organization,
    within: Constituency | None = None,
    *,
    held_on: date | None = None,
    closes: datetime | None = None,
) -> Event:
    return events.create_event(
        db,
        org,
        actor=None,
        fields=events.EventFields(
            kind=EventKind.MEETING,
            title="Building meeting",
            held_on=held_on or org_today(org),  # the organization's today, as check-in dates it
            location="Community room",
            constituency_id=within.id if within else None,
            checkin_closes_at=closes,
        ),
    )


def rows(db: Session, event: Event) -> list[Attendance]:
    db.expire_all()
    return list(db.scalars(select(Attendance).where(Attendance.event_id == event.id)))


def checkin(client, code: str, contact: str):  # type: ignore[no-untyped-def]
    return post_form(client, "/checkin", {"code": code, "contact": contact})


# -- leaders --------------------------------------------------------------------------------


def test_a_leader_creates_an_event_with_a_code_and_the_default_closing(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    leader = make_user(db, org, Role.STAFF)
    login(client, leader.email)
    form = client.get(f"/o/{org.slug}/events/new")
    assert form.status_code == 200 and "Eastside tenants" in form.text
    response = post_form(
        client,
        f"/o/{org.slug}/events",
        {
            "kind": "listening_session",
            "title": "Listening session on repairs",
            "held_on": "2026-03-10",
            "location": "Library, room 2",
            "constituency": str(tenants.id),
            "closes": "",
        },
        form_page=f"/o/{org.slug}/events/new",
    )
    assert response.status_code == 303
    event = db.scalars(select(Event).where(Event.organization_id == org.id)).one()
    assert response.headers["location"] == f"/o/{org.slug}/events/{event.id}"
    assert event.kind == EventKind.LISTENING_SESSION and event.constituency_id == tenants.id
    assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}", event.checkin_code)
    # The end of the next day in Chicago (CDT in March 2026: UTC-5).
    local = event.checkin_closes_at.astimezone(ZoneInfo("America/Chicago"))
    assert (local.date(), local.hour, local.minute) == (date(2026, 3, 11), 23, 59)
    page = client.get(response.headers["location"])
    assert event.checkin_code in page.text
    assert f"http://testserver/checkin?code={event.checkin_code}" in page.text
    audited = db.scalars(select(AuditEvent).where(AuditEvent.action == "event.created")).one()
    assert audited.object_id == str(event.id)


def test_a_bad_event_form_says_what_to_correct_and_writes_nothing(db: Session, client) -> None:
    org = community(db)
    other = community(db)
    theirs = constituency(db, other)
    login(client, make_user(db, org, Role.STAFF).email)
    response = post_form(
        client,
        f"/o/{org.slug}/events",
        {
            "kind": "party",
            "title": "",
            "held_on": "10/03/2026",
            "location": "x" * 201,
            "constituency": str(theirs.id),
            "closes": "tomorrow",
        },
        form_page=f"/o/{org.slug}/events/new",
    )
    assert response.status_code == 400
    assert "Choose what kind of event it is." in response.text
    assert "Enter the date as YYYY-MM-DD." in response.text
    assert "Enter the date and time as YYYY-MM-DD HH:MM." in response.text
    assert 'value="' + "x" * 201 + '"' in response.text  # what was typed is kept
    response = post_form(
        client,
        f"/o/{org.slug}/events",
        {
            "kind": "meeting",
            "title": "",
            "held_on": "2026-03-10",
            "location": "x" * 201,
            "constituency": str(theirs.id),
            "closes": "2026-03-01T10:00",
        },
        form_page=f"/o/{org.slug}/events/new",
    )
    assert response.status_code == 400
    for message in (
        "Enter the event&#39;s title.",
        "Use at most 200 characters.",
        "Choose one of the organization&#39;s constituencies.",
        "Check-in must close after the event&#39;s day begins.",
    ):
        assert message in response.text
    assert db.scalar(select(func.count()).select_from(Event)) == 0


def test_a_leader_records_attendance_from_the_list_once_per_person(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", within=tenants)
    dev = person(db, org, "Dev", "Patel", within=tenants, status=PersonStatus.PENDING)
    ana = person(db, org, "Ana", "Reyes", within=tenants)
    person(db, org, "Rex", "Rejected", within=tenants, status=PersonStatus.REJECTED)
    person(db, org, "Olga", "Outsider", within=constituency(db, org, "Westside"))
    event = event_of(db, org, tenants)
    leader = make_user(db, org, Role.STAFF)
    login(client, leader.email)
    detail = f"/o/{org.slug}/events/{event.id}"

    page = client.get(detail)
    assert page.status_code == 200
    for name in ("Maria Lopez", "Dev Patel", "Ana Reyes"):
        assert name in page.text
    assert "Rex Rejected" not in page.text and "Olga Outsider" not in page.text
    assert "awaiting approval" in page.text  # Dev is pending

    token = csrf_from(client, detail)
    response = client.post(
        f"{detail}/attendance",
        data={"csrf_token": token, "member_id": [str(maria.id), str(dev.id)]},
    )
    assert response.status_code == 303
    recorded = rows(db, event)
    assert {r.member_id for r in recorded} == {maria.id, dev.id}
    assert {r.method for r in recorded} == {AttendanceMethod.LEADER}
    assert {r.recorded_by_id for r in recorded} == {leader.id}
    assert "Recorded as attending just now: 2." in client.get(response.headers["location"]).text

    # Again, with one already recorded: only the new one is written.
    response = client.post(
        f"{detail}/attendance",
        data={"csrf_token": token, "member_id": [str(maria.id), str(ana.id)]},
    )
    assert response.status_code == 303 and "recorded=1" in response.headers["location"]
    assert {r.member_id for r in rows(db, event)} == {maria.id, dev.id, ana.id}
    page = client.get(detail)
    assert "already recorded" in page.text

    audited = list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == "event.attendance_recorded"))
    )
    assert [sorted(a.data["member_ids"]) for a in audited] == [
        sorted([str(maria.id), str(dev.id)]),
        [str(ana.id)],
    ]


def test_ticking_someone_not_on_the_list_records_nobody(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", within=tenants)
    rex = person(db, org, "Rex", "Rejected", within=tenants, status=PersonStatus.REJECTED)
    event = event_of(db, org, tenants)
    login(client, make_user(db, org, Role.STAFF).email)
    detail = f"/o/{org.slug}/events/{event.id}"
    token = csrf_from(client, detail)
    for ids in ([str(maria.id), str(rex.id)], [str(maria.id), "not-an-id"], []):
        response = client.post(f"{detail}/attendance", data={"csrf_token": token, "member_id": ids})
        assert response.status_code == 400
        assert "Maria Lopez" in response.text  # the page again, with its list
    assert rows(db, event) == []


def test_the_name_filter_works_without_javascript(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    person(db, org, "Maria", "Lopez", within=tenants)
    person(db, org, "Dev", "Patel", within=tenants)
    event = event_of(db, org, tenants)
    login(client, make_user(db, org, Role.STAFF).email)
    page = client.get(f"/o/{org.slug}/events/{event.id}?q=LOP")
    assert "Maria Lopez" in page.text and "Dev Patel" not in page.text
    page = client.get(f"/o/{org.slug}/events/{event.id}?q=maria+lopez")
    assert "Maria Lopez" in page.text
    page = client.get(f"/o/{org.slug}/events/{event.id}?q=%25")
    assert "Maria Lopez" not in page.text and "Nobody on this event's list has that name." in (
        page.text
    )


def test_an_organization_wide_event_lists_every_constituencys_people(db: Session) -> None:
    org = community(db)
    east, west = constituency(db, org, "East"), constituency(db, org, "West")
    maria = person(db, org, "Maria", "Lopez", within=east)
    dev = person(db, org, "Dev", "Patel", within=west, status=PersonStatus.PENDING)
    person(db, community(db), "Ana", "Elsewhere", within=constituency(db, community(db), "X"))
    event = event_of(db, org)
    listed, more = events.people(db, event)
    assert [p.member_id for p in listed] == [maria.id, dev.id] and not more
    assert [p.pending for p in listed] == [False, True]
    assert events.record_attendance(db, org, event, [maria.id, dev.id], actor=None) == 2


def test_a_leader_edits_an_event_and_the_change_is_audited(db: Session, client) -> None:
    org = community(db, timezone="UTC")
    event = event_of(db, org, held_on=date(2026, 3, 10))
    login(client, make_user(db, org, Role.STAFF).email)
    path = f"/o/{org.slug}/events/{event.id}/edit"
    form = client.get(path)
    assert 'value="2026-03-11T23:59"' in form.text
    response = post_form(
        client,
        path,
        {
            "title": "Building meeting (moved)",
            "held_on": "2026-03-12",
            "location": "Church hall",
            "closes": "2026-03-12T21:00",
        },
    )
    assert response.status_code == 303
    db.refresh(event)
    assert (event.title, event.held_on, event.location) == (
        "Building meeting (moved)",
        date(2026, 3, 12),
        "Church hall",
    )
    assert event.checkin_closes_at == datetime(2026, 3, 12, 21, 0, tzinfo=UTC)
    assert event.kind == EventKind.MEETING
    audited = db.scalars(select(AuditEvent).where(AuditEvent.action == "event.updated")).one()
    assert set(audited.data["changes"]) == {"title", "held_on", "location", "checkin_closes_at"}
    # Saving the form unchanged changes nothing.
    assert post_form(client, path, {**_saved_values(event)}).status_code == 303
    assert (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "event.updated")
        )
        == 1
    )


def _saved_values(event: Event) -> dict[str, str]:
    return {
        "title": event.title,
        "held_on": event.held_on.isoformat(),
        "location": event.location,
        "closes": event.checkin_closes_at.strftime("%Y-%m-%dT%H:%M"),
    }


def test_a_leader_removes_an_attendance_row(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", within=tenants)
    event = event_of(db, org, tenants)
    events.record_attendance(db, org, event, [maria.id], actor=None)
    (row,) = rows(db, event)
    row_id = row.id
    login(client, make_user(db, org, Role.STAFF).email)
    detail = f"/o/{org.slug}/events/{event.id}"
    response = post_form(client, f"{detail}/attendance/{row_id}/remove", {}, form_page=detail)
    assert response.status_code == 303
    assert rows(db, event) == []
    audited = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "event.attendance_removed")
    ).one()
    assert audited.member_id == maria.id
    # A second click finds nothing to remove.
    response = post_form(client, f"{detail}/attendance/{row_id}/remove", {}, form_page=detail)
    assert response.status_code == 404


def test_the_events_list_is_newest_first_with_attendance(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", within=tenants)
    old = event_of(db, org, tenants, held_on=date(2026, 1, 5))
    old.title = "January meeting"
    new = event_of(db, org, tenants, held_on=date(2026, 2, 5))
    new.title = "February action"
    db.flush()
    events.record_attendance(db, org, old, [maria.id], actor=None)
    login(client, make_user(db, org, Role.STAFF).email)
    page = client.get(f"/o/{org.slug}/events")
    assert page.status_code == 200
    assert page.text.index("February action") < page.text.index("January meeting")
    assert "Attended: 1" in page.text and "Attended: 0" in page.text


# -- members' check-in ------------------------------------------------------------------------


def test_a_member_checks_in_by_phone(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
    event = event_of(db, org, tenants)
    form = client.get(f"/checkin?code={event.checkin_code}")
    assert form.status_code == 200 and f'value="{event.checkin_code}"' in form.text
    typed = f"{event.checkin_code[:3].lower()}-{event.checkin_code[3:].lower()}"
    response = checkin(client, typed, "(312) 555-0142")
    assert response.status_code == 200
    assert "You are checked in" in response.text and "Building meeting" in response.text
    (row,) = rows(db, event)
    assert (row.member_id, row.method, row.recorded_by_id) == (
        maria.id,
        AttendanceMethod.CHECKIN,
        None,
    )
    # Again: a friendly success, no second row.
    response = checkin(client, event.checkin_code, "312 555 0142")
    assert response.status_code == 200 and "You had already checked in" in response.text
    assert len(rows(db, event)) == 1
    audited = db.scalars(select(AuditEvent).where(AuditEvent.action == "event.checked_in")).one()
    assert audited.member_id == maria.id
    assert "5550142" not in str(audited.data) and audited.organization_id == org.id


def test_a_pending_member_checks_in_by_email_and_it_never_reaches_the_logs(
    db: Session, client, secret_ledger
) -> None:
    org = community(db)
    tenants = constituency(db, org)
    email = "maria.lopez.checkin@example.org"
    secret_ledger.add(email)  # the run's log check fails if it is ever logged
    dev = person(db, org, "Dev", "Patel", email=email, within=tenants, status=PersonStatus.PENDING)
    event = event_of(db, org, tenants)
    response = checkin(client, f" {event.checkin_code} ", "  Maria.Lopez.Checkin@EXAMPLE.org ")
    assert response.status_code == 200 and "Building meeting" in response.text
    (row,) = rows(db, event)
    assert (row.member_id, row.method) == (dev.id, AttendanceMethod.CHECKIN)
    assert email not in str([a.data for a in db.scalars(select(AuditEvent))])


def test_a_wrong_code_is_refused_and_writes_nothing(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
    event = event_of(db, org, tenants)
    wrong = "ZZZZZZ" if event.checkin_code != "ZZZZZZ" else "YYYYYY"
    for code in (wrong, "", "ABC", "0O1IL2"):
        response = checkin(client, code, "+13125550142")
        assert response.status_code == 400, code
        assert WRONG_CODE in response.text
    assert rows(db, event) == []


def test_an_expired_code_is_refused_and_writes_nothing(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
    event = event_of(
        db,
        org,
        tenants,
        held_on=datetime.now(UTC).date() - timedelta(days=3),
        closes=datetime.now(UTC) - timedelta(minutes=1),
    )
    response = checkin(client, event.checkin_code, "+13125550142")
    assert response.status_code == 400 and CLOSED in response.text
    assert rows(db, event) == []


def test_unknown_people_get_one_message_that_reveals_nothing(db: Session, client) -> None:
    org = community(db)
    tenants, west = constituency(db, org), constituency(db, org, "Westside")
    elsewhere = community(db)
    person(db, elsewhere, "Ana", "Other", phone="+13125550100", within=constituency(db, elsewhere))
    person(db, org, "Olga", "West", phone="+13125550101", within=west)
    person(
        db, org, "Rex", "Rej", phone="+13125550102", within=tenants, status=PersonStatus.REJECTED
    )
    person(db, org, "Ned", "Nowhere", phone="+13125550103")
    event = event_of(db, org, tenants)
    texts = set()
    for contact in ("+13125550100", "+13125550101", "+13125550102", "+13125550103",
                    "+13125550199", "nobody@example.org"):  # fmt: skip
        response = checkin(client, event.checkin_code, contact)
        assert response.status_code == 400, contact
        assert NOT_ON_LIST in response.text
        texts.add(response.text.split('role="alert"')[1].split("</p>")[0])
    assert len(texts) == 1
    response = checkin(client, event.checkin_code, "not a phone")
    assert response.status_code == 400
    assert "Enter the phone number or email you signed up with." in response.text
    assert rows(db, event) == []


def test_too_many_refused_check_ins_get_429_and_write_nothing(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
    event = event_of(db, org, tenants)
    token = csrf_from(client, "/checkin")
    wrong = "ZZZZZZ" if event.checkin_code != "ZZZZZZ" else "YYYYYY"
    for _ in range(events.CHECKIN_FAILURES_PER_ADDRESS):
        response = client.post(
            "/checkin", data={"csrf_token": token, "code": wrong, "contact": "+13125550142"}
        )
        assert response.status_code == 400
    hits = db.scalar(select(func.count()).select_from(ThrottleHit))
    response = client.post(
        "/checkin",
        data={"csrf_token": token, "code": event.checkin_code, "contact": "+13125550142"},
    )
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert rows(db, event) == []
    assert db.scalar(select(func.count()).select_from(ThrottleHit)) == hits
    # Another address may still check in (the throttle counts per address).
    done = events.attempt_check_in(
        db, client.app.state.ratify.settings, code=event.checkin_code,
        contact="+13125550142", client_address="203.0.113.9",
    )  # fmt: skip
    assert done.member_id == maria.id and not done.already


def test_refused_attempts_on_one_code_are_throttled_from_any_address(db: Session, settings) -> None:
    org = community(db)
    tenants = constituency(db, org)
    person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
    event = event_of(db, org, tenants)
    for n in range(events.CHECKIN_FAILURES_PER_CODE):
        with pytest.raises(events.CheckinRefused):
            events.attempt_check_in(
                db, settings, code=event.checkin_code, contact=f"+1312555{n:04d}",
                client_address=f"198.51.100.{n % 200}",
            )  # fmt: skip
    with pytest.raises(events.TooManyRequests):
        events.attempt_check_in(
            db, settings, code=event.checkin_code, contact="+13125550142",
            client_address="192.0.2.1",
        )  # fmt: skip
    assert rows(db, event) == []


def test_check_in_service_scopes_codes_to_an_organization(db: Session) -> None:
    org, other = community(db), community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
    event = event_of(db, org, tenants)
    now = datetime.now(UTC)
    with pytest.raises(events.CheckinRefused) as refused:
        events.check_in(
            db, other, code=event.checkin_code, contact="+13125550142", now=now, phone_region="US"
        )
    assert refused.value.message == events.WRONG_CODE
    done = events.check_in(
        db, org, code=event.checkin_code, contact="3125550142", now=now, phone_region="US"
    )
    assert (done.event.id, done.member_id, done.already) == (event.id, maria.id, False)
    with pytest.raises(events.CheckinRefused) as refused:
        events.check_in(
            db,
            None,
            code=event.checkin_code,
            contact="+13125550142",
            now=event.checkin_closes_at + timedelta(seconds=1),
            phone_region="US",
        )
    assert refused.value.message == events.CHECKIN_CLOSED


# -- codes ----------------------------------------------------------------------------------


def test_check_in_codes_use_an_unambiguous_alphabet_and_normalize() -> None:
    codes = {events.new_checkin_code() for _ in range(200)}
    assert len(codes) > 190
    for code in codes:
        assert len(code) == 6 and not set(code) & set("0O1IL")
    assert events.normalize_code(" ab c-2 34 ") == "ABC234"


def test_a_colliding_code_is_retried(db: Session, monkeypatch) -> None:
    org = community(db)
    first = event_of(db, org)
    fresh = iter([first.checkin_code, first.checkin_code, "QWERTY"])
    monkeypatch.setattr(events, "new_checkin_code", lambda: next(fresh))
    assert event_of(db, org).checkin_code == "QWERTY"


# -- who may do what ------------------------------------------------------------------------


def test_another_organizations_leader_gets_404_on_event_pages_and_actions(
    db: Session, client
) -> None:
    org, theirs = community(db), community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", within=tenants)
    event = event_of(db, org, tenants)
    events.record_attendance(db, org, event, [maria.id], actor=None)
    (row,) = rows(db, event)
    login(client, make_user(db, theirs, Role.ADMIN).email)
    token = csrf_from(client, f"/o/{theirs.slug}/events")
    for base in (f"/o/{theirs.slug}/events/{event.id}", f"/o/{org.slug}/events/{event.id}"):
        for path in (base, f"{base}/edit"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "Building meeting" not in response.text
        for path, data in (
            (f"{base}/attendance", {"member_id": str(maria.id)}),
            (f"{base}/attendance/{row.id}/remove", {}),
            (f"{base}/edit", {"title": "Hijacked", "held_on": "2026-01-01", "location": "",
                              "closes": ""}),
        ):  # fmt: skip
            response = client.post(path, data={**data, "csrf_token": token})
            assert response.status_code == 404, path
    assert client.get(f"/o/{org.slug}/events").status_code == 404
    db.refresh(event)
    assert event.title == "Building meeting"
    assert [r.id for r in rows(db, event)] == [row.id]
    with pytest.raises(NotFound):
        events.get_event(db, theirs, event.id)
    with pytest.raises(NotFound):
        events.record_attendance(db, theirs, event, [maria.id], actor=None)


def test_an_observer_cannot_record_attendance(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    maria = person(db, org, "Maria", "Lopez", within=tenants)
    event = event_of(db, org, tenants)
    make_user(db, org, Role.ADMIN)
    login(client, make_user(db, org, Role.OBSERVER).email)
    token = csrf_from(client, f"/o/{org.slug}/")
    response = client.post(
        f"/o/{org.slug}/events/{event.id}/attendance",
        data={"csrf_token": token, "member_id": str(maria.id)},
    )
    assert response.status_code == 403
    assert client.get(f"/o/{org.slug}/events/{event.id}").status_code == 403
    assert rows(db, event) == []


def test_a_union_has_no_events(db: Session, client) -> None:
    union = make_org(db, kind=OrgKind.UNION)
    login(client, make_user(db, union, Role.ADMIN).email)
    assert client.get(f"/o/{union.slug}/events").status_code == 404
    with pytest.raises(NotFound):
        events.create_event(
            db,
            union,
            actor=None,
            fields=events.EventFields(
                kind=EventKind.ACTION, title="x", held_on=datetime.now(UTC).date()
            ),
        )


def test_record_attendance_refuses_people_not_on_the_list(db: Session) -> None:
    org = community(db)
    east, west = constituency(db, org, "East"), constituency(db, org, "West")
    maria = person(db, org, "Maria", "Lopez", within=east)
    olga = person(db, org, "Olga", "West", within=west)
    event = event_of(db, org, east)
    with pytest.raises(BadRequest):
        events.record_attendance(db, org, event, [maria.id, olga.id], actor=None)
    assert events.record_attendance(db, org, event, [maria.id, maria.id], actor=None) == 1
    assert events.record_attendance(db, org, event, [maria.id], actor=None) == 0


# -- pages without JavaScript ---------------------------------------------------------------


def test_the_check_in_and_event_pages_are_plain_forms(db: Session, client) -> None:
    org = community(db)
    tenants = constituency(db, org)
    person(db, org, "Maria", "Lopez", within=tenants)
    event = event_of(db, org, tenants)
    checkin_page = client.get("/checkin")
    assert checkin_page.status_code == 200
    assert '<form method="post" action="/checkin"' in checkin_page.text
    assert 'name="code"' in checkin_page.text and 'name="contact"' in checkin_page.text
    login(client, make_user(db, org, Role.STAFF).email)
    pages = [
        client.get(f"/o/{org.slug}/events"),
        client.get(f"/o/{org.slug}/events/new"),
        client.get(f"/o/{org.slug}/events/{event.id}"),
        client.get(f"/o/{org.slug}/events/{event.id}/edit"),
        checkin_page,
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script" not in page.text
    detail = pages[2].text
    assert f'<form method="get" action="/o/{org.slug}/events/{event.id}"' in detail
    assert f'<form method="post" action="/o/{org.slug}/events/{event.id}/attendance"' in detail
    assert 'type="checkbox" name="member_id"' in detail


# -- at the same moment ------------------------------------------------------------------------

ON_POSTGRES = os.environ.get("RATIFY_TEST_DB", "sqlite") == "postgresql"


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent writers")
@pytest.mark.postgres_only
def test_a_leader_and_the_person_recording_at_once_leave_one_row(
    live_sessions: sessionmaker[Session],
) -> None:
    with live_sessions.begin() as db:
        org = community(db)
        tenants = constituency(db, org)
        maria = person(db, org, "Maria", "Lopez", phone="+13125550142", within=tenants)
        event = event_of(db, org, tenants)
        org_id, event_id, maria_id, code = org.id, event.id, maria.id, event.checkin_code

    def attempt(n: int) -> bool:
        """Whether this attempt wrote the row."""
        with live_sessions.begin() as db:
            if n % 2:
                done = events.check_in(
                    db, None, code=code, contact="+13125550142", now=datetime.now(UTC),
                    phone_region="US",
                )  # fmt: skip
                return not done.already
            found = db.get(Organization, org_id)
            assert found is not None
            the_event = events.get_event(db, found, event_id)
            return events.record_attendance(db, found, the_event, [maria_id], actor=None) == 1

    results = run_together(attempt, 8)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results.count(True) == 1
    with live_sessions() as db:
        assert db.scalars(select(Attendance.member_id)).all() == [maria_id]
