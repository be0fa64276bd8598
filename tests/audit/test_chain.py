from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ratify.audit import services as audit
from ratify.audit.models import AuditEvent, AuditHead
from ratify.authz import Role
from tests.factories import make_org, make_user
from tests.helpers import login


def _events(db: Session, org, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        audit.record(db, organization=org, actor=None, action="test.event", data={"i": i})


def test_a_fresh_chain_verifies(db: Session) -> None:
    org = make_org(db)
    _events(db, org, 5)
    check = audit.verify_chain(db, org.id)
    assert check.ok and check.events == 6  # org.created + 5


def test_an_edited_row_breaks_the_chain_at_that_event(db: Session) -> None:
    org = make_org(db)
    _events(db, org, 5)
    db.execute(
        update(AuditEvent)
        .where(AuditEvent.chain == audit.chain_for(org.id), AuditEvent.seq == 3)
        .values(data={"i": 99})
    )
    db.expire_all()
    check = audit.verify_chain(db, org.id)
    assert not check.ok
    assert check.first_bad_seq == 3
    assert check.problem == "this event was altered"


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link(db: Session) -> None:
    org = make_org(db)
    _events(db, org, 5)
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.chain == audit.chain_for(org.id), AuditEvent.seq == 3)
    ).one()
    event.actor_label = "someone else"
    event.hash = audit._digest(event, db.get_one(AuditHead, audit.chain_for(org.id)))
    db.flush()
    check = audit.verify_chain(db, org.id)
    assert not check.ok and check.first_bad_seq == 4


def test_removed_events_are_noticed(db: Session) -> None:
    org = make_org(db)
    _events(db, org, 5)
    chain = audit.chain_for(org.id)
    db.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == 6))
    assert audit.verify_chain(db, org.id).problem == "events were removed from the end"
    db.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == 2))
    assert audit.verify_chain(db, org.id).first_bad_seq == 3


def test_chains_of_organizations_are_independent(db: Session) -> None:
    a, b = make_org(db), make_org(db)
    _events(db, a, 3)
    _events(db, b, 1)
    db.execute(
        update(AuditEvent).where(AuditEvent.chain == audit.chain_for(a.id)).values(action="x")
    )
    db.expire_all()
    assert not audit.verify_chain(db, a.id).ok
    assert audit.verify_chain(db, b.id).ok


def test_events_refuse_choices_credentials_and_passwords(db: Session) -> None:
    org = make_org(db)
    for key in ("choice", "credential", "password", "token"):
        with pytest.raises(ValueError, match="may not hold"):
            audit.record(db, organization=org, actor=None, action="x", data={key: "secret"})


def test_a_rolled_back_action_leaves_no_event(sessions) -> None:
    from ratify.db import unit_of_work

    with unit_of_work(sessions) as db:
        org = make_org(db)
    with pytest.raises(RuntimeError), unit_of_work(sessions) as db:
        audit.record(db, organization=org, actor=None, action="never.happened")
        raise RuntimeError
    with unit_of_work(sessions) as db:
        actions = db.scalars(
            select(AuditEvent.action).where(AuditEvent.organization_id == org.id)
        ).all()
        assert actions == ["org.created"]
        assert audit.verify_chain(db, org.id).ok


def test_observers_see_members_and_contact_data_pseudonymized(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org, Role.ADMIN, email="boss@example.org")
    observer = make_user(db, org, Role.OBSERVER, email="watcher@example.org")
    member = uuid.uuid4()
    audit.record(
        db,
        organization=org,
        actor=admin,
        action="member.updated",
        member_id=member,
        data={"email": "member@example.org", "field": "phone"},
    )
    login(client, observer.email)
    page = client.get(f"/o/{org.slug}/audit").text
    assert "member@example.org" not in page
    assert str(member) not in page
    assert "member.updated" in page and "field: phone" in page
    key = db.get_one(AuditHead, audit.chain_for(org.id)).pseudonym_key
    assert "P-" + audit.commitment(key, str(member))[:10] in page
    assert "P-" + audit.commitment(key, "member@example.org")[:10] in page
    assert "The chain is intact." in page
    client.cookies.clear()
    login(client, admin.email)
    page = client.get(f"/o/{org.slug}/audit").text
    assert "member@example.org" in page and str(member) in page


def test_audit_page_shows_a_broken_chain(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    db.execute(
        update(AuditEvent)
        .where(AuditEvent.chain == audit.chain_for(org.id), AuditEvent.seq == 1)
        .values(action="org.tampered")
    )
    db.expire_all()
    login(client, admin.email)
    page = client.get(f"/o/{org.slug}/audit").text
    assert "The chain is broken at event 1" in page


def test_settings_changes_are_audited(db: Session, client) -> None:
    from tests.helpers import post_form

    org = make_org(db)
    admin = make_user(db, org)
    login(client, admin.email)
    response = post_form(
        client,
        f"/o/{org.slug}/settings",
        {"name": "Local 99", "default_language": "es", "timezone": "America/Chicago"},
    )
    assert response.status_code == 303
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "org.settings_changed")).one()
    assert event.data["changes"]["name"]["to"] == "Local 99"
    assert event.data["changes"]["timezone"] == {"from": "UTC", "to": "America/Chicago"}
    bad = post_form(
        client,
        f"/o/{org.slug}/settings",
        {"name": "", "default_language": "xx", "timezone": "Mars/Base"},
    )
    assert bad.status_code == 400
    assert "Choose a time zone from the list." in bad.text
    db.refresh(org)
    assert org.name == "Local 99"
