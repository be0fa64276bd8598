"""An admin adds staff with a role and a one-time set-password link."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.accounts.models import PasswordToken
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.security import token_digest
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login, post_form

LINK = re.compile(r"http://testserver/set-password/([A-Za-z0-9_\-]+)")


def _add(client, org, **data):  # type: ignore[no-untyped-def]
    return post_form(client, f"/o/{org.slug}/staff", data)


def test_admin_adds_staff_who_sets_a_password_once(db: Session, client, app, secret_ledger) -> None:
    from tests.conftest import make_client

    org = make_org(db)
    admin = make_user(db, org)
    login(client, admin.email)
    response = _add(client, org, name="Rosa Parks", email="Rosa@Example.org", role="committee")
    assert response.status_code == 200
    link = LINK.search(response.text)
    assert link, "the one-time link is shown to the admin"
    token = link.group(1)
    user = accounts.get_user_by_email(db, "rosa@example.org")
    assert user is not None and accounts.role_in(db, user, org) == Role.COMMITTEE
    # Only a digest is stored.
    assert db.scalar(select(PasswordToken.token_digest)) != token

    with make_client(app, secret_ledger, follow_redirects=False) as rosa:
        page = rosa.get(f"/set-password/{token}")
        assert page.status_code == 200 and "Rosa Parks" in page.text
        assert (
            rosa.get(f"/set-password/{token}").status_code == 200
        )  # opening twice changes nothing
        form = {"password": "solidarity forever", "confirm": "solidarity forever"}
        response = post_form(rosa, f"/set-password/{token}", form)
        assert response.status_code == 303
        assert rosa.get(f"/set-password/{token}").status_code == 404
        assert (
            post_form(rosa, f"/set-password/{token}", form, form_page="/login").status_code == 404
        )
        assert login(rosa, "rosa@example.org", "solidarity forever").status_code == 303
        assert rosa.get(f"/o/{org.slug}/").status_code == 200


def test_expired_link_is_refused(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org, password=None)
    token = accounts.issue_link_for_staff(db, org, actor=None, user=user, max_age=60)
    stored = db.scalars(
        select(PasswordToken).where(PasswordToken.token_digest == token_digest(token))
    ).one()
    stored.expires_at -= timedelta(minutes=2)
    db.flush()
    response = client.get(f"/set-password/{token}")
    assert response.status_code == 404
    assert "This link has been used or has expired" in response.text


def test_set_password_form_keeps_errors_per_field(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org, password=None)
    token = accounts.issue_link_for_staff(db, org, actor=None, user=user, max_age=600)
    response = post_form(
        client, f"/set-password/{token}", {"password": "short", "confirm": "other"}
    )
    assert response.status_code == 400
    assert "Use at least 10 characters." in response.text
    assert "The two passwords are not the same." in response.text
    db.refresh(user)
    assert user.password_hash is None
    assert client.get(f"/set-password/{token}").status_code == 200  # still usable


def test_adding_staff_validates_and_keeps_what_was_typed(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    login(client, admin.email)
    response = _add(client, org, name="Joe Hill", email="not-an-email", role="boss")
    assert response.status_code == 400
    assert "Enter an email address such as name@example.org." in response.text
    assert "Choose a role." in response.text
    assert 'value="Joe Hill"' in response.text
    assert len(accounts.list_staff(db, org)) == 1


def test_adding_someone_twice_is_a_clear_conflict(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    login(client, admin.email)
    response = _add(client, org, name="Admin again", email=admin.email, role="staff")
    assert response.status_code == 409
    assert "already has a role here" in response.text


def test_existing_user_joins_a_second_organization_without_a_link(db: Session, client) -> None:
    first, second = make_org(db), make_org(db)
    admin = make_user(db, second)
    person = make_user(db, first, Role.STAFF)
    login(client, admin.email)
    response = _add(client, second, name="ignored", email=person.email, role="observer")
    assert response.status_code == 200
    assert not LINK.search(response.text)
    assert accounts.role_in(db, person, second) == Role.OBSERVER


def test_role_changes_are_audited_with_before_and_after(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    staff = make_user(db, org, Role.STAFF)
    role_id = next(r.id for r in accounts.list_staff(db, org) if r.user_id == staff.id)
    login(client, admin.email)
    token = csrf_from(client, f"/o/{org.slug}/staff")
    response = client.post(
        f"/o/{org.slug}/staff/{role_id}/role", data={"role": "committee", "csrf_token": token}
    )
    assert response.status_code == 303
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "staff.role_changed")).one()
    assert event.actor_id == admin.id
    assert event.data == {"email": staff.email, "from": "staff", "to": "committee"}


def test_the_last_admin_cannot_be_removed_or_demoted(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    role_id = accounts.list_staff(db, org)[0].id
    login(client, admin.email)
    token = csrf_from(client, f"/o/{org.slug}/staff")
    response = client.post(
        f"/o/{org.slug}/staff/{role_id}/role", data={"role": "staff", "csrf_token": token}
    )
    assert response.status_code == 409
    assert "at least one administrator" in response.text
    assert accounts.role_in(db, admin, org) == Role.ADMIN


def test_new_link_for_staff_is_audited_and_shown_once(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    staff = make_user(db, org, Role.STAFF, password=None)  # lost their invitation
    role_id = next(r.id for r in accounts.list_staff(db, org) if r.user_id == staff.id)
    login(client, admin.email)
    token = csrf_from(client, f"/o/{org.slug}/staff")
    response = client.post(f"/o/{org.slug}/staff/{role_id}/link", data={"csrf_token": token})
    link = LINK.search(response.text)
    assert link
    assert not LINK.search(client.get(f"/o/{org.slug}/staff").text)
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == str(staff.id))
    ).all()
    assert "staff.password_link_issued" in actions
    # Only the newest link works: the invitation sent earlier is void now.
    live = db.scalars(
        select(PasswordToken).where(
            PasswordToken.user_id == staff.id, PasswordToken.used_at.is_(None)
        )
    ).all()
    assert [t.token_digest for t in live] == [token_digest(link.group(1))]


def test_an_admin_cannot_take_over_an_account_of_another_organization(db: Session, client) -> None:
    """Adding someone's existing account gives them a role here, never their password."""
    mine, theirs = make_org(db), make_org(db)
    me = make_user(db, mine)
    their_admin = make_user(db, theirs)
    login(client, me.email)
    response = _add(client, mine, name="x", email=their_admin.email, role="observer")
    assert response.status_code == 200
    assert not LINK.search(response.text)
    role_id = next(r.id for r in accounts.list_staff(db, mine) if r.user_id == their_admin.id)
    token = csrf_from(client, f"/o/{mine.slug}/staff")
    response = client.post(f"/o/{mine.slug}/staff/{role_id}/link", data={"csrf_token": token})
    assert response.status_code == 409
    assert "has already set a password" in response.text
    assert not LINK.search(response.text)
    open_tokens = db.scalars(
        select(PasswordToken).where(
            PasswordToken.user_id == their_admin.id, PasswordToken.used_at.is_(None)
        )
    ).all()
    assert open_tokens == []


def test_removal_here_does_not_sign_someone_out_elsewhere(
    db: Session, client, app, secret_ledger
) -> None:
    from tests.conftest import make_client

    mine, theirs = make_org(db), make_org(db)
    me = make_user(db, mine)
    person = make_user(db, theirs)
    login(client, me.email)
    _add(client, mine, name="x", email=person.email, role="staff")
    with make_client(app, secret_ledger, follow_redirects=False) as theirs_browser:
        login(theirs_browser, person.email)
        assert theirs_browser.get(f"/o/{mine.slug}/").status_code == 200
        role_id = next(r.id for r in accounts.list_staff(db, mine) if r.user_id == person.id)
        token = csrf_from(client, f"/o/{mine.slug}/staff")
        assert (
            client.post(
                f"/o/{mine.slug}/staff/{role_id}/remove", data={"csrf_token": token}
            ).status_code
            == 303
        )
        # The role is gone at once; their own organization still works.
        assert theirs_browser.get(f"/o/{mine.slug}/").status_code == 404
        assert theirs_browser.get(f"/o/{theirs.slug}/").status_code == 200


def test_one_link_used_twice_at_once_sets_one_password(live_sessions) -> None:  # type: ignore[no-untyped-def]
    from ratify.db import unit_of_work
    from ratify.errors import NotFound
    from ratify.security import verify_password
    from tests.factories import FAST_HASHER
    from tests.helpers import run_together

    with unit_of_work(live_sessions) as db:
        org = make_org(db)
        user = make_user(db, org, password=None)
        token = accounts.issue_link_for_staff(db, org, actor=None, user=user, max_age=600)

    def use(n: int) -> str:
        password = f"password number {n}"
        with unit_of_work(live_sessions) as db:
            accounts.use_password_token(db, FAST_HASHER, token, password, password)
        return password

    outcomes = run_together(use, 4)
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1
    assert all(isinstance(o, NotFound) for o in outcomes if o not in winners)
    with unit_of_work(live_sessions) as db:
        stored = accounts.get_user_by_email(db, user.email)
        assert stored is not None and verify_password(FAST_HASHER, stored.password_hash, winners[0])
