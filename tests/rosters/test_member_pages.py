"""Member pages: contact details for staff, names for the committee, counts for observers."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.orgs.models import OrgKind
from ratify.rosters import services as rosters
from ratify.rosters.models import EmploymentStatus, MembershipStatus, StatusKind
from ratify.rosters.services import MemberFields, UnitFields
from tests.factories import make_org, make_user
from tests.helpers import login


def _roster(db: Session):  # type: ignore[no-untyped-def]
    org = make_org(db)
    rn = rosters.create_unit(
        db, org, actor=None, fields=UnitFields("RN", "Registered Nurses", "", "")
    )
    ada = rosters.add_member(
        db,
        org,
        MemberFields(
            "1001",
            "Ada",
            "Lovelace",
            email="ada@example.org",
            phone="+14155550132",
            postal_code="94110",
        ),
        phone_region="US",
        effective=date(2020, 1, 1),
        membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE,
        units=[rn],
    )
    rosters.set_status(db, ada, StatusKind.EMPLOYMENT, "on_leave", date(2024, 5, 1))
    return org, ada


@pytest.mark.parametrize(
    ("role", "list_status", "sees_contacts"),
    [
        (Role.ADMIN, 200, True),
        (Role.STAFF, 200, True),
        (Role.COMMITTEE, 200, False),
        (Role.OBSERVER, 403, False),
    ],
)
def test_privacy_per_role(
    db: Session, client, role: Role, list_status: int, sees_contacts: bool
) -> None:
    org, ada = _roster(db)
    login(client, make_user(db, org, role).email)
    listing = client.get(f"/o/{org.slug}/members")
    assert listing.status_code == list_status
    detail = client.get(f"/o/{org.slug}/members/{ada.id}")
    assert detail.status_code == list_status
    if list_status == 200:
        assert "Lovelace" in listing.text and "Lovelace" in detail.text
        for secret in ("ada@example.org", "+14155550132", "94110"):
            assert (secret in listing.text + detail.text) is sees_contacts, secret
        assert (
            "On leave" in detail.text and "Registered Nurses" not in detail.text
        )  # code shown: RN
    home = client.get(f"/o/{org.slug}/").text
    assert "RN</strong> · Registered Nurses: 1" in home  # counts for everyone
    assert "Lovelace" not in home


def test_member_history_page_shows_dated_periods(db: Session, client) -> None:
    org, ada = _roster(db)
    login(client, make_user(db, org, Role.STAFF).email)
    page = client.get(f"/o/{org.slug}/members/{ada.id}").text
    assert "On leave" in page and "Active" in page and "Member" in page
    assert "May 1, 2024" in page and "Jan 1, 2020" in page


def test_search_and_paging_on_the_page(db: Session, client) -> None:
    org, _ = _roster(db)
    for n in range(60):
        rosters.add_member(
            db,
            org,
            MemberFields(f"2{n:03d}", f"P{n:02d}", "Garcia"),
            phone_region="US",
            effective=date(2024, 1, 1),
            membership=MembershipStatus.MEMBER,
            employment=EmploymentStatus.ACTIVE,
            units=[],
        )
    login(client, make_user(db, org, Role.STAFF).email)
    first = client.get(f"/o/{org.slug}/members?q=garc")
    assert "60 found." in first.text and "Page 1 of 2" in first.text and "P00" in first.text
    second = client.get(f"/o/{org.slug}/members?q=garc&page=2")
    assert "P59" in second.text and "P00" not in second.text
    assert "1 found." in client.get(f"/o/{org.slug}/members?q=ada%40example.org").text
    for odd in ("page=abc", "page=-3", "page=99999999999999999999", "q=%25%25"):
        assert client.get(f"/o/{org.slug}/members?{odd}").status_code == 200, odd


def test_another_organizations_member_is_404(db: Session, client) -> None:
    org, _ = _roster(db)
    _, theirs = _roster(db)
    login(client, make_user(db, org, Role.ADMIN).email)
    assert client.get(f"/o/{org.slug}/members/{theirs.id}").status_code == 404
    assert client.get(f"/o/{org.slug}/members/not-a-uuid").status_code == 404


def test_community_organizations_have_no_member_roster_pages(db: Session, client) -> None:
    org = make_org(db, kind=OrgKind.COMMUNITY)
    login(client, make_user(db, org, Role.ADMIN).email)
    assert client.get(f"/o/{org.slug}/members").status_code == 404


def test_dues_record_and_a_correction_on_the_member_page(db: Session, client) -> None:
    from ratify.audit.models import AuditEvent
    from ratify.rosters.models import DuesPayment
    from tests.helpers import csrf_from

    org, ada = _roster(db)
    login(client, make_user(db, org, Role.STAFF).email)
    page = client.get(f"/o/{org.slug}/members/{ada.id}").text
    assert "nothing recorded" in page and "Correct the dues record" in page
    token = csrf_from(client, f"/o/{org.slug}/members/{ada.id}")
    bad = client.post(
        f"/o/{org.slug}/members/{ada.id}/dues",
        data={
            "csrf_token": token,
            "period": "soon",
            "amount": "x",
            "received": "2026-11-01",
            "reason": "",
        },
    )
    assert bad.status_code == 400
    assert "This is not a month (use 2026-10)." in bad.text and "Say why" in bad.text
    assert db.scalars(select(DuesPayment)).all() == []
    good = client.post(
        f"/o/{org.slug}/members/{ada.id}/dues",
        data={
            "csrf_token": token,
            "period": "2026-10",
            "amount": "45.00",
            "received": "2026-11-01",
            "reason": "Paid in cash",
        },
    )
    assert good.status_code == 303
    page = client.get(f"/o/{org.slug}/members/{ada.id}").text
    assert "October 2026" in page and "correction: Paid in cash" in page
    assert db.scalars(select(AuditEvent.action).where(AuditEvent.action == "dues.corrected")).all()


def test_the_committee_sees_dues_but_cannot_correct_them(db: Session, client) -> None:
    from tests.helpers import csrf_from

    org, ada = _roster(db)
    login(client, make_user(db, org, Role.COMMITTEE).email)
    page = client.get(f"/o/{org.slug}/members/{ada.id}").text
    assert "Paid through" in page and "Correct the dues record" not in page
    token = csrf_from(client, f"/o/{org.slug}/members/{ada.id}")
    response = client.post(
        f"/o/{org.slug}/members/{ada.id}/dues",
        data={
            "csrf_token": token,
            "period": "2026-10",
            "amount": "45",
            "received": "2026-11-01",
            "reason": "x",
        },
    )
    assert response.status_code == 403
