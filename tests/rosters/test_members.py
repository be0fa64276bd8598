"""Members with dated history: who was where, with which status, on any past date."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from ratify.errors import BadRequest, NotFound
from ratify.rosters import queries
from ratify.rosters import services as rosters
from ratify.rosters.models import EmploymentStatus, MembershipStatus, StatusKind
from ratify.rosters.services import MemberFields, UnitFields
from tests.factories import make_org

JAN, MAR, JUN = date(2026, 1, 1), date(2026, 3, 1), date(2026, 6, 1)


def _unit(db: Session, org, code: str):  # type: ignore[no-untyped-def]
    return rosters.create_unit(db, org, actor=None, fields=UnitFields(code, f"Unit {code}", "", ""))


def _member(
    db: Session, org, number: str, units, *, first: str = "Ada", last: str = "Lovelace", **extra
):  # type: ignore[no-untyped-def]
    return rosters.add_member(
        db,
        org,
        MemberFields(member_number=number, first_name=first, last_name=last, **extra),
        phone_region="US",
        effective=JAN,
        membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE,
        units=units,
    )


def test_status_and_units_as_of_any_date(db: Session) -> None:
    org = make_org(db)
    rn, tech = _unit(db, org, "RN"), _unit(db, org, "TECH")
    ada = _member(db, org, "1001", [rn])
    rosters.set_status(db, ada, StatusKind.MEMBERSHIP, "fee_payer", MAR)
    rosters.leave_unit(db, ada, rn, JUN)
    rosters.assign_unit(db, ada, tech, JUN)
    assert queries.status_on(db, ada, StatusKind.MEMBERSHIP, date(2025, 12, 31)) is None
    assert queries.status_on(db, ada, StatusKind.MEMBERSHIP, JAN) == "member"
    assert queries.status_on(db, ada, StatusKind.MEMBERSHIP, date(2026, 2, 28)) == "member"
    assert queries.status_on(db, ada, StatusKind.MEMBERSHIP, MAR) == "fee_payer"
    assert queries.status_on(db, ada, StatusKind.EMPLOYMENT, JUN) == "active"
    assert [u.code for u in queries.units_on(db, ada, date(2026, 5, 31))] == ["RN"]
    assert [u.code for u in queries.units_on(db, ada, JUN)] == ["TECH"]


def test_who_was_a_member_of_a_unit_on_a_past_date(db: Session) -> None:
    org = make_org(db)
    rn = _unit(db, org, "RN")
    ada = _member(db, org, "1001", [rn], first="Ada", last="Lovelace")
    grace = _member(db, org, "1002", [rn], first="Grace", last="Hopper")
    _member(db, org, "1003", [], first="Alan", last="Turing")
    rosters.set_status(db, grace, StatusKind.MEMBERSHIP, "non_member", MAR)
    rosters.leave_unit(db, ada, rn, JUN)

    def numbers(on: date, membership: set[str] | None = None) -> list[str]:
        return [m.member_number for m in db.scalars(queries.members_in_unit_on(rn, on, membership))]

    assert numbers(date(2026, 2, 1)) == ["1002", "1001"]  # by name: Hopper, Lovelace
    assert numbers(date(2026, 2, 1), {"member"}) == ["1002", "1001"]
    assert numbers(MAR, {"member"}) == ["1001"]
    assert numbers(JUN) == ["1002"]
    assert numbers(JUN, {"member"}) == []
    assert numbers(date(2025, 12, 31)) == []
    assert [(u.code, n) for u, n in queries.unit_counts_on(db, org, MAR)] == [("RN", 2)]


def test_history_is_kept_not_overwritten(db: Session) -> None:
    org = make_org(db)
    rn = _unit(db, org, "RN")
    ada = _member(db, org, "1001", [rn])
    assert rosters.set_status(db, ada, StatusKind.EMPLOYMENT, "active", MAR) is False  # no change
    rosters.set_status(db, ada, StatusKind.EMPLOYMENT, "on_leave", MAR)
    rosters.set_status(db, ada, StatusKind.EMPLOYMENT, "active", JUN)
    rows = [(r.what, r.value, r.start_date, r.end_date) for r in queries.member_history(db, ada)]
    assert ("employment", "active", JUN, None) in rows
    assert ("employment", "on_leave", MAR, JUN) in rows
    assert ("employment", "active", JAN, MAR) in rows
    assert ("unit", "RN", JAN, None) in rows
    with pytest.raises(BadRequest, match="cannot take effect before"):
        rosters.set_status(db, ada, StatusKind.EMPLOYMENT, "terminated", MAR)
    with pytest.raises(BadRequest, match="Unknown status"):
        rosters.set_status(db, ada, StatusKind.MEMBERSHIP, "emperor", JUN)


def test_contact_details_are_checked_and_normalized(db: Session) -> None:
    org = make_org(db)
    ada = _member(
        db, org, " 1001 ", [], email=" Ada@Example.ORG ", phone="(415) 555-0132", country="us"
    )
    assert (ada.member_number, ada.email, ada.phone, ada.country) == (
        "1001",
        "ada@example.org",
        "+14155550132",
        "US",
    )
    with pytest.raises(rosters.MemberInvalid) as caught:
        _member(db, org, "1001", [], email="not an email", phone="12")
    assert set(caught.value.errors) == {"email", "phone"}
    with pytest.raises(rosters.MemberInvalid) as caught:
        _member(db, org, "1001", [])
    assert caught.value.errors == {"member_number": "Another member has this member number."}


def test_search_by_name_number_email_and_phone_with_paging(db: Session) -> None:
    org = make_org(db)
    for n in range(30):
        _member(db, org, f"{2000 + n}", [], first=f"Person{n:02d}", last="Garcia")
    _member(
        db,
        org,
        "9999",
        [],
        first="Ada",
        last="Lovelace",
        email="ada@example.org",
        phone="+1 415 555 0132",
    )
    other = make_org(db)
    _member(db, other, "9999", [], first="Ada", last="Lovelace")

    def find(q: str, page: int = 1) -> list[str]:
        result = queries.search_members(db, org, q, phone_region="US", page=page, per_page=10)
        return [m.member_number for m in result.members]

    assert find("love") == ["9999"]
    assert find("lovelace ada") == ["9999"]
    assert find("9999") == ["9999"]
    assert find("ADA@example.org") == ["9999"]
    assert find("(415) 555-0132") == ["9999"]
    assert find("gar") == [f"{2000 + n}" for n in range(10)]
    assert find("gar", page=3) == [f"{2000 + n}" for n in range(20, 30)]
    assert find("gar", page=99) == [f"{2000 + n}" for n in range(20, 30)]  # clamped to the last
    assert find("100%_") == []  # LIKE wildcards are literal
    page = queries.search_members(db, org, "", phone_region="US", per_page=10)
    assert page.total == 31 and page.pages == 4


def test_another_organizations_member_is_not_found(db: Session) -> None:
    org, other = make_org(db), make_org(db)
    theirs = _member(db, other, "1", [])
    with pytest.raises(NotFound):
        queries.get_member(db, org, theirs.id)
    their_unit = _unit(db, other, "X")
    with pytest.raises(NotFound):
        _member(db, org, "2", [their_unit])
