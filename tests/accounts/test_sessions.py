"""Signed-cookie sessions that end the moment they are revoked."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.authz import Role
from ratify.security import SESSION_SALT, Signer
from tests.factories import FAST_HASHER, make_org, make_user
from tests.helpers import csrf_from, login, post_form


def _session_cookie(client) -> str:  # type: ignore[no-untyped-def]
    return client.cookies["ratify_session"]


def test_session_cookie_is_httponly_lax_and_expires(db: Session, client, settings) -> None:
    org = make_org(db)
    user = make_user(db, org)
    response = login(client, user.email)
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("ratify_session=")
    )
    assert "HttpOnly" in header
    assert "SameSite=lax" in header
    assert f"Max-Age={settings.session_max_age}" in header
    assert "Secure" not in header  # plain http in tests; see the https test


def test_login_rotates_the_session_and_csrf_cookies(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    csrf_before = csrf_from(client, "/login") and client.cookies["ratify_csrf"]
    login(client, user.email)
    first = _session_cookie(client)
    assert client.cookies["ratify_csrf"] != csrf_before
    client.cookies.delete("ratify_session")
    login(client, user.email)
    assert _session_cookie(client) != first


def test_logout_ends_the_session_everywhere_at_once(
    db: Session, client, app, secret_ledger
) -> None:
    from tests.conftest import make_client

    org = make_org(db)
    user = make_user(db, org)
    login(client, user.email)
    with make_client(app, secret_ledger, follow_redirects=False) as laptop:
        login(laptop, user.email)
        stolen = _session_cookie(laptop)
        assert laptop.get(f"/o/{org.slug}/").status_code == 200
        response = post_form(laptop, "/logout", {}, form_page=f"/o/{org.slug}/")
        assert response.status_code == 303
        assert laptop.get(f"/o/{org.slug}/").status_code == 303
    # The phone's session and a copy of the laptop's cookie are both dead.
    assert client.get(f"/o/{org.slug}/").status_code == 303
    client.cookies.set("ratify_session", stolen)
    assert client.get(f"/o/{org.slug}/").status_code == 303


def test_removing_a_role_ends_that_persons_sessions(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org, Role.ADMIN)
    staff = make_user(db, org, Role.STAFF)
    login(client, staff.email)
    assert client.get(f"/o/{org.slug}/").status_code == 200
    staff_role = next(r for r in accounts.list_staff(db, org) if r.user_id == staff.id)
    accounts.remove_staff(db, org, actor=admin, staff_role=staff_role)
    assert client.get("/account").status_code == 303


def test_password_change_ends_other_sessions_but_keeps_this_one(
    db: Session, client, app, secret_ledger
) -> None:
    from tests.conftest import make_client

    org = make_org(db)
    user = make_user(db, org)
    login(client, user.email)
    with make_client(app, secret_ledger, follow_redirects=False) as other:
        login(other, user.email)
        response = post_form(
            client,
            "/account/password",
            {
                "current": "correct horse battery",
                "password": "a brand new passphrase",
                "confirm": "a brand new passphrase",
            },
            form_page="/account",
        )
        assert response.status_code == 303
        assert other.get("/account").status_code == 303
    assert client.get("/account").status_code == 200
    client.cookies.clear()
    assert login(client, user.email, "a brand new passphrase").status_code == 303


def test_tampered_or_expired_cookies_are_ignored(db: Session, client, settings) -> None:
    org = make_org(db)
    user = make_user(db, org)
    signer = Signer(settings.secret_key, SESSION_SALT)
    valid = signer.dumps({"u": user.id.hex, "e": user.session_epoch, "s": "x"})
    client.cookies.set("ratify_session", valid)
    assert client.get("/account").status_code == 200
    client.cookies.set("ratify_session", valid[:-2] + ("AA" if not valid.endswith("AA") else "BB"))
    assert client.get("/account").status_code == 303
    other_key = Signer("another secret key that is long enough!!", SESSION_SALT)
    client.cookies.set(
        "ratify_session", other_key.dumps({"u": user.id.hex, "e": user.session_epoch})
    )
    assert client.get("/account").status_code == 303
    # Signed for another purpose (the CSRF salt, say): not a session.
    client.cookies.set(
        "ratify_session",
        Signer(settings.secret_key, "ratify.csrf").dumps({"u": user.id.hex, "e": 0}),
    )
    assert client.get("/account").status_code == 303


def test_session_expires_after_max_age(db: Session, client, settings, monkeypatch) -> None:
    org = make_org(db)
    user = make_user(db, org)
    login(client, user.email)
    assert client.get("/account").status_code == 200
    later = time.time() + settings.session_max_age + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/account").status_code == 303


def test_password_change_needs_the_current_password(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    login(client, user.email)
    response = post_form(
        client,
        "/account/password",
        {"current": "wrong one", "password": "short", "confirm": "different"},
        form_page="/account",
    )
    assert response.status_code == 400
    assert "That is not your current password." in response.text
    assert "Use at least 10 characters." in response.text
    db.refresh(user)
    from ratify.security import verify_password

    assert verify_password(FAST_HASHER, user.password_hash, "correct horse battery")
