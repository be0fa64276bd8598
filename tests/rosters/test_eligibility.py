"""Eligibility on a cutoff date, with every reason for those left out."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from ratify.errors import BadRequest
from ratify.rosters import eligibility as elig
from ratify.rosters import services as rosters
from ratify.rosters.models import DuesPayment, EmploymentStatus, MembershipStatus
from ratify.rosters.services import MemberFields, UnitFields
from tests.factories import make_org

CUTOFF = date(2026, 11, 15)
START = date(2025, 1, 1)


@pytest.fixture
def roster(db: Session):  # type: ignore[no-untyped-def]
    """One member per reason, plus two who are eligible."""
    org = make_org(db)
    rn = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    tech = rosters.create_unit(db, org, actor=None, fields=UnitFields("TECH", "Techs", "", ""))
    people = {}

    def add(
        key: str,
        *,
        unit=rn,
        membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE,
        joined=date(2020, 1, 1),
        paid=True,
    ):  # type: ignore[no-untyped-def]
        member = rosters.add_member(
            db,
            org,
            MemberFields(f"{len(people) + 1:04d}", key.title(), "Test", join_date=joined),
            phone_region="US",
            effective=START,
            membership=membership,
            employment=employment,
            units=[unit],
        )
        if paid:
            db.add(
                DuesPayment(
                    organization_id=org.id,
                    member_id=member.id,
                    period=date(2026, 10, 1),
                    amount_cents=4500,
                    received_on=date(2026, 10, 5),
                    source="t",
                )
            )
        people[key] = member
        return member

    add("eligible")
    add("techie", unit=tech)
    left = add("left")
    rosters.leave_unit(db, left, rn, date(2026, 6, 1))
    add("feepayer", membership=MembershipStatus.FEE_PAYER)
    add("nonmember", membership=MembershipStatus.NON_MEMBER)
    add("arrears", paid=False, joined=date(2020, 1, 1))
    add("terminated", employment=EmploymentStatus.TERMINATED)
    add("newbie", joined=date(2026, 11, 1))
    add("excluded")
    add("included", membership=MembershipStatus.FEE_PAYER)
    db.flush()
    return org, rn, tech, people


def _rule(units, people, **overrides):  # type: ignore[no-untyped-def]
    values = {
        "cutoff": CUTOFF,
        "unit_ids": frozenset(u.id for u in units),
        "joined_days_before": 30,
        "excludes": {people["excluded"].id: "Supervisor since October"},
        "includes": {people["included"].id: "Fee payer status is a payroll error"},
    }
    return elig.EligibilityRule(**{**values, **overrides})


def test_each_reason_is_reported(db: Session, roster) -> None:  # type: ignore[no-untyped-def]
    org, rn, _, people = roster
    preview = elig.evaluate(db, org, _rule([rn], people))
    by_key = {
        key: next(d for d in preview.decisions if d.member_id == m.id)
        for key, m in people.items()
        if key != "techie"
    }
    assert by_key["eligible"].eligible and by_key["eligible"].units == ("RN",)
    assert by_key["left"].reasons == (elig.NOT_IN_UNIT,)
    assert by_key["feepayer"].reasons == (elig.FEE_PAYER,)
    assert by_key["nonmember"].reasons == (elig.NON_MEMBER,)
    assert by_key["arrears"].reasons == (elig.IN_ARREARS,)
    assert by_key["terminated"].reasons == (elig.EMPLOYMENT,)
    assert by_key["newbie"].reasons == (elig.JOINED_TOO_LATE,)
    assert by_key["excluded"].reasons == (elig.MANUALLY_EXCLUDED,)
    assert by_key["excluded"].note == "Supervisor since October"
    assert by_key["included"].eligible and by_key["included"].note.startswith("Fee payer status")
    assert all(d.member_id != people["techie"].id for d in preview.decisions)  # TECH not chosen
    assert preview.included == 2
    assert preview.excluded_by_reason() == {
        elig.NOT_IN_UNIT: 1, elig.FEE_PAYER: 1, elig.NON_MEMBER: 1, elig.IN_ARREARS: 1,
        elig.EMPLOYMENT: 1, elig.JOINED_TOO_LATE: 1, elig.MANUALLY_EXCLUDED: 1,
    }  # fmt: skip
    assert preview.per_unit() == {"RN": (2, 6)}


def test_the_rule_decides_what_counts(db: Session, roster) -> None:  # type: ignore[no-untyped-def]
    org, rn, tech, people = roster
    loose = _rule(
        [rn, tech],
        people,
        membership=frozenset({"member", "fee_payer"}),
        good_standing=False,
        employment=frozenset({"active", "terminated"}),
        joined_days_before=None,
    )
    preview = elig.evaluate(db, org, loose)
    eligible = {d.member_id for d in preview.decisions if d.eligible}
    for key in ("eligible", "techie", "feepayer", "arrears", "terminated", "newbie", "included"):
        assert people[key].id in eligible, key
    assert preview.per_unit()["TECH"] == (1, 0)


def test_the_cutoff_date_decides_who_is_in_the_unit(db: Session, roster) -> None:  # type: ignore[no-untyped-def]
    org, rn, _, people = roster
    earlier = elig.evaluate(
        db,
        org,
        elig.EligibilityRule(
            cutoff=date(2026, 5, 31), unit_ids=frozenset({rn.id}), good_standing=False
        ),
    )
    left = next(d for d in earlier.decisions if d.member_id == people["left"].id)
    assert left.eligible


def test_units_of_another_organization_are_refused(db: Session, roster) -> None:  # type: ignore[no-untyped-def]
    org, _, _, _ = roster
    other = make_org(db)
    theirs = rosters.create_unit(db, other, actor=None, fields=UnitFields("X", "X", "", ""))
    with pytest.raises(BadRequest, match="Choose at least one bargaining unit"):
        elig.evaluate(db, org, elig.EligibilityRule(cutoff=CUTOFF, unit_ids=frozenset({theirs.id})))


def test_a_member_in_two_units_is_one_decision_listing_both(db: Session, roster) -> None:  # type: ignore[no-untyped-def]
    org, rn, tech, people = roster
    for key in ("eligible", "excluded", "left"):
        rosters.assign_unit(db, people[key], tech, START)
    db.flush()
    preview = elig.evaluate(db, org, _rule([rn, tech], people))
    numbers = [d.member_number for d in preview.decisions]
    assert len(numbers) == len(set(numbers)) == len(people)
    by_id = {d.member_id: d for d in preview.decisions}
    assert by_id[people["eligible"].id].units == ("RN", "TECH")
    assert by_id[people["eligible"].id].eligible
    # In TECH still, though no longer in RN: in a unit on the cutoff, so eligible.
    assert by_id[people["left"].id].units == ("TECH",) and by_id[people["left"].id].eligible
    assert by_id[people["excluded"].id].reasons == (elig.MANUALLY_EXCLUDED,)
    assert preview.per_unit()["TECH"] == (3, 1)
