"""Reading members through the API: paged, scoped to the token's organization, and private
per role (contact details for staff, names for the committee, counts for observers)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.orgs.models import OrgKind
from tests.api.support import add_member, bearer, make_token, make_unit
from tests.factories import make_org


def _roster(db: Session):  # type: ignore[no-untyped-def]
    org = make_org(db)
    rn = make_unit(db, org)
    for n, last in enumerate(["Baker", "Adams", "Evans", "Cole", "Diaz"], start=1):
        add_member(
            db, org, f"{n}", last, units=[rn], email=f"m{n}@example.org", phone="+14155550100"
        )
    return org


def _get(client, org, role_or_secret, **params):  # type: ignore[no-untyped-def]
    return client.get(
        f"/api/v1/orgs/{org.slug}/members", params=params, headers=bearer(role_or_secret)
    )


def test_staff_read_members_with_contact_details(db: Session, client) -> None:
    org = _roster(db)
    body = _get(client, org, make_token(db, org, Role.STAFF, client)).json()
    assert body["total"] == 5 and [m["last_name"] for m in body["members"]][:2] == [
        "Adams",
        "Baker",
    ]
    adams = body["members"][0]
    assert adams["member_number"] == "2" and adams["contact"]["email"] == "m2@example.org"
    assert adams["contact"]["phone"] == "+14155550100"
    assert body["units"] == [{"code": "RN", "name": "Unit RN", "members": 5}]
    # Recorded like an export from the pages.
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "members.exported")).one()
    assert event.data == {"via": "api", "page": 1, "rows": 5, "contacts": True, "search": False}
    assert event.actor_label.startswith("api:rat_")


def test_the_committee_reads_names_without_contact_details(db: Session, client) -> None:
    org = _roster(db)
    response = _get(client, org, make_token(db, org, Role.COMMITTEE, client))
    members = response.json()["members"]
    assert len(members) == 5 and all(m["contact"] is None for m in members)
    assert "m1@example.org" not in response.text and "+1415" not in response.text


def test_observers_get_counts_only(db: Session, client) -> None:
    org = _roster(db)
    secret = make_token(db, org, Role.OBSERVER, client)
    response = _get(client, org, secret)
    body = response.json()
    assert response.status_code == 200
    assert body["members"] is None and body["total"] == 5 and body["units"][0]["members"] == 5
    assert "Adams" not in response.text and "example.org" not in response.text
    # A search would tell whether someone is a member: refused.
    assert _get(client, org, secret, q="Adams").status_code == 403
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "members.exported")).all() == []


def test_members_are_paged_and_searched(db: Session, client) -> None:
    org = _roster(db)
    secret = make_token(db, org, Role.STAFF, client)
    second = _get(client, org, secret, page=2, per_page=2).json()
    assert (second["page"], second["pages"], second["total"]) == (2, 3, 5)
    assert [m["last_name"] for m in second["members"]] == ["Cole", "Diaz"]
    last = _get(client, org, secret, page=3, per_page=2).json()
    assert [m["last_name"] for m in last["members"]] == ["Evans"]
    found = _get(client, org, secret, q="m4@example.org").json()
    assert found["total"] == 1 and found["members"][0]["last_name"] == "Cole"
    for bad in ({"per_page": 0}, {"per_page": 501}, {"page": "two"}, {"q": "a\x00b"}):
        response = _get(client, org, secret, **bad)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == next(iter(bad))


def test_another_organizations_members_are_unreachable(db: Session, client) -> None:
    ours, theirs = make_org(db), _roster(db)
    secret = make_token(db, ours, Role.STAFF, client)
    response = _get(client, theirs, secret)
    assert response.status_code == 404 and "Adams" not in response.text
    assert _get(client, ours, secret).json()["total"] == 0


def test_a_community_organization_has_no_roster(db: Session, client) -> None:
    org = make_org(db, kind=OrgKind.COMMUNITY)
    assert _get(client, org, make_token(db, org, Role.STAFF, client)).status_code == 404
