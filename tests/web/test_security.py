from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffRole
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login


def _signed_in_admin(db: Session, client):  # type: ignore[no-untyped-def]
    org = make_org(db)
    admin = make_user(db, org, Role.ADMIN)
    assert login(client, admin.email).status_code == 303
    return org, admin


def _staff_count(db: Session, org) -> int:  # type: ignore[no-untyped-def]
    return db.execute(select(func.count()).where(StaffRole.organization_id == org.id)).scalar_one()


def test_form_without_csrf_token_is_refused_and_writes_nothing(db: Session, client) -> None:
    org, _ = _signed_in_admin(db, client)
    events_before = db.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    data = {"name": "Eve", "email": "eve@example.org", "role": "admin"}
    response = client.post(f"/o/{org.slug}/staff", data=data)
    assert response.status_code == 403
    assert "This form has expired or did not come from Ratify" in response.text
    assert _staff_count(db, org) == 1
    assert db.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events_before


def test_form_with_a_forged_csrf_token_is_refused(db: Session, client) -> None:
    org, _ = _signed_in_admin(db, client)
    token = csrf_from(client, f"/o/{org.slug}/staff")
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    data = {"name": "Eve", "email": "eve@example.org", "role": "admin", "csrf_token": forged}
    assert client.post(f"/o/{org.slug}/staff", data=data).status_code == 403
    assert _staff_count(db, org) == 1


def test_csrf_token_from_another_browser_is_refused(
    db: Session, client, app, secret_ledger
) -> None:
    from tests.conftest import make_client

    org, _ = _signed_in_admin(db, client)
    with make_client(app, secret_ledger, follow_redirects=False) as other:
        foreign_token = csrf_from(other, "/login")
    data = {"name": "Eve", "email": "eve@example.org", "role": "admin", "csrf_token": foreign_token}
    assert client.post(f"/o/{org.slug}/staff", data=data).status_code == 403
    assert _staff_count(db, org) == 1


def test_cross_site_request_is_refused_even_with_a_token(db: Session, client) -> None:
    org, _ = _signed_in_admin(db, client)
    token = csrf_from(client, f"/o/{org.slug}/staff")
    data = {"name": "Eve", "email": "eve@example.org", "role": "admin", "csrf_token": token}
    response = client.post(
        f"/o/{org.slug}/staff", data=data, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403
    assert _staff_count(db, org) == 1


def test_login_form_itself_needs_csrf(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    response = client.post(
        "/login", data={"email": user.email, "password": "correct horse battery"}
    )
    assert response.status_code == 403
    assert "ratify_session" not in response.headers.get("set-cookie", "")


def test_oversized_body_is_refused_before_reading(client, settings) -> None:
    body = b"x" * (settings.max_body_bytes + 1)
    response = client.post(
        "/login", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert "too large" in response.text


def test_body_larger_than_any_route_allows_is_refused_by_the_middleware(client, settings) -> None:
    # Content-Length alone decides: the body is never read.
    response = client.post(
        "/login",
        content=b"",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(settings.max_upload_bytes + 1),
        },
    )
    assert response.status_code == 413


def test_streamed_body_without_length_is_cut_off_at_the_limit(client, settings) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"a=" + b"x" * 65534

    response = client.post(
        "/login", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413


def test_too_many_form_fields_is_413(client, settings) -> None:
    token = csrf_from(client, "/login")
    fields = "&".join(f"f{n}=1" for n in range(settings.max_form_fields + 1))
    response = client.post(
        "/login",
        content=f"csrf_token={token}&{fields}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_security_headers_on_pages(client) -> None:
    response = client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-request-id"]


def test_hsts_and_secure_cookies_under_https(app, secret_ledger) -> None:
    from tests.conftest import make_client

    with make_client(app, secret_ledger, follow_redirects=False) as https_client:
        https_client.base_url = "https://testserver"  # type: ignore[assignment]
        response = https_client.get("https://testserver/login")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_pages_load_no_third_party_assets(client) -> None:
    html = client.get("/login").text
    assert "http://" not in html.replace("http://testserver", "")
    assert "https://" not in html
    assert "<script" not in html  # the staff pages need no script at all


def test_unknown_page_is_a_friendly_404(client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_api_errors_are_json(client) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == 404


def test_unexpected_error_is_a_friendly_500_with_headers(client) -> None:
    from ratify.authz import PUBLIC
    from ratify.web.routing import page

    def broken(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    client.app.router.routes.append(page("/boom", broken, access=PUBLIC))
    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "boom" not in response.text
    assert "content-security-policy" in response.headers


def test_healthz_checks_the_database(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unusable_database(settings, secret_ledger, tmp_path) -> None:
    from dataclasses import replace

    from ratify.app import create_app
    from tests.conftest import make_client

    broken = create_app(replace(settings, database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    with make_client(broken, secret_ledger) as c:
        response = c.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_healthz_answers_promptly_for_a_signed_in_browser(
    live_sessions, live_engine, live_settings, secret_ledger
) -> None:  # type: ignore[no-untyped-def]
    """On real connections: a second connection opened inside the request would wait for
    the SQLite write lock the request already holds."""
    import time

    from ratify.app import create_app
    from ratify.db import make_sessionmaker
    from tests.conftest import make_client

    with live_sessions() as s, s.begin():
        org = make_org(s)
        user = make_user(s, org)
        email = user.email
    app = create_app(live_settings, sessions=make_sessionmaker(live_engine))
    with make_client(app, secret_ledger, follow_redirects=False) as c:
        assert login(c, email).status_code == 303
        start = time.monotonic()
        assert c.get("/healthz").status_code == 200
        assert time.monotonic() - start < 5


def test_healthz_reports_an_unreachable_postgresql(settings, secret_ledger) -> None:
    from dataclasses import replace

    from ratify.app import create_app
    from tests.conftest import make_client

    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    with make_client(create_app(replace(settings, database_url=url)), secret_ledger) as c:
        response = c.get("/healthz")
    assert response.status_code == 503


def test_api_paths_get_json_errors_even_for_oversized_bodies(client, settings) -> None:
    response = client.post(
        "/api/v1/anything",
        content=b"",
        headers={
            "Content-Length": str(settings.max_upload_bytes + 1),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_forbidden_and_wrong_method_pages_are_friendly(db: Session, client) -> None:
    org = make_org(db)
    make_user(db, org, Role.ADMIN)
    login(client, make_user(db, org, Role.OBSERVER).email)
    forbidden = client.get(f"/o/{org.slug}/staff")
    assert forbidden.status_code == 403
    assert (
        "Not allowed" in forbidden.text
        and "You do not have permission to do that." in forbidden.text
    )
    wrong_method = client.put("/login")
    assert (
        wrong_method.status_code == 405
        and "This page cannot be used that way." in wrong_method.text
    )
