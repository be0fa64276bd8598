"""Upserting a batch of members by member number: the import checks, all or nothing, in the
import history; and hostile or malformed input is a 4xx, never a 500."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ratify.api import services as tokens
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.db import unit_of_work
from ratify.orgs.models import Organization
from ratify.rosters.models import Member, MemberStatusPeriod, RosterImport, UnitAssignment
from tests.api.support import add_member, bearer, make_token, make_unit
from tests.factories import make_org
from tests.helpers import run_together


def _batch(client, org, secret, body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/orgs/{org.slug}/members/batch", json=body, headers=bearer(secret))


def _count(db: Session, model) -> int:  # type: ignore[no-untyped-def]
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def _setup(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_org(db)
    rn = make_unit(db, org)
    add_member(db, org, "100", "Lovelace", units=[rn], email="ada@example.org")
    return org, make_token(db, org, role, client)


def test_a_batch_adds_and_updates_members(db: Session, client) -> None:
    org, secret = _setup(db, client)
    body = {
        "effective_date": "2026-11-01",
        "members": [
            {"member_number": "100", "first_name": "Ada", "last_name": "Lovelace",
             "email": "ADA@Example.org ", "employment_status": "on_leave", "unit": "RN"},
            {"member_number": "101", "first_name": "Grace", "last_name": "Hopper",
             "email": None, "employment_status": "active", "unit": "RN"},
        ],
    }  # fmt: skip
    response = _batch(client, org, secret, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["counts"] == {
        "rows": 2, "new": 1, "changed": 1, "leaving": 0, "unchanged": 0, "errors": 0
    }  # fmt: skip
    assert result["roster_import"]["actor_label"].startswith("api:rat_")
    record = db.scalars(select(RosterImport)).one()
    assert str(record.id) == result["roster_import"]["id"] and record.scope.value == "update_only"
    grace = db.scalars(select(Member).where(Member.member_number == "101")).one()
    assert (grace.first_name, grace.last_name, grace.email) == ("Grace", "Hopper", "")
    assert db.scalars(select(UnitAssignment).where(UnitAssignment.member_id == grace.id)).one()
    ada = db.scalars(select(Member).where(Member.member_number == "100")).one()
    db.refresh(ada)
    assert ada.email == "ada@example.org"
    statuses = db.scalars(
        select(MemberStatusPeriod.status).where(
            MemberStatusPeriod.member_id == ada.id, MemberStatusPeriod.end_date.is_(None)
        )
    ).all()
    assert sorted(statuses) == ["member", "on_leave"]
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.imported")).one()
    assert audit.actor_id is None and audit.actor_label == record.actor_label
    # The same batch again changes nothing and records nothing, and is not refused.
    again = _batch(client, org, secret, body)
    assert again.status_code == 200
    assert again.json()["roster_import"] is None and again.json()["counts"]["unchanged"] == 2
    assert _count(db, RosterImport) == 1
    # A later change in the same shape is applied (not refused as a file seen before).
    body["members"][1]["email"] = "grace@example.org"
    assert _batch(client, org, secret, body).json()["counts"]["changed"] == 1
    assert _count(db, RosterImport) == 2


def test_a_batch_with_one_bad_row_writes_nothing(db: Session, client) -> None:
    org, secret = _setup(db, client)
    before = [_count(db, m) for m in (Member, RosterImport, AuditEvent, MemberStatusPeriod)]
    body = {
        "members": [
            {"member_number": "101", "last_name": "Hopper", "email": "grace@example.org"},
            {"member_number": "102", "last_name": "Noether", "email": "not an address"},
            {"member_number": "100", "last_name": "Lovelace", "email": ""},
            {"member_number": "101", "last_name": "Twice", "email": ""},
        ]
    }
    response = _batch(client, org, secret, body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {
        "index": 1,
        "field": "members.email",
        "message": "This is not an email address.",
    } in errors
    assert {
        "index": 3,
        "field": "members.member_number",
        "message": "This member number is also on an earlier row.",
    } in errors
    assert response.json()["message"] == "2 members have errors: nothing was changed."
    after = [_count(db, m) for m in (Member, RosterImport, AuditEvent, MemberStatusPeriod)]
    assert after == before
    ada = db.scalars(select(Member).where(Member.member_number == "100")).one()
    db.refresh(ada)
    assert ada.email == "ada@example.org"


def test_a_batch_gets_the_same_checks_as_a_file(db: Session, client) -> None:
    org, secret = _setup(db, client)
    body = {
        "members": [
            {"member_number": "200", "last_name": "=cmd|'/c calc'!A1", "unit": "RN"},
            {"member_number": "201", "last_name": "Ok", "unit": "NOPE"},
            {"member_number": "202", "last_name": "", "unit": "RN"},
        ]
    }
    errors = _batch(client, org, secret, body).json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {
        (0, "members.last_name"),
        (1, "members.unit"),
        (2, "members.last_name"),
    }
    assert _count(db, Member) == 1


def test_every_member_of_a_batch_gives_the_same_fields(db: Session, client) -> None:
    org, secret = _setup(db, client)
    body = {
        "members": [
            {"member_number": "101", "last_name": "Hopper", "email": "grace@example.org"},
            {"member_number": "100", "last_name": "Lovelace"},
        ]
    }
    response = _batch(client, org, secret, body)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "index": 1,
            "field": "members.email",
            "message": "Give the same fields for every member of a batch.",
        }
    ]
    assert _count(db, Member) == 1


def test_a_batch_that_does_not_fit_the_model_is_422(db: Session, client) -> None:
    org, secret = _setup(db, client)
    for body, field, index in [
        ({}, "members", None),
        ({"members": []}, "members", None),
        ({"members": [{"last_name": "x"}]}, "members.member_number", 0),
        ({"members": [{"member_number": " "}]}, "members.member_number", 0),
        ({"members": [{"member_number": "1", "hire_date": "2026-13-01"}]}, "members.hire_date", 0),
        ({"members": [{"member_number": "1", "membership_status": "boss"}]},
         "members.membership_status", 0),
        ({"members": [{"member_number": "1", "salary": 5}]}, "members.salary", 0),
        ({"members": [{"member_number": "1", "last_name": "a\x00b"}]}, "members.last_name", 0),
        ({"members": [{"member_number": ["1"]}]}, "members.member_number", 0),
        ({"members": "everyone"}, "members", None),
    ]:  # fmt: skip
        response = _batch(client, org, secret, body)
        assert response.status_code == 422, body
        first = response.json()["errors"][0]
        assert (first["field"], first["index"]) == (field, index), body
    assert _count(db, Member) == 1


def test_malformed_or_oversized_bodies_are_4xx(db: Session, client, settings) -> None:
    org, secret = _setup(db, client)
    url = f"/api/v1/orgs/{org.slug}/members/batch"
    json_headers = {**bearer(secret), "Content-Type": "application/json"}
    for raw in (b"{", b"[1, 2", b"\xff\xfe", b'{"members": [' * 5000, b"null", b"[]"):
        response = client.post(url, content=raw, headers=json_headers)
        assert response.status_code in (400, 422), raw[:20]
        assert response.json()["error"] == response.status_code
    form = client.post(url, data={"members": "x"}, headers=bearer(secret))
    assert form.status_code == 415
    # Larger than this route takes: refused before reading on, as JSON.
    eligibility = f"/api/v1/orgs/{org.slug}/eligibility"
    big = b'{"cutoff": "' + b"x" * settings.max_body_bytes + b'"}'
    response = client.post(eligibility, content=big, headers=json_headers)
    assert response.status_code == 413 and response.json()["error"] == 413
    assert _count(db, Member) == 1


def test_batches_need_the_import_permission(db: Session, client) -> None:
    org, secret = _setup(db, client, Role.COMMITTEE)
    body = {"members": [{"member_number": "300", "last_name": "New"}]}
    assert _batch(client, org, secret, body).status_code == 403
    assert _count(db, Member) == 1


def test_another_organizations_roster_cannot_be_written(db: Session, client) -> None:
    org, _ = _setup(db, client)
    other = make_org(db)
    make_unit(db, other)
    secret = make_token(db, other, Role.STAFF, client)
    body = {"members": [{"member_number": "100", "last_name": "Changed"}]}
    assert _batch(client, org, secret, body).status_code == 404
    ada = db.scalars(select(Member).where(Member.member_number == "100")).one()
    db.refresh(ada)
    assert ada.last_name == "Lovelace" and _count(db, Member) == 1


def test_two_batches_adding_the_same_member_at_once_both_succeed(
    live_sessions: sessionmaker[Session],
) -> None:
    """Two syncs racing on committed data: one adds the member, the other then finds it."""
    with unit_of_work(live_sessions) as s:
        org = make_org(s)
        make_unit(s, org)
        secrets = [make_token(s, org), make_token(s, org)]  # two syncs, two tokens
        org_id = org.id

    def send(n: int) -> dict[str, int]:
        with unit_of_work(live_sessions) as s:
            token = tokens.authenticate(s, secrets[n])
            assert token is not None
            result = tokens.upsert_batch(
                s,
                s.get_one(Organization, org_id),
                token,
                [{"member_number": "500", "last_name": "Racer", "first_name": f"{n}"}],
                effective=date(2026, 11, 1),
                phone_region="US",
            )
            return result.preview.counts()

    results = run_together(send, 2)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r["new"] for r in results) == [0, 1]  # type: ignore[index]
    with unit_of_work(live_sessions) as s:
        assert s.execute(select(func.count()).select_from(Member)).scalar_one() == 1


def test_values_with_quotes_and_semicolons_are_stored_as_sent(db: Session, client) -> None:
    """The batch is read back in the dialect it was written in: values that would mislead a
    CSV sniffer (quotes, semicolons, apostrophes) change neither the count nor the values.
    A batch without names updates known members and keeps their names."""
    org, secret = _setup(db, client)
    sites = ['"North" Ward 7; Apt 3,', "St. Mary's", "Lab; B"]
    body = {"members": [
        {"member_number": str(200 + i), "first_name": "Pat", "last_name": f"T{i}", "worksite": site}
        for i, site in enumerate(sites)
    ]}  # fmt: skip
    response = _batch(client, org, secret, body)
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["rows"] == 3 and response.json()["counts"]["new"] == 3
    stored = db.scalars(
        select(Member.worksite).where(Member.member_number.in_(["200", "201", "202"]))
        .order_by(Member.member_number)
    ).all()  # fmt: skip
    assert stored == sites
    emails = {"members": [{"member_number": "100", "email": "ada.l@example.org"}]}
    response = _batch(client, org, secret, emails)
    assert response.status_code == 200, response.text
    ada = db.scalars(select(Member).where(Member.member_number == "100")).one()
    assert (ada.last_name, ada.email) == ("Lovelace", "ada.l@example.org")
