"""The people of a constituency: the list with its status filter, leaders adding someone
(approved at once) and marking someone as having left, and importing a file of people all
or nothing."""

from __future__ import annotations

import io
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.community import people
from ratify.community.models import ConstituencyMember, PersonSource, PersonStatus
from ratify.orgs.services import org_today
from ratify.rosters.models import Member
from tests.community.support import make_community, make_constituency, make_leader
from tests.helpers import csrf_from, login


def _setup(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_community(db)
    c = make_constituency(db, org)
    leader = make_leader(db, org, role)
    login(client, leader.email)
    return org, c, leader


def _base(org, c) -> str:  # type: ignore[no-untyped-def]
    return f"/o/{org.slug}/constituencies/{c.id}"


def _counts(db: Session) -> tuple[int, int]:
    return (
        db.scalar(select(func.count()).select_from(Member)) or 0,
        db.scalar(select(func.count()).select_from(ConstituencyMember)) or 0,
    )


def _places(db: Session, c) -> list[tuple[ConstituencyMember, Member]]:  # type: ignore[no-untyped-def]
    db.expire_all()
    rows = db.execute(
        select(ConstituencyMember, Member)
        .join(Member, Member.id == ConstituencyMember.member_id)
        .where(ConstituencyMember.constituency_id == c.id)
        .order_by(Member.sort_name)
    ).all()
    return [(p, m) for p, m in rows]


def test_a_leader_adds_someone_approved_at_once(db: Session, client) -> None:
    org, c, leader = _setup(db, client)
    form = csrf_from(client, f"{_base(org, c)}/people/new")
    response = client.post(
        f"{_base(org, c)}/people",
        data={
            "csrf_token": form,
            "first_name": "Fannie Lou",
            "last_name": "Hamer",
            "phone": "",
            "email": "",
            "area": "3 Oak Ave",
            "relationship": "worker",
            "preferred_language": "en",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("/people?added=1")
    ((person, member),) = _places(db, c)
    assert person.status == PersonStatus.APPROVED and person.source == PersonSource.LEADER
    assert person.approved_on == person.joined_on == org_today(org)
    assert person.decided_by_id == leader.id and person.consented_at is None
    assert (member.first_name, member.last_name) == ("Fannie Lou", "Hamer")
    assert db.scalar(select(func.count()).where(AuditEvent.action == "constituency.person_added"))
    page = client.get(f"{_base(org, c)}/people")
    assert "Hamer, Fannie Lou" in page.text and "added by a leader" in page.text


def test_adding_with_bad_input_is_400_and_writes_nothing(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    token = csrf_from(client, f"{_base(org, c)}/people/new")
    before = _counts(db)
    response = client.post(
        f"{_base(org, c)}/people",
        data={"csrf_token": token, "first_name": "Ann", "phone": "12", "area": "Mars"},
    )
    assert response.status_code == 400
    assert "This is not a phone number." in response.text
    assert "Choose one of the areas listed." in response.text
    assert 'value="Ann"' in response.text
    assert _counts(db) == before


def test_the_list_filters_by_status(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    people.add_person(db, org, c, people.PersonFields("Approved", "Person"), actor=None)
    people.sign_up(
        db, org, c,
        people.PersonFields("Pending", "Person", email="p@example.org", area="12 Elm St",
                            relationship="tenant", consent=True),
        today=date(2026, 12, 1),
    )  # fmt: skip
    everyone = client.get(f"{_base(org, c)}/people").text
    assert "Person, Approved" in everyone and "Person, Pending" in everyone
    assert "2 found." in everyone
    pending = client.get(f"{_base(org, c)}/people?status=pending").text
    assert "Person, Pending" in pending and "Person, Approved" not in pending
    assert "1 found." in pending
    # An unknown status shows everyone rather than failing.
    assert "2 found." in client.get(f"{_base(org, c)}/people?status=bogus&page=x").text


def test_removing_someone_needs_a_reason_and_keeps_them_listed_as_left(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    person = people.add_person(
        db, org, c, people.PersonFields("Leaving", "Soon"), actor=None, today=date(2026, 1, 1)
    )
    url = f"{_base(org, c)}/people/{person.id}/remove"
    token = csrf_from(client, f"{_base(org, c)}/people")
    response = client.post(url, data={"csrf_token": token, "reason": ""})
    assert response.status_code == 400 and "Say why." in response.text
    db.refresh(person)
    assert person.status == PersonStatus.APPROVED
    response = client.post(url, data={"csrf_token": token, "reason": "Moved away"})
    assert response.status_code == 303
    db.refresh(person)
    assert person.status == PersonStatus.REMOVED
    assert person.left_on == org_today(org) and person.reason == "Moved away"
    assert client.post(url, data={"csrf_token": token, "reason": "again"}).status_code == 409
    page = client.get(f"{_base(org, c)}/people?status=removed").text
    assert "Soon, Leaving" in page and "Moved away" in page


# -- import -------------------------------------------------------------------------------------

GOOD_CSV = (
    "First Name;Surname;E-mail;Mobile;Building;Relationship;Language;Joined\n"
    "Ella;Baker;ella@example.org;(415) 555-0101;12 Elm St;tenant;es;03/15/2025\n"
    "Bayard;Rustin;;415 555 0102;3 oak ave;Worker;;\n"
).encode("cp1252")


def _import(client, org, c, data: bytes, name: str = "people.csv"):  # type: ignore[no-untyped-def]
    token = csrf_from(client, f"{_base(org, c)}/people/import")
    return client.post(
        f"{_base(org, c)}/people/import",
        data={"csrf_token": token},
        files={"file": (name, data, "text/csv")},
    )


def test_import_happy_path(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    response = _import(client, org, c, GOOD_CSV)
    assert response.status_code == 303, response.text
    assert response.headers["location"].endswith("/people?imported=2")
    rows = {m.last_name: (p, m) for p, m in _places(db, c)}
    ella, ella_m = rows["Baker"]
    assert ella.status == PersonStatus.APPROVED and ella.source == PersonSource.IMPORT
    assert ella.joined_on == ella.approved_on == date(2025, 3, 15)
    assert (ella_m.email, ella_m.phone, ella_m.preferred_language) == (
        "ella@example.org", "+14155550101", "es",
    )  # fmt: skip
    bayard, bayard_m = rows["Rustin"]
    assert (bayard.area, bayard.relationship) == ("3 Oak Ave", "worker")  # leaders' spelling
    assert bayard.joined_on == org_today(org)
    assert bayard_m.member_number != ella_m.member_number
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "constituency.people_imported")
    ).one()
    assert event.data["rows"] == 2 and "ella" not in str(event.data)
    assert "2 people were imported." in client.get(response.headers["location"]).text


def test_an_import_with_a_bad_row_writes_nothing_and_lists_every_problem(
    db: Session, client
) -> None:
    org, c, _ = _setup(db, client)
    data = (
        GOOD_CSV.decode("cp1252")
        + "Medgar;Evers;not-an-email;12;Mars;tenant;xx;someday\n"
        + "=HYPERLINK(1);Evil;;;;;;\n"
        + ";;;;;;;2025-01-01\n"
    ).encode()
    before = _counts(db)
    response = _import(client, org, c, data)
    assert response.status_code == 400
    text = response.text
    assert "Nothing was imported." in text
    for row, column, problem in (
        (4, "E-mail", "This is not an email address."),
        (4, "Mobile", "This is not a phone number."),
        (4, "Building", "Choose one of the areas listed."),
        (4, "Language", "Choose one of the languages listed."),
        (4, "Joined", "This is not a date."),
        (5, "First Name", "A cell may not start with a formula."),
        (6, "First Name", "Enter a name."),
    ):
        assert f"<tr><td>{row}</td><td>{column}</td><td>{problem}</td></tr>" in text, (row, column)
    assert _counts(db) == before


def test_an_import_refuses_unreadable_or_nameless_files(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    before = _counts(db)
    response = _import(client, org, c, b"Email,Phone\nx@example.org,4155550100\n")
    assert response.status_code == 400 and "First name" in response.text
    assert _import(client, org, c, b"").status_code == 400
    assert _import(client, org, c, b"\x00\x01binary").status_code == 400
    token = csrf_from(client, f"{_base(org, c)}/people/import")
    response = client.post(f"{_base(org, c)}/people/import", data={"csrf_token": token})
    assert response.status_code == 400 and "Choose the file to import." in response.text
    assert _counts(db) == before


def test_an_import_reads_excel_files_as_roster_imports_do(db: Session, client) -> None:
    org, c, _ = _setup(db, client)
    response = _import(client, org, c, _xlsx([["First name", "Last name", "Phone"],
                                              ["Dolores", "Huerta", "4155550103"]]),
                       name="people.xlsx")  # fmt: skip
    assert response.status_code == 303, response.text
    ((person, member),) = _places(db, c)
    assert (member.first_name, member.phone) == ("Dolores", "+14155550103")
    assert person.source == PersonSource.IMPORT


def _xlsx(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_another_organizations_import_page_is_404(db: Session, client) -> None:
    theirs = make_community(db)
    c = make_constituency(db, theirs)
    org, _, _ = _setup(db, client)
    token = csrf_from(client, "/account")
    before = _counts(db)
    for base in (_base(theirs, c), _base(org, c)):
        response = client.post(
            f"{base}/people/import",
            data={"csrf_token": token},
            files={"file": ("people.csv", GOOD_CSV, "text/csv")},
        )
        assert response.status_code == 404
    assert _counts(db) == before
