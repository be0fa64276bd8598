"""Hostile or malformed input gets a clear 4xx, never a 500, and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ratify.accounts.views import throttle_address
from ratify.orgs.models import Organization, OrgKind
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login, post_form


@pytest.mark.parametrize(
    "value", ["a\x00b@example.org", "name\x1b@example.org", "x\x7f@example.org"]
)
def test_control_characters_in_a_form_are_refused(client, value: str) -> None:
    response = post_form(client, "/login", {"email": value, "password": "whatever-it-is"})
    assert response.status_code == 400
    assert "characters that cannot be stored" in response.text


def test_newlines_and_tabs_in_text_are_fine(db: Session, client) -> None:
    org = make_org(db)
    admin = make_user(db, org)
    login(client, admin.email)
    response = post_form(
        client,
        f"/o/{org.slug}/settings",
        {"name": "Local\t7", "default_language": "en", "timezone": "UTC"},
    )
    assert response.status_code == 303


def test_odd_slugs_are_404(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    for slug in ("a%00b", "UPPER", "-x-", "a" * 100, "%E2%80%AE"):
        assert client.get(f"/o/{slug}/").status_code == 404, slug


def test_out_of_range_paging_is_ignored(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    for before in ("99999999999999999999999", "-5", "0", "1e9", "abc"):
        assert client.get(f"/o/{org.slug}/audit?before={before}").status_code == 200, before


def test_overlong_names_get_a_message(db: Session, client) -> None:
    org = make_org(db)
    login(client, make_user(db, org).email)
    response = post_form(
        client,
        f"/o/{org.slug}/settings",
        {"name": "x" * 201, "default_language": "en", "timezone": "UTC"},
    )
    assert response.status_code == 400
    assert "Use at most 200 characters." in response.text
    response = post_form(
        client,
        f"/o/{org.slug}/staff",
        {"name": "y" * 201, "email": "y@example.org", "role": "staff"},
    )
    assert response.status_code == 400


def test_a_file_where_text_is_expected_is_400(db: Session, client) -> None:
    token = csrf_from(client, "/login")
    response = client.post(
        "/login",
        data={"csrf_token": token, "password": "x"},
        files={"email": ("e.txt", b"someone@example.org", "text/plain")},
    )
    assert response.status_code == 400


def test_database_errors_never_quote_values(db: Session) -> None:
    make_org(db, slug="taken")
    with pytest.raises(IntegrityError) as caught, db.begin_nested():
        db.add(Organization(slug="taken", name="secret-name-value", kind=OrgKind.UNION))
        db.flush()
    assert "secret-name-value" not in str(caught.value)


def test_ipv6_clients_are_counted_by_their_slash_64() -> None:
    assert throttle_address("2001:db8:1:2:aaaa::1") == throttle_address("2001:db8:1:2:ffff::9")
    assert throttle_address("2001:db8:1:2::1") != throttle_address("2001:db8:1:3::1")
    # IPv4 clients of a dual-stack listener are each their own address, not one /64.
    assert throttle_address("::ffff:198.51.100.7") == "198.51.100.7"
    assert throttle_address("::ffff:198.51.100.7") != throttle_address("::ffff:203.0.113.9")
    assert throttle_address("203.0.113.9") == "203.0.113.9"
    assert throttle_address("testclient") == "testclient"
