"""Another organization's data is unreachable: 404, never its content."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.authz import Role
from ratify.errors import NotFound
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login


def test_pages_of_an_organization_you_are_not_in_are_404(db: Session, client) -> None:
    mine, theirs = make_org(db), make_org(db)
    me = make_user(db, mine, Role.ADMIN)
    make_user(db, theirs, Role.ADMIN)
    login(client, me.email)
    for path in ("/", "/staff", "/audit", "/settings"):
        response = client.get(f"/o/{theirs.slug}{path}")
        assert response.status_code == 404, path
        assert theirs.name not in response.text


def test_another_organizations_staff_role_by_id_is_404(db: Session, client) -> None:
    mine, theirs = make_org(db), make_org(db)
    me = make_user(db, mine, Role.ADMIN)
    them = make_user(db, theirs, Role.STAFF)
    their_role = accounts.list_staff(db, theirs)[0]
    assert their_role.user_id == them.id
    login(client, me.email)
    token = csrf_from(client, f"/o/{mine.slug}/staff")
    for action, data in (("role", {"role": "observer"}), ("remove", {}), ("link", {})):
        response = client.post(
            f"/o/{mine.slug}/staff/{their_role.id}/{action}", data={**data, "csrf_token": token}
        )
        assert response.status_code == 404, action
    db.refresh(their_role)
    assert their_role.role == Role.STAFF
    assert accounts.role_in(db, them, theirs) == Role.STAFF


def test_service_refuses_an_id_from_another_organization(db: Session) -> None:
    mine, theirs = make_org(db), make_org(db)
    make_user(db, theirs)
    their_role = accounts.list_staff(db, theirs)[0]
    with pytest.raises(NotFound):
        accounts.get_staff_role(db, mine, their_role.id)


def test_malformed_ids_are_404_not_500(db: Session, client) -> None:
    org = make_org(db)
    me = make_user(db, org)
    login(client, me.email)
    token = csrf_from(client, f"/o/{org.slug}/staff")
    response = client.post(f"/o/{org.slug}/staff/not-a-uuid/remove", data={"csrf_token": token})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.STAFF, "/staff", 403),
        (Role.STAFF, "/audit", 403),
        (Role.OBSERVER, "/audit", 200),
        (Role.OBSERVER, "/settings", 403),
        (Role.COMMITTEE, "/", 200),
        (Role.COMMITTEE, "/staff", 403),
        (Role.ADMIN, "/settings", 200),
    ],
)
def test_roles_reach_what_their_permissions_allow(
    db: Session, client, role: Role, path: str, status: int
) -> None:
    org = make_org(db)
    make_user(db, org, Role.ADMIN)
    user = make_user(db, org, role)
    login(client, user.email)
    assert client.get(f"/o/{org.slug}{path}").status_code == status


def test_signed_out_visitor_is_sent_to_sign_in(db: Session, client) -> None:
    org = make_org(db)
    response = client.get(f"/o/{org.slug}/staff")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/o/{org.slug}/staff"
    # The same for an organization that does not exist: no hint either way.
    assert client.get("/o/no-such-org/staff").status_code == 303
