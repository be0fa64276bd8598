"""API tokens: made by admins on their page, shown once, kept as a digest, refused when
revoked, unknown or missing, and good for their own organization only."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.api import services as tokens
from ratify.api.models import ApiToken
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from tests.api.support import bearer, make_token
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login, post_form

SECRET = re.compile(r"<code class=\"secret-link\">(rat_[A-Za-z0-9_\-]+)</code>")


def _members(client, org, secret: str):  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/orgs/{org.slug}/members", headers=bearer(secret))


def test_admin_makes_a_token_that_is_shown_once_and_stored_hashed(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    page = post_form(client, f"/o/{org.slug}/api-tokens", {"name": "payroll", "role": "staff"})
    assert page.status_code == 200
    secret = SECRET.search(page.text).group(1)  # type: ignore[union-attr]
    client.ledger.add(secret)
    assert len(secret) > 40
    token = db.scalars(select(ApiToken)).one()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12] and token.role == Role.STAFF and token.name == "payroll"
    # The database never holds the secret: not in the token row, not in the audit log.
    stored = [str(getattr(token, c.key)) for c in ApiToken.__table__.columns]
    assert not any(secret in value for value in stored)
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_token.created")).all()
    assert len(events) == 1 and secret not in str(events[0].data)
    assert events[0].data["prefix"] == token.prefix
    # Shown once: the page lists the token by its first characters only.
    again = client.get(f"/o/{org.slug}/api-tokens").text
    assert secret not in again and token.prefix in again and "payroll" in again
    assert _members(client, org, secret).status_code == 200
    db.refresh(token)
    assert token.last_used_at is not None


def test_revoked_unknown_and_missing_tokens_are_401(db: Session, client) -> None:
    org = make_org(db)
    secret = make_token(db, org, client=client)
    assert _members(client, org, secret).status_code == 200
    url = f"/api/v1/orgs/{org.slug}/members"
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {secret}"},
        bearer("rat_" + "x" * 43),
        bearer(secret[:-1]),
        bearer("x" * 10_000),
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == 401
    # Revoked on the admin page: refused from then on.
    login(client, make_user(db, org).email)
    token = db.scalars(select(ApiToken)).one()
    revoke = post_form(
        client,
        f"/o/{org.slug}/api-tokens/{token.id}/revoke",
        {},
        form_page=f"/o/{org.slug}/api-tokens",
    )
    assert revoke.status_code == 303
    assert _members(client, org, secret).status_code == 401
    assert "Revoked" in client.get(f"/o/{org.slug}/api-tokens").text
    assert (
        db.execute(
            select(func.count()).where(AuditEvent.action == "api_token.revoked")
        ).scalar_one()
        == 1
    )


def test_a_signed_in_session_is_no_api_credential(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    assert client.get(f"/api/v1/orgs/{org.slug}/members").status_code == 401


def test_another_organizations_data_is_404_for_a_token(db: Session, client) -> None:
    ours, theirs = make_org(db), make_org(db)
    secret = make_token(db, ours, client=client)
    assert _members(client, theirs, secret).status_code == 404
    assert client.get("/api/v1/orgs/no-such-org/members", headers=bearer(secret)).status_code == 404
    # Even an admin of both organizations: the token belongs to one.
    assert _members(client, ours, secret).status_code == 200


def test_only_admins_manage_tokens(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org, Role.STAFF).email)
    assert client.get(f"/o/{org.slug}/api-tokens").status_code == 403
    assert f'href="/o/{org.slug}/api-tokens"' not in client.get(f"/o/{org.slug}/").text
    token = csrf_from(client, f"/o/{org.slug}/members")
    response = client.post(
        f"/o/{org.slug}/api-tokens", data={"csrf_token": token, "name": "x", "role": "staff"}
    )
    assert response.status_code == 403
    assert db.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_making_a_token_needs_the_csrf_token(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    response = client.post(f"/o/{org.slug}/api-tokens", data={"name": "x", "role": "staff"})
    assert response.status_code == 403
    assert db.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_a_token_is_never_an_admin_and_needs_a_name(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    with pytest.raises(tokens.TokenInvalid):
        tokens.create_token(db, org, actor=admin, name="x", role=Role.ADMIN)
    login(client, admin.email)
    page = post_form(client, f"/o/{org.slug}/api-tokens", {"name": " ", "role": "admin"})
    assert page.status_code == 400
    assert "Choose the role the token acts with." in page.text
    assert "Name the token after the program" in page.text
    assert db.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_another_organizations_token_cannot_be_revoked(db: Session, client) -> None:
    ours, theirs = make_org(db), make_org(db)
    secret = make_token(db, theirs, client=client)
    token = db.scalars(select(ApiToken)).one()
    login(client, make_user(db, ours).email)
    response = post_form(
        client,
        f"/o/{ours.slug}/api-tokens/{token.id}/revoke",
        {},
        form_page=f"/o/{ours.slug}/api-tokens",
    )
    assert response.status_code == 404
    assert _members(client, theirs, secret).status_code == 200


def test_the_admin_navigation_links_to_tokens(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    assert f'href="/o/{org.slug}/api-tokens"' in client.get(f"/o/{org.slug}/").text


def test_a_request_does_not_hold_its_token_row_while_it_works(
    live_sessions, live_settings, secret_ledger, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Recording a token's last use happens in a short transaction of its own: a long request
    (a big batch, say) must not keep the token's row locked, or every other request with
    the same token waits for it."""
    if live_sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from sqlalchemy import text

    from ratify.app import create_app
    from ratify.rosters import queries
    from tests.conftest import make_client

    with live_sessions.begin() as db:
        org = make_org(db)
        secret = make_token(db, org, Role.STAFF)
        secret_ledger.add(secret)
        token_id = db.scalars(select(ApiToken.id)).one()
    probes: list[str] = []
    search = queries.search_members

    def probe(*args, **kwargs):  # type: ignore[no-untyped-def]
        # Mid-request: another connection tries to lock the token's row, without waiting.
        with live_sessions.begin() as other:
            other.execute(
                text("SELECT id FROM api_tokens WHERE id = :id FOR UPDATE NOWAIT"), {"id": token_id}
            )
            probes.append("free")
        return search(*args, **kwargs)

    monkeypatch.setattr(queries, "search_members", probe)
    app = create_app(live_settings, sessions=live_sessions)
    with make_client(app, secret_ledger) as client:
        response = client.get(f"/api/v1/orgs/{org.slug}/members", headers=bearer(secret))
    assert response.status_code == 200, response.text
    assert probes == ["free"]
    with live_sessions() as db:
        assert db.get_one(ApiToken, token_id).last_used_at is not None  # and it was recorded
