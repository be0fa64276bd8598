"""Bargaining units: list, create, edit, archive; scoped to their union."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.orgs.models import OrgKind
from ratify.rosters import services as rosters
from ratify.rosters.models import BargainingUnit
from ratify.rosters.services import UnitFields
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login, post_form


def _unit(db: Session, org, code: str = "RN", name: str = "Registered Nurses") -> BargainingUnit:  # type: ignore[no-untyped-def]
    return rosters.create_unit(
        db, org, actor=None, fields=UnitFields(code=code, name=name, employer="", description="")
    )


def _staff_of(db: Session, client, role: Role = Role.STAFF):  # type: ignore[no-untyped-def]
    org = make_org(db)
    login(client, make_user(db, org, role).email)
    return org


def test_staff_create_a_unit_that_is_audited(db: Session, client) -> None:
    org = _staff_of(db, client)
    response = post_form(
        client,
        f"/o/{org.slug}/units",
        {
            "code": "tech-2",
            "name": "Technical Unit",
            "employer": "Riverside General",
            "description": "Techs\r\nand aides",
        },
        form_page=f"/o/{org.slug}/units/new",
    )
    assert response.status_code == 303
    unit = db.scalars(select(BargainingUnit).where(BargainingUnit.organization_id == org.id)).one()
    assert (unit.code, unit.name, unit.employer, unit.description) == (
        "TECH-2",
        "Technical Unit",
        "Riverside General",
        "Techs\nand aides",
    )
    page = client.get(f"/o/{org.slug}/units").text
    assert "TECH-2" in page and "Riverside General" in page
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "unit.created")).one()
    assert event.data == {"code": "TECH-2", "name": "Technical Unit"}


def test_bad_unit_fields_get_messages_and_keep_what_was_typed(db: Session, client) -> None:
    org = _staff_of(db, client)
    _unit(db, org, "RN")
    response = post_form(
        client,
        f"/o/{org.slug}/units",
        {"code": "rn", "name": "", "description": "x" * 5001},
        form_page=f"/o/{org.slug}/units/new",
    )
    assert response.status_code == 400
    assert "Another unit already uses this code." in response.text
    assert "Enter the unit&#39;s name." in response.text
    assert "Use at most 5000 characters." in response.text
    response = post_form(
        client,
        f"/o/{org.slug}/units",
        {"code": "no spaces!", "name": "Kept name"},
        form_page=f"/o/{org.slug}/units/new",
    )
    assert "Use up to 30 letters" in response.text and 'value="Kept name"' in response.text
    assert len(rosters.list_units(db, org)) == 1


def test_editing_records_each_change(db: Session, client) -> None:
    org = _staff_of(db, client)
    unit = _unit(db, org)
    response = post_form(
        client,
        f"/o/{org.slug}/units/{unit.id}",
        {
            "code": "RN",
            "name": "Registered Nurses (all)",
            "employer": "Riverside",
            "description": "",
        },
    )
    assert response.status_code == 303
    db.refresh(unit)
    assert unit.name == "Registered Nurses (all)"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "unit.updated")).one()
    assert event.data["changes"] == {
        "name": {"from": "Registered Nurses", "to": "Registered Nurses (all)"},
        "employer": {"from": "", "to": "Riverside"},
    }


def test_archive_hides_a_unit_and_restore_brings_it_back(db: Session, client) -> None:
    org = _staff_of(db, client)
    unit = _unit(db, org)
    token = csrf_from(client, f"/o/{org.slug}/units")
    assert (
        client.post(
            f"/o/{org.slug}/units/{unit.id}/archive", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"/o/{org.slug}/units/{unit.id}/archive", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert rosters.list_units(db, org) == []
    assert [u.id for u in rosters.list_units(db, org, archived=True)] == [unit.id]
    assert re.search(r"<h2>Archived</h2>", client.get(f"/o/{org.slug}/units").text)
    assert (
        client.post(
            f"/o/{org.slug}/units/{unit.id}/restore", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert [u.id for u in rosters.list_units(db, org)] == [unit.id]
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_id == str(unit.id))
        .order_by(AuditEvent.seq)
    ).all()
    assert actions == [
        "unit.created",
        "unit.archived",
        "unit.restored",
    ]  # the second click recorded nothing


def test_another_unions_unit_is_404(db: Session, client) -> None:
    org = _staff_of(db, client)
    theirs = make_org(db)
    their_unit = _unit(db, theirs, "SECRET", "Their unit")
    assert client.get(f"/o/{org.slug}/units/{their_unit.id}").status_code == 404
    token = csrf_from(client, f"/o/{org.slug}/units")
    for path in ("", "/archive"):
        response = client.post(
            f"/o/{org.slug}/units/{their_unit.id}{path}",
            data={"csrf_token": token, "code": "X", "name": "Taken over"},
        )
        assert response.status_code == 404
    db.refresh(their_unit)
    assert their_unit.name == "Their unit" and their_unit.archived_at is None
    assert "SECRET" not in client.get(f"/o/{org.slug}/units").text


def test_community_organizations_have_no_units(db: Session, client) -> None:
    org = make_org(db, kind=OrgKind.COMMUNITY)
    login(client, make_user(db, org, Role.ADMIN).email)
    assert client.get(f"/o/{org.slug}/units").status_code == 404
    assert client.get(f"/o/{org.slug}/units/new").status_code == 404
    assert "Bargaining units" not in client.get(f"/o/{org.slug}/").text
    with pytest.raises(Exception, match="nothing here"):
        _unit(db, org)


@pytest.mark.parametrize(
    ("role", "can_edit"), [(Role.COMMITTEE, False), (Role.OBSERVER, False), (Role.ADMIN, True)]
)
def test_who_may_see_and_change_units(db: Session, client, role: Role, can_edit: bool) -> None:
    org = _staff_of(db, client, role)
    unit = _unit(db, org)
    page = client.get(f"/o/{org.slug}/units")
    assert page.status_code == 200 and "RN" in page.text
    assert ("Add a bargaining unit" in page.text) is can_edit
    assert client.get(f"/o/{org.slug}/units/{unit.id}").status_code == (200 if can_edit else 403)
    token = csrf_from(client, f"/o/{org.slug}/units")
    response = client.post(f"/o/{org.slug}/units/{unit.id}/archive", data={"csrf_token": token})
    assert response.status_code == (303 if can_edit else 403)
