"""The eligibility preview through the API: the same counts as the service for the same
rule, each member's decision paged, and the page's permission."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.rosters import eligibility as elig
from ratify.rosters.models import DuesPayment, EmploymentStatus, MembershipStatus
from tests.api.support import add_member, bearer, make_token, make_unit
from tests.factories import make_org

CUTOFF = date(2026, 11, 15)


def _roster(db: Session):  # type: ignore[no-untyped-def]
    """Members left out for several reasons, and some who may vote, in two units."""
    org = make_org(db)
    rn, tech = make_unit(db, org, "RN"), make_unit(db, org, "TECH")
    people = {}
    for key, unit, membership, employment, paid in [
        ("ada", rn, MembershipStatus.MEMBER, EmploymentStatus.ACTIVE, True),
        ("bea", rn, MembershipStatus.MEMBER, EmploymentStatus.ON_LEAVE, True),
        ("cy", rn, MembershipStatus.FEE_PAYER, EmploymentStatus.ACTIVE, True),
        ("dee", tech, MembershipStatus.NON_MEMBER, EmploymentStatus.ACTIVE, True),
        ("eve", tech, MembershipStatus.MEMBER, EmploymentStatus.TERMINATED, True),
        ("fay", tech, MembershipStatus.MEMBER, EmploymentStatus.ACTIVE, False),
        ("gus", tech, MembershipStatus.MEMBER, EmploymentStatus.ACTIVE, True),
    ]:
        member = add_member(
            db, org, f"{len(people) + 1:04d}", key.title(), units=[unit],
            membership=membership, employment=employment, join_date=date(2020, 1, 1),
        )  # fmt: skip
        if paid:
            db.add(
                DuesPayment(
                    organization_id=org.id, member_id=member.id, period=date(2026, 10, 1),
                    amount_cents=4500, received_on=date(2026, 10, 5), source="t",
                )
            )  # fmt: skip
        people[key] = member
    db.flush()
    return org, rn, tech, people


def _post(client, org, secret, body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/orgs/{org.slug}/eligibility", json=body, headers=bearer(secret))


def test_counts_by_reason_match_the_service_for_the_same_rule(db: Session, client) -> None:
    org, rn, tech, people = _roster(db)
    secret = make_token(db, org, Role.STAFF, client)
    body = {
        "cutoff": CUTOFF.isoformat(),
        "units": ["RN", "TECH"],
        "membership": ["member"],
        "employment": ["active", "on_leave"],
        "good_standing": True,
        "excludes": [{"member_number": people["gus"].member_number, "reason": "supervisor"}],
        "includes": [{"member_number": people["cy"].member_number, "reason": "ruled eligible"}],
    }
    response = _post(client, org, secret, body)
    assert response.status_code == 200, response.text
    result = response.json()
    expected = elig.evaluate(
        db,
        org,
        elig.EligibilityRule(
            cutoff=CUTOFF,
            unit_ids=frozenset({rn.id, tech.id}),
            membership=frozenset({"member"}),
            employment=frozenset({"active", "on_leave"}),
            excludes={people["gus"].id: "supervisor"},
            includes={people["cy"].id: "ruled eligible"},
        ),
    )
    assert result["excluded_by_reason"] == dict(expected.excluded_by_reason())
    assert result["excluded_by_reason"] == {
        "non_member": 1, "employment": 1, "in_arrears": 1, "manually_excluded": 1
    }  # fmt: skip
    assert (result["eligible"], result["not_eligible"]) == (3, 4) == (
        expected.included, len(expected.decisions) - expected.included
    )  # fmt: skip
    assert {u["code"]: (u["eligible"], u["not_eligible"]) for u in result["units"]} == (
        expected.per_unit()
    )
    assert result["reasons"]["in_arrears"] == "In arrears"
    decisions = result["decisions"]
    assert decisions["total"] == 7 and len(decisions["items"]) == 7
    cy = next(d for d in decisions["items"] if d["member_number"] == people["cy"].member_number)
    assert cy == {
        "member_number": people["cy"].member_number, "name": "Cy, Pat", "units": ["RN"],
        "eligible": True, "reasons": [], "note": "ruled eligible",
    }  # fmt: skip
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.exported")).one()
    assert event.data["via"] == "api" and event.data["rows"] == 7
    assert event.data["cutoff"] == CUTOFF.isoformat()


def test_decisions_are_paged(db: Session, client) -> None:
    org, *_ = _roster(db)
    secret = make_token(db, org, Role.STAFF, client)
    body = {"cutoff": CUTOFF.isoformat(), "units": ["RN", "TECH"], "per_page": 3, "page": 3}
    decisions = _post(client, org, secret, body).json()["decisions"]
    assert (decisions["page"], decisions["pages"], decisions["total"]) == (3, 3, 7)
    assert [d["name"] for d in decisions["items"]] == ["Gus, Pat"]


def test_a_rule_naming_unknown_units_or_members_is_422(db: Session, client) -> None:
    org, *_ = _roster(db)
    other, *_ = _roster(db)
    secret = make_token(db, org, Role.STAFF, client)
    response = _post(
        client,
        org,
        secret,
        {
            "cutoff": CUTOFF.isoformat(),
            "units": ["RN", "NOPE"],
            "includes": [{"member_number": "9999", "reason": "x"}],
        },
    )
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (1, "units"),
        (0, "includes.member_number"),
    ]
    for bad in (
        {"units": ["RN"]},
        {"cutoff": "2026-02-30", "units": ["RN"]},
        {"cutoff": CUTOFF.isoformat(), "units": []},
        {"cutoff": CUTOFF.isoformat(), "units": ["RN"], "membership": ["boss"]},
        {"cutoff": CUTOFF.isoformat(), "units": ["RN"], "joined_days_before": -1},
        {"cutoff": CUTOFF.isoformat(), "units": ["RN"], "excludes": [{"member_number": "1"}]},
    ):
        assert _post(client, org, secret, bad).status_code == 422, bad
    # Another organization's rule is theirs to ask for.
    assert (
        _post(client, other, secret, {"cutoff": "2026-11-15", "units": ["RN"]}).status_code == 404
    )


def test_only_roles_that_preview_eligibility_on_the_pages_may_through_the_api(
    db: Session, client
) -> None:
    org, *_ = _roster(db)
    body = {"cutoff": CUTOFF.isoformat(), "units": ["RN"]}
    for role in (Role.OBSERVER, Role.COMMITTEE):
        response = _post(client, org, make_token(db, org, role, client), body)
        assert response.status_code == 403 and "Pat" not in response.text
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.exported")).all()
        == []
    )
