from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.throttle.models import ThrottleHit
from tests.conftest import SecretLedger, make_client
from tests.factories import make_org, make_user
from tests.helpers import login, post_form


def test_login_lands_on_the_only_organization(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    response = login(client, user.email)
    assert response.status_code == 303
    assert response.headers["location"] == f"/o/{org.slug}/"
    assert client.get(f"/o/{org.slug}/").status_code == 200


def test_wrong_password_gives_a_clear_message_and_no_session(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    response = login(client, user.email, "not the password")
    assert response.status_code == 401
    assert "The email or password is not right" in response.text
    assert "ratify_session" not in response.headers.get("set-cookie", "")
    assert client.get(f"/o/{org.slug}/").status_code == 303  # still sent to sign in
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == user.id)).all()
    assert "account.login_failed" in actions


def test_unknown_email_gets_the_same_message(db: Session, client) -> None:
    response = login(client, "nobody@example.org", "whatever-it-is")
    assert response.status_code == 401
    assert "The email or password is not right" in response.text


def test_account_is_throttled_after_repeated_failures(db: Session, client, settings) -> None:
    org = make_org(db)
    user = make_user(db, org)
    for _ in range(settings.login_max_failures_per_account):
        assert login(client, user.email, "wrong password!").status_code == 401
    # Even the right password is refused now: the throttle is checked first.
    response = login(client, user.email)
    assert response.status_code == 429
    assert "Too many failed attempts" in response.text


def test_successful_login_clears_the_account_counter(db: Session, client, settings) -> None:
    org = make_org(db)
    user = make_user(db, org)
    for _ in range(settings.login_max_failures_per_account - 1):
        login(client, user.email, "wrong password!")
    assert login(client, user.email).status_code == 303
    client.cookies.clear()
    for _ in range(settings.login_max_failures_per_account - 1):
        assert login(client, user.email, "wrong password!").status_code == 401
    assert login(client, user.email).status_code == 303


def _client_from(app: Starlette, ledger: SecretLedger, address: str):  # type: ignore[no-untyped-def]
    return make_client(app, ledger, follow_redirects=False, client=(address, 40000))


def test_client_address_is_throttled_across_accounts(
    db: Session, app: Starlette, secret_ledger: SecretLedger, settings
) -> None:
    org = make_org(db)
    victim = make_user(db, org)
    attacker = _client_from(app, secret_ledger, "203.0.113.9")
    for n in range(settings.login_max_failures_per_address):
        assert login(attacker, f"guess{n}@example.org", "wrong password!").status_code == 401
    # A new account from the same address is refused too ...
    assert login(attacker, victim.email).status_code == 429
    # ... but someone else, elsewhere, signs in.
    assert login(_client_from(app, secret_ledger, "198.51.100.7"), victim.email).status_code == 303


def test_forged_forwarded_for_does_not_escape_the_throttle(
    db: Session, app: Starlette, secret_ledger: SecretLedger, settings
) -> None:
    """The peer is not a trusted proxy, so its X-Forwarded-For is ignored."""
    attacker = _client_from(app, secret_ledger, "203.0.113.9")
    for n in range(settings.login_max_failures_per_address):
        attacker.headers["X-Forwarded-For"] = f"192.0.2.{n}"
        assert login(attacker, f"guess{n}@example.org", "wrong password!").status_code == 401
    attacker.headers["X-Forwarded-For"] = "192.0.2.250"
    assert login(attacker, "fresh@example.org", "wrong password!").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(
    db: Session, settings, sessions, secret_ledger: SecretLedger
) -> None:
    from dataclasses import replace

    from ratify.app import create_app

    app = create_app(replace(settings, trusted_proxies=("10.0.0.0/8",)), sessions=sessions)
    org = make_org(db)
    user = make_user(db, org)
    proxy = _client_from(app, secret_ledger, "10.1.2.3")
    for n in range(settings.login_max_failures_per_address):
        # A client-supplied entry on the left is not believed: the proxy appended the real one.
        proxy.headers["X-Forwarded-For"] = f"192.0.2.{n}, 203.0.113.9"
        assert login(proxy, f"guess{n}@example.org", "wrong password!").status_code == 401
    proxy.headers["X-Forwarded-For"] = "203.0.113.9"
    assert login(proxy, user.email).status_code == 429
    # Another client behind the same proxy is not punished for it.
    proxy.headers["X-Forwarded-For"] = "198.51.100.7"
    assert login(proxy, user.email).status_code == 303


def test_throttle_keys_hold_no_email_or_address(db: Session, client) -> None:
    login(client, "someone@example.org", "wrong password!")
    keys = db.scalars(select(ThrottleHit.key)).all()
    assert len(keys) == 2
    assert all("example.org" not in k and "testclient" not in k for k in keys)


def test_login_is_audited_in_each_organization(db: Session, client) -> None:
    first, second = make_org(db), make_org(db)
    user = make_user(db, first)
    from tests.factories import add_role

    add_role(db, user, second, Role.OBSERVER)
    assert login(client, user.email).headers["location"] == "/"
    count = db.execute(
        select(func.count()).where(
            AuditEvent.action == "account.login", AuditEvent.actor_id == user.id
        )
    ).scalar_one()
    assert count == 2


def test_next_parameter_cannot_leave_the_site(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    response = post_form(
        client,
        "/login",
        {"email": user.email, "password": "correct horse battery", "next": "//evil.example/"},
    )
    assert response.headers["location"] == f"/o/{org.slug}/"


def test_password_is_rehashed_when_parameters_change(db: Session, client, settings) -> None:
    org = make_org(db)
    user = make_user(db, org)
    before = user.password_hash
    assert before is not None and "m=8," in before and "t=1," in before
    from dataclasses import replace

    from ratify.app import create_app

    stronger = create_app(
        replace(settings, argon2_time_cost=2, argon2_memory_kib=16),
        sessions=client.app.state.ratify.sessions,
    )
    ledger = client.ledger
    with make_client(stronger, ledger, follow_redirects=False) as other:
        assert login(other, user.email).status_code == 303
    db.refresh(user)
    assert user.password_hash != before and "m=16," in user.password_hash


def test_parallel_guesses_cannot_outrun_the_throttle(live_sessions, base_settings) -> None:  # type: ignore[no-untyped-def]
    """Twelve wrong passwords at once for one account: exactly the limit get checked."""
    from dataclasses import replace

    from argon2 import PasswordHasher

    from ratify.accounts import services as accounts
    from ratify.db import unit_of_work
    from ratify.errors import TooManyRequests
    from tests.helpers import run_together

    settings = replace(base_settings, login_max_failures_per_account=5)
    hasher = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1)  # a few ms each
    with unit_of_work(live_sessions) as db:
        org = make_org(db)
        email = make_user(db, org).email

    def guess(n: int) -> str:
        with unit_of_work(live_sessions) as db:
            try:
                accounts.authenticate(
                    db,
                    settings,
                    hasher,
                    email=email,
                    password="wrong!",
                    client_address=f"198.51.100.{n}",
                )
            except accounts.InvalidCredentials:
                return "checked"  # the failure is counted: the transaction commits
            except TooManyRequests:
                return "throttled"
        return "signed in"

    outcomes = run_together(guess, 12)
    assert sorted(map(str, outcomes)) == ["checked"] * 5 + ["throttled"] * 7
