"""Importing a roster through the pages: upload, map, preview, apply."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.rosters import services as rosters
from ratify.rosters.models import ColumnMapping, Member, RosterImport, RosterUpload
from ratify.rosters.services import UnitFields
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, form_from, login

ROSTER = (
    b"Emp ID,Surname,Given Name,E-mail\n1001,Lovelace,Ada,ada@example.org\n1002,Hopper,Grace,\n"
)


def _setup(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_org(db)
    unit = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    login(client, make_user(db, org, role).email)
    return org, unit


def _upload(client, org, unit, data: bytes = ROSTER, **extra: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client, f"/o/{org.slug}/imports")
    form = {
        "csrf_token": token,
        "scope": "unit",
        "unit": str(unit.id),
        "effective": "2026-11-01",
        **extra,
    }
    return client.post(
        f"/o/{org.slug}/imports", data=form, files={"file": ("payroll.csv", data, "text/csv")}
    )


def test_upload_map_preview_apply(db: Session, client) -> None:
    org, unit = _setup(db, client)
    response = _upload(client, org, unit, source="payroll")
    assert response.status_code == 303
    map_url = response.headers["location"]
    upload_id = re.search(r"/imports/([0-9a-f-]+)/map", map_url).group(1)  # type: ignore[union-attr]
    page = client.get(map_url).text
    assert "<option selected>Emp ID</option>" in page  # guessed from the header
    token = csrf_from(client, map_url)
    response = client.post(
        map_url,
        data={
            "csrf_token": token,
            "map_member_number": "Emp ID",
            "map_last_name": "Surname",
            "map_first_name": "Given Name",
            "map_email": "E-mail",
        },
    )
    assert response.status_code == 303
    preview = client.get(f"/o/{org.slug}/imports/{upload_id}").text
    assert "New members: 2" in preview and "Lovelace, Ada" in preview
    assert db.execute(select(func.count()).select_from(Member)).scalar_one() == 0  # nothing yet
    form = form_from(client, f"/o/{org.slug}/imports/{upload_id}")
    response = client.post(f"/o/{org.slug}/imports/{upload_id}/apply", data=form)
    assert response.status_code == 303
    assert db.execute(select(func.count()).select_from(Member)).scalar_one() == 2
    history = client.get(f"/o/{org.slug}/imports?applied=1").text
    assert "The roster was imported." in history and "payroll.csv" in history
    # A second apply of the same preview is refused, and writes nothing.
    again = client.post(f"/o/{org.slug}/imports/{upload_id}/apply", data=form)
    assert again.status_code == 409 and "already imported" in again.text
    assert db.execute(select(func.count()).select_from(RosterImport)).scalar_one() == 1
    # The mapping is remembered for the source.
    saved = db.scalars(select(ColumnMapping)).one()
    assert saved.source == "payroll" and saved.mapping["member_number"] == "Emp ID"


def test_row_errors_block_apply_and_download_neutralized(db: Session, client) -> None:
    org, unit = _setup(db, client)
    data = b'Member ID,Last Name,Email\n1,Ok,\n2,=HYPERLINK("x"),bad-email\n'
    location = _upload(client, org, unit, data).headers["location"]
    upload_id = location.split("/")[-2]
    preview = client.get(f"/o/{org.slug}/imports/{upload_id}")
    assert "Rows with errors: 1" in preview.text
    assert "Apply these changes" not in preview.text
    csv_text = client.get(f"/o/{org.slug}/imports/{upload_id}/errors.csv")
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert "3,Last Name,A cell may not start with a formula." in csv_text.text
    token = csrf_from(client, f"/o/{org.slug}/imports")
    forced = client.post(f"/o/{org.slug}/imports/{upload_id}/apply", data={"csrf_token": token})
    assert forced.status_code == 409
    assert db.execute(select(func.count()).select_from(Member)).scalar_one() == 0


def test_neutralize_makes_formulas_plain_text() -> None:
    from ratify.rosters.imports import neutralize

    assert neutralize("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert neutralize("@SUM(A1)") == "'@SUM(A1)"
    assert neutralize("Plain") == "Plain"


def test_bad_uploads_get_messages(db: Session, client) -> None:
    org, unit = _setup(db, client)
    response = _upload(client, org, unit, b"")
    assert response.status_code == 400 and "The file is empty." in response.text
    token = csrf_from(client, f"/o/{org.slug}/imports")
    response = client.post(
        f"/o/{org.slug}/imports",
        data={"csrf_token": token, "scope": "unit", "effective": "someday"},
    )
    assert response.status_code == 400
    assert "Choose the roster file to upload." in response.text
    assert "Choose the bargaining unit this file is for." in response.text
    assert "Enter the date as YYYY-MM-DD." in response.text
    assert db.execute(select(func.count()).select_from(RosterUpload)).scalar_one() == 0


def test_uploads_are_private_to_their_organization_and_role(
    db: Session, client, app, secret_ledger
) -> None:
    from tests.conftest import make_client

    org, unit = _setup(db, client)
    upload_id = _upload(client, org, unit).headers["location"].split("/")[-2]
    other = make_org(db)
    with make_client(app, secret_ledger, follow_redirects=False) as outsider:
        login(outsider, make_user(db, other, Role.ADMIN).email)
        assert outsider.get(f"/o/{other.slug}/imports/{upload_id}").status_code == 404
        assert outsider.get(f"/o/{org.slug}/imports/{upload_id}").status_code == 404
    with make_client(app, secret_ledger, follow_redirects=False) as committee:
        login(committee, make_user(db, org, Role.COMMITTEE).email)
        assert committee.get(f"/o/{org.slug}/imports/{upload_id}").status_code == 403


def test_the_member_page_lists_the_imports_that_touched_them(db: Session, client) -> None:
    from datetime import date

    from ratify.rosters import imports
    from ratify.rosters.models import ImportScope

    org, unit = _setup(db, client)

    def run(name: str, data: bytes, day: date) -> None:
        roster = imports.read_roster(name, data)
        result = imports.preview(
            db, org, roster, mapping=imports.guess_mapping(roster.headers), scope=ImportScope.UNIT,
            unit=unit, effective=day, phone_region="US",
        )  # fmt: skip
        imports.apply(db, org, result, actor_label="t", phone_region="US", confirm_leaving=True)

    run("september.csv", b"Member ID,Last Name\n1,Lee\n2,Kim\n", date(2026, 9, 1))
    run("october.csv", b"Member ID,Last Name\n1,Lee-Park\n", date(2026, 10, 1))
    run("november.csv", b"Member ID,Last Name\r\n1,Lee-Park\r\n", date(2026, 11, 1))  # no change
    lee = db.scalars(select(Member).where(Member.member_number == "1")).one()
    kim = db.scalars(select(Member).where(Member.member_number == "2")).one()
    lee_page = client.get(f"/o/{org.slug}/members/{lee.id}").text
    assert "october.csv" in lee_page and "changed" in lee_page
    assert "september.csv" in lee_page and "added" in lee_page
    assert "november.csv" not in lee_page
    kim_page = client.get(f"/o/{org.slug}/members/{kim.id}").text
    assert "october.csv" in kim_page and "left a unit" in kim_page


def test_an_apply_from_a_page_older_than_the_columns_is_refused(db: Session, client) -> None:
    """Two tabs: one shows a preview, the other changes the columns. Applying from the first
    would apply columns nobody previewed: refused, nothing written."""
    org, unit = _setup(db, client)
    map_url = _upload(client, org, unit).headers["location"]
    preview_url = map_url.removesuffix("/map")
    columns = {"map_member_number": "Emp ID", "map_last_name": "Surname",
               "map_first_name": "Given Name"}  # fmt: skip
    client.post(map_url, data={**columns, "csrf_token": csrf_from(client, map_url)})
    first_tab = form_from(client, preview_url)
    swapped = {**columns, "map_last_name": "Given Name", "map_first_name": "Surname"}
    client.post(map_url, data={**swapped, "csrf_token": csrf_from(client, map_url)})
    stale = client.post(f"{preview_url}/apply", data=first_tab)
    assert stale.status_code == 409 and "This preview is out of date" in stale.text
    assert db.execute(select(func.count()).select_from(Member)).scalar_one() == 0
    fresh = client.post(f"{preview_url}/apply", data=form_from(client, preview_url))
    assert fresh.status_code == 303
    assert db.scalars(select(Member.last_name).order_by(Member.member_number)).all() == [
        "Ada",
        "Grace",
    ]


def test_an_apply_after_the_roster_changed_is_refused(db: Session, client) -> None:
    """The page showed nobody leaving; meanwhile another member joined the unit (an API
    sync, say). Applying would end their assignment, which nobody saw: refused."""
    from datetime import date

    from ratify.rosters.models import EmploymentStatus, MembershipStatus
    from ratify.rosters.services import MemberFields

    org, unit = _setup(db, client)
    map_url = _upload(client, org, unit).headers["location"]
    preview_url = map_url.removesuffix("/map")
    columns = {"map_member_number": "Emp ID", "map_last_name": "Surname"}
    client.post(map_url, data={**columns, "csrf_token": csrf_from(client, map_url)})
    shown = form_from(client, preview_url)
    assert "Leaving their unit: 0" in client.get(preview_url).text
    rosters.add_member(
        db, org, MemberFields("1041", "Late", "Joiner"), phone_region="US",
        effective=date(2026, 10, 1), membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE, units=[unit],
    )  # fmt: skip
    stale = client.post(f"{preview_url}/apply", data={**shown, "confirm_leaving": "yes"})
    assert stale.status_code == 409 and "This preview is out of date" in stale.text
    assert db.execute(select(func.count()).select_from(RosterImport)).scalar_one() == 0
