"""Dues remittances, corrections, and good standing with grace on boundary dates."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.errors import BadRequest, Conflict
from ratify.rosters import dues, imports
from ratify.rosters import services as rosters
from ratify.rosters.models import DuesPayment, EmploymentStatus, MembershipStatus, StatusKind
from ratify.rosters.services import MemberFields
from tests.factories import make_org, make_user


def _member(db: Session, org, number: str = "1001", joined: date | None = None):  # type: ignore[no-untyped-def]
    return rosters.add_member(
        db,
        org,
        MemberFields(number, "Ada", "Lovelace", join_date=joined),
        phone_region="US",
        effective=date(2025, 1, 1),
        membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE,
        units=[],
    )


def _pay(db: Session, org, member, period: date, received: date) -> None:  # type: ignore[no-untyped-def]
    db.add(
        DuesPayment(
            organization_id=org.id,
            member_id=member.id,
            period=period,
            amount_cents=4500,
            received_on=received,
            source="t",
        )
    )
    db.flush()


@pytest.mark.parametrize(
    ("on", "arrears", "good"),
    [
        (date(2026, 9, 30), 0, True),  # paid through September
        (date(2026, 10, 1), 0, True),  # October is not late yet
        (date(2026, 11, 30), 1, True),
        (date(2026, 12, 31), 2, True),  # two months behind: the grace
        (date(2027, 1, 1), 3, False),  # three: out of good standing
    ],
)
def test_good_standing_with_two_months_grace(
    db: Session, on: date, arrears: int, good: bool
) -> None:
    org = make_org(db)
    assert org.dues_grace_months == 2
    ada = _member(db, org)
    for month in range(1, 10):
        _pay(db, org, ada, date(2026, month, 1), received=date(2026, month, 15))
    assert dues.paid_through(db, ada, on) == date(2026, 9, 1)
    assert dues.months_in_arrears(db, ada, on) == arrears
    assert dues.in_good_standing(db, org, ada, on) is good


def test_only_payments_received_by_the_date_count(db: Session) -> None:
    org = make_org(db)
    ada = _member(db, org)
    _pay(db, org, ada, date(2026, 1, 1), received=date(2026, 1, 20))
    _pay(db, org, ada, date(2026, 6, 1), received=date(2026, 7, 20))  # a late catch-up
    assert dues.paid_through(db, ada, date(2026, 7, 1)) == date(2026, 1, 1)
    assert dues.months_in_arrears(db, ada, date(2026, 7, 1)) == 5
    assert dues.paid_through(db, ada, date(2026, 7, 20)) == date(2026, 6, 1)


def test_fee_payers_and_members_who_never_paid_are_not_in_good_standing(db: Session) -> None:
    org = make_org(db)
    ada = _member(db, org, "1", joined=date(2026, 10, 3))
    assert dues.months_in_arrears(db, ada, date(2026, 11, 5)) == 1  # counted from joining
    assert dues.in_good_standing(db, org, ada, date(2026, 11, 5))
    nobody = _member(db, org, "2")
    assert dues.months_in_arrears(db, nobody, date(2026, 11, 5)) is None
    assert not dues.in_good_standing(db, org, nobody, date(2026, 11, 5))
    _pay(db, org, nobody, date(2026, 11, 1), received=date(2026, 11, 1))
    rosters.set_status(db, nobody, StatusKind.MEMBERSHIP, "fee_payer", date(2026, 11, 2))
    assert dues.in_good_standing(db, org, nobody, date(2026, 11, 1))
    assert not dues.in_good_standing(db, org, nobody, date(2026, 11, 2))


def test_a_correction_needs_a_reason_and_is_audited(db: Session) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    ada = _member(db, org)
    with pytest.raises(BadRequest, match="Say why"):
        dues.correct(
            db,
            org,
            ada,
            actor=admin,
            period=date(2026, 3, 9),
            amount_cents=4500,
            received_on=date(2026, 4, 1),
            reason=" ",
        )
    payment = dues.correct(
        db,
        org,
        ada,
        actor=admin,
        period=date(2026, 3, 9),
        amount_cents=4500,
        received_on=date(2026, 4, 1),
        reason="Paid in cash at the meeting",
    )
    assert payment.period == date(2026, 3, 1)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "dues.corrected")).one()
    assert event.member_id == ada.id and event.data["reason"] == "Paid in cash at the meeting"


@pytest.mark.parametrize(
    ("raw", "cents"),
    [
        ("45.00", 4500),
        ("$1,234.56", 123456),
        ("-5", -500),
        ("12,5x", None),
        ("NaN", None),
        ("", None),
    ],
)
def test_amounts(raw: str, cents: int | None) -> None:
    assert dues.parse_amount(raw) == cents


@pytest.mark.parametrize(
    ("raw", "month"),
    [
        ("2026-10", date(2026, 10, 1)),
        ("10/2026", date(2026, 10, 1)),
        ("Oct 2026", date(2026, 10, 1)),
        ("2026-10-17", date(2026, 10, 1)),
        ("soon", None),
    ],
)
def test_periods(raw: str, month: date | None) -> None:
    assert dues.parse_period(raw) == month


def test_remittance_file_all_or_nothing(db: Session) -> None:
    org = make_org(db)
    ada = _member(db, org, "1001")
    good = imports.read_roster(
        "checkoff.csv", b"Member ID,Month,Deduction\n1001,2026-09,45.00\n1001,2026-10,45.00\n"
    )
    bad = imports.read_roster(
        "checkoff2.csv",
        b"Member ID,Month,Deduction\n1001,2026-11,45.00\n9999,2026-11,45.00\n1001,someday,x\n",
    )
    mapping = dues.guess_dues_mapping(good.headers)
    assert mapping == {"member_number": "Member ID", "period": "Month", "amount": "Deduction"}
    result = dues.preview_dues(db, org, bad, mapping=mapping, received_on=date(2026, 11, 20))
    assert {(e.row, e.message) for e in result.errors} == {
        (3, "No member has this number."),
        (4, "This is not a month (use 2026-10)."),
        (4, "This is not an amount."),
    }
    with pytest.raises(Conflict, match="2 rows have errors"):
        dues.apply_dues(db, org, result, actor_label="t")
    assert db.execute(select(func.count()).select_from(DuesPayment)).scalar_one() == 0
    result = dues.preview_dues(db, org, good, mapping=mapping, received_on=date(2026, 10, 20))
    assert result.counts() == {"rows": 2, "payments": 2, "members": 1, "errors": 0}
    dues.apply_dues(db, org, result, actor_label="t")
    assert dues.paid_through(db, ada, date(2026, 10, 31)) == date(2026, 10, 1)
    with pytest.raises(Conflict, match="already imported"):
        dues.apply_dues(db, org, result, actor_label="t")


def test_the_grace_is_an_organization_setting(db: Session, client) -> None:
    from tests.helpers import login, post_form

    org = make_org(db)
    login(client, make_user(db, org).email)
    form = {"name": org.name, "default_language": "en", "timezone": "UTC"}
    bad = post_form(client, f"/o/{org.slug}/settings", {**form, "dues_grace_months": "99"})
    assert bad.status_code == 400 and "Enter a number of months from 0 to 24." in bad.text
    assert (
        post_form(client, f"/o/{org.slug}/settings", {**form, "dues_grace_months": "3"}).status_code
        == 303
    )
    db.refresh(org)
    assert org.dues_grace_months == 3
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "org.settings_changed")).one()
    assert event.data["changes"]["dues_grace_months"] == {"from": 2, "to": 3}
