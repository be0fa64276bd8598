"""Roster imports through the API: upload a file, read its guessed mapping and preview, fix
the mapping, apply once; another organization's upload does not exist for the token."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.rosters import imports
from ratify.rosters import services as rosters
from ratify.rosters.models import ImportScope, Member, RosterImport
from tests.api.support import add_member, bearer, make_token, make_unit
from tests.factories import make_org, make_user

ROSTER = (
    b"Emp ID,Surname,Given Name,E-mail\n1001,Lovelace,Ada,ada@example.org\n1002,Hopper,Grace,\n"
)


def _start(client, org, secret, data: bytes = ROSTER, **fields: str):  # type: ignore[no-untyped-def]
    form = {"scope": "unit", "unit": "RN", "effective_date": "2026-11-01", **fields}
    return client.post(
        f"/api/v1/orgs/{org.slug}/imports",
        data=form,
        files={"file": ("payroll.csv", data, "text/csv")},
        headers=bearer(secret),
    )


def _members(db: Session) -> int:
    return db.execute(select(func.count()).select_from(Member)).scalar_one()


def _setup(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_org(db)
    make_unit(db, org)
    return org, make_token(db, org, role, client)


def test_start_read_apply_and_a_second_apply_is_409(db: Session, client) -> None:
    org, secret = _setup(db, client)
    response = _start(client, org, secret, source="payroll")
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["status"] == "ready" and upload["headers"][0] == "Emp ID"
    assert upload["row_count"] == 2
    assert upload["mapping"]["member_number"] == "Emp ID"  # guessed from the header
    assert upload["mapping"]["last_name"] == "Surname"
    assert upload["preview"]["counts"]["new"] == 2 and upload["preview"]["errors"] == []
    assert upload["preview"]["needs_confirmation"] is False
    assert _members(db) == 0  # nothing yet
    url = f"/api/v1/orgs/{org.slug}/imports/{upload['id']}"
    assert client.get(url, headers=bearer(secret)).json()["preview"] == upload["preview"]
    stale = client.post(f"{url}/apply", json={"version": "0" * 16}, headers=bearer(secret))
    assert stale.status_code == 409 and "out of date" in stale.json()["message"]
    assert _members(db) == 0
    applied = client.post(
        f"{url}/apply", json={"version": upload["version"]}, headers=bearer(secret)
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "applied"
    result = applied.json()["roster_import"]
    assert result["counts"]["new"] == 2 and result["file_name"] == "payroll.csv"
    assert result["actor_label"].startswith("api:rat_")
    assert _members(db) == 2
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.imported")).one()
    assert event.actor_id is None and event.actor_label == result["actor_label"]
    read = client.get(url, headers=bearer(secret)).json()
    assert read["status"] == "applied" and read["roster_import"] == result
    assert read["preview"] is None
    again = client.post(f"{url}/apply", headers=bearer(secret))
    assert again.status_code == 409 and "already imported" in again.json()["message"]
    assert db.execute(select(func.count()).select_from(RosterImport)).scalar_one() == 1


def test_a_mapping_is_given_or_fixed(db: Session, client) -> None:
    org, secret = _setup(db, client)
    data = b"Ref,Who\nA1,Lovelace\nA2,Hopper\n"
    upload = _start(client, org, secret, data).json()
    assert upload["preview"] is None
    assert upload["problem"] == "Map a column to the member number: every row needs one."
    url = f"/api/v1/orgs/{org.slug}/imports/{upload['id']}"
    bad = client.put(f"{url}/mapping", json={"mapping": {"member_number": "Nope"}},
                     headers=bearer(secret))  # fmt: skip
    assert bad.status_code == 400
    fixed = client.put(
        f"{url}/mapping",
        json={"mapping": {"member_number": "Ref", "last_name": "Who"}},
        headers=bearer(secret),
    )
    assert fixed.status_code == 200 and fixed.json()["preview"]["counts"]["new"] == 2
    mapping = json.dumps({"member_number": "Ref", "last_name": "Who"})
    given = _start(client, org, secret, b"Ref,Who\nB1,Noether\n", mapping=mapping).json()
    assert given["mapping"] == {"member_number": "Ref", "last_name": "Who"}
    assert given["preview"]["counts"]["new"] == 1


def test_row_errors_are_previewed_and_block_the_apply(db: Session, client) -> None:
    org, secret = _setup(db, client)
    upload = _start(client, org, secret, ROSTER + b"1003,Noether,Emmy,not-an-address\n").json()
    assert upload["preview"]["counts"]["errors"] == 1
    assert upload["preview"]["errors"] == [
        {"row": 4, "column": "E-mail", "message": "This is not an email address."}
    ]
    url = f"/api/v1/orgs/{org.slug}/imports/{upload['id']}/apply"
    response = client.post(url, json={"confirm_leaving": True}, headers=bearer(secret))
    assert response.status_code == 409 and _members(db) == 0


def test_leaving_members_need_confirmation(db: Session, client) -> None:
    org, secret = _setup(db, client)
    rn = rosters.list_units(db, org)[0]
    for n in range(5):
        add_member(db, org, f"90{n}", f"Old{n}", units=[rn])
    upload = _start(client, org, secret).json()
    assert upload["preview"]["counts"]["leaving"] == 5
    assert upload["preview"]["needs_confirmation"] is True
    url = f"/api/v1/orgs/{org.slug}/imports/{upload['id']}/apply"
    assert client.post(url, headers=bearer(secret)).status_code == 409
    confirmed = client.post(url, json={"confirm_leaving": True}, headers=bearer(secret))
    assert confirmed.status_code == 200
    assert confirmed.json()["roster_import"]["counts"]["leaving"] == 5


def test_starting_an_import_checks_its_fields(db: Session, client) -> None:
    org, secret = _setup(db, client)
    for fields, field in [
        ({"scope": "everything"}, "scope"),
        ({"unit": "NOPE"}, "unit"),
        ({"unit": ""}, "unit"),
        ({"effective_date": "soon"}, "effective_date"),
        ({"mapping": "{not json"}, "mapping"),
        ({"colour": "blue"}, "colour"),
    ]:
        response = _start(client, org, secret, **fields)
        assert response.status_code == 422, fields
        assert response.json()["errors"][0]["field"] == field, fields
    no_file = client.post(
        f"/api/v1/orgs/{org.slug}/imports",
        data={"scope": "update_only"},
        files={"other": ("x.txt", b"x", "text/plain")},
        headers=bearer(secret),
    )
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"
    as_json = client.post(
        f"/api/v1/orgs/{org.slug}/imports", json={"scope": "unit"}, headers=bearer(secret)
    )
    assert as_json.status_code == 415
    empty = _start(client, org, secret, b"")
    assert empty.status_code == 400 and empty.json()["message"] == "The file is empty."


def test_another_organizations_import_is_404(db: Session, client) -> None:
    org, secret = _setup(db, client)
    other = make_org(db)
    theirs = imports.store_upload(
        db,
        other,
        actor=make_user(db, other),
        file_name="theirs.csv",
        data=ROSTER,
        scope=ImportScope.UPDATE_ONLY,
        unit=None,
        effective=date(2026, 11, 1),
        source="",
    )
    url = f"/api/v1/orgs/{org.slug}/imports/{theirs.id}"
    assert client.get(url, headers=bearer(secret)).status_code == 404
    assert client.post(f"{url}/apply", headers=bearer(secret)).status_code == 404
    assert client.put(f"{url}/mapping", json={"mapping": {"member_number": "Emp ID"}},
                      headers=bearer(secret)).status_code == 404  # fmt: skip
    assert client.get(f"/api/v1/orgs/{org.slug}/imports/not-a-uuid",
                      headers=bearer(secret)).status_code == 404  # fmt: skip
    assert _members(db) == 0 and theirs.roster_import_id is None


def test_imports_need_the_import_permission(db: Session, client) -> None:
    org, secret = _setup(db, client, Role.COMMITTEE)
    assert _start(client, org, secret).status_code == 403


def test_a_large_file_is_checked_and_applied_by_the_worker(
    db: Session, sessions, settings, secret_ledger
) -> None:  # type: ignore[no-untyped-def]
    """Past RATIFY_IMPORT_BACKGROUND_ROWS the API answers at once and the worker does the
    work: the client polls the upload until it is checked, then until it is applied."""
    from dataclasses import replace

    from ratify.app import create_app
    from ratify.jobs import registry
    from ratify.jobs.worker import Worker
    from tests.conftest import make_client

    small = replace(settings, import_background_rows=1)
    with make_client(create_app(small, sessions=sessions), secret_ledger) as client:
        org, secret = _setup(db, client)
        upload = _start(client, org, secret).json()
        assert (upload["status"], upload["rows_done"], upload["preview"]) == ("checking", 0, None)
        url = f"/api/v1/orgs/{org.slug}/imports/{upload['id']}"
        assert client.post(f"{url}/apply", headers=bearer(secret)).status_code == 409
        worker = Worker(sessions, handlers=registry.handlers(small))
        assert worker.drain() == 1
        read = client.get(url, headers=bearer(secret)).json()
        assert read["status"] == "checked" and read["rows_done"] == 2
        assert read["preview"]["counts"]["new"] == 2
        applying = client.post(f"{url}/apply", headers=bearer(secret)).json()
        assert applying["status"] == "applying" and _members(db) == 0
        assert worker.drain() == 1
        read = client.get(url, headers=bearer(secret)).json()
        assert read["status"] == "applied" and read["roster_import"]["counts"]["new"] == 2
        assert read["roster_import"]["actor_label"].startswith("api:rat_")
        assert _members(db) == 2
