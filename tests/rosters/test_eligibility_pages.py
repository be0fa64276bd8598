from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.rosters import services as rosters
from ratify.rosters.models import EmploymentStatus, MembershipStatus
from ratify.rosters.services import MemberFields, UnitFields
from tests.factories import make_org, make_user
from tests.helpers import login


def _setup(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_org(db)
    rn = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    members = []
    for n, membership in enumerate([MembershipStatus.MEMBER, MembershipStatus.FEE_PAYER]):
        members.append(
            rosters.add_member(
                db,
                org,
                MemberFields(f"{n + 1}", f"Person{n}", "Test", join_date=date(2026, 11, 1)),
                phone_region="US",
                effective=date(2025, 1, 1),
                membership=membership,
                employment=EmploymentStatus.ACTIVE,
                units=[rn],
            )
        )
    login(client, make_user(db, org, role).email)
    return org, rn


def test_preview_counts_reasons_and_exports_an_audited_csv(db: Session, client) -> None:
    org, rn = _setup(db, client)
    assert "Who may vote" in client.get(f"/o/{org.slug}/eligibility").text
    query = f"run=1&cutoff=2026-11-15&unit={rn.id}&membership=member&employment=active"
    page = client.get(f"/o/{org.slug}/eligibility?{query}")
    assert page.status_code == 200
    assert "Eligible: 1" in page.text and "Fee payer: 1" in page.text
    assert "1 eligible, 1 not" in page.text
    csv_response = client.get(f"/o/{org.slug}/eligibility.csv?{query}")
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = csv_response.text.splitlines()
    assert lines[0] == "member_number,name,units,eligible,reasons,note"
    assert '2,"Test, Person1",RN,no,Fee payer,' in lines
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.exported")).one()
    assert event.data["rows"] == 2 and event.data["cutoff"] == "2026-11-15"


def test_joined_too_late_and_bad_inputs(db: Session, client) -> None:
    org, rn = _setup(db, client)
    page = client.get(
        f"/o/{org.slug}/eligibility?run=1&cutoff=2026-11-15&unit={rn.id}&membership=member&membership=fee_payer&employment=active&joined_days=30"
    )
    assert "Eligible: 0" in page.text and "Joined too late: 2" in page.text
    bad = client.get(f"/o/{org.slug}/eligibility?run=1&cutoff=someday&joined_days=-4")
    assert bad.status_code == 400
    assert (
        "Enter the date as YYYY-MM-DD." in bad.text
        and "Choose at least one bargaining unit" in bad.text
    )
    assert client.get(f"/o/{org.slug}/eligibility.csv?run=1").status_code == 400


def test_only_staff_preview_eligibility(db: Session, client) -> None:
    org, rn = _setup(db, client, Role.OBSERVER)
    assert client.get(f"/o/{org.slug}/eligibility").status_code == 403
    assert client.get(f"/o/{org.slug}/eligibility.csv?run=1&unit={rn.id}").status_code == 403


def test_members_included_and_excluded_by_hand_with_a_reason(db: Session, client) -> None:
    from urllib.parse import urlencode

    org, rn = _setup(db, client)
    other = make_org(db)  # another organization's member number is unknown here
    rosters.add_member(
        db, other, MemberFields("77", "Out", "Sider"), phone_region="US",
        effective=date(2025, 1, 1), membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE, units=[],
    )  # fmt: skip
    base = {"run": "1", "cutoff": "2026-11-15", "unit": str(rn.id), "membership": "member",
            "employment": "active"}  # fmt: skip
    query = urlencode({**base, "includes": "2: fee payer status is a payroll error",
                       "excludes": "1: supervisor since October"})  # fmt: skip
    page = client.get(f"/o/{org.slug}/eligibility?{query}")
    assert page.status_code == 200
    assert "Eligible: 1" in page.text and "Excluded by hand: 1" in page.text
    assert "(supervisor since October)" in page.text
    lines = client.get(f"/o/{org.slug}/eligibility.csv?{query}").text.splitlines()
    assert '1,"Test, Person0",RN,no,Excluded by hand,supervisor since October' in lines
    assert '2,"Test, Person1",RN,yes,,fee payer status is a payroll error' in lines
    bad = client.get(f"/o/{org.slug}/eligibility?{urlencode({**base, 'excludes': '1 no colon'})}")
    assert bad.status_code == 400
    assert "Line 1: write the member number, a colon, then the reason." in bad.text
    unknown = client.get(f"/o/{org.slug}/eligibility?{urlencode({**base, 'includes': '77: x'})}")
    assert unknown.status_code == 400
    assert "No member has these member numbers: 77" in unknown.text
