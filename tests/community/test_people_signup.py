"""The public sign-up link: a phone-first form that needs no account, refuses bad input
with messages and writes nothing then, and keeps bots out with a honeypot and a throttle."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.community import people
from ratify.community.models import ConstituencyMember, PersonSource, PersonStatus
from ratify.orgs.services import org_today
from ratify.rosters.models import Member
from ratify.throttle.models import ThrottleHit
from tests.community.support import make_community, make_constituency
from tests.helpers import csrf_from

GOOD = {
    "first_name": "Rosa",
    "last_name": "Parks",
    "phone": "(415) 555-0132",
    "email": "",
    "area": "12 Elm St",
    "relationship": "tenant",
    "preferred_language": "es",
    "consent": "yes",
}


def _counts(db: Session) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(model))
        for model in (Member, ConstituencyMember, ThrottleHit, AuditEvent)
    )


def _sign_up(client, code: str, **changes: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client, f"/join/{code}")
    return client.post(f"/join/{code}", data={**GOOD, **changes, "csrf_token": token})


def _people(db: Session, constituency) -> list[tuple[ConstituencyMember, Member]]:  # type: ignore[no-untyped-def]
    db.expire_all()
    rows = db.execute(
        select(ConstituencyMember, Member)
        .join(Member, Member.id == ConstituencyMember.member_id)
        .where(ConstituencyMember.constituency_id == constituency.id)
    ).all()
    return [(p, m) for p, m in rows]


def test_the_form_shows_choices_languages_consent_and_a_hidden_trap(db: Session, client) -> None:
    org = make_community(db)
    c = make_constituency(db, org, consent_text="We keep your details for the tenants' union.")
    page = client.get(f"/join/{c.signup_code}")
    assert page.status_code == 200
    text = page.text
    assert c.name in text and org.name in text
    assert "<option>12 Elm St</option>" in text and "<option>worker</option>" in text
    assert 'value="es"' in text and "Español" in text
    assert "We keep your details for the tenants&#39; union." in text
    assert 'type="tel"' in text and 'autocomplete="tel"' in text
    trap = text[text.index('aria-hidden="true"') - 40 : text.index('name="website"') + 80]
    assert 'class="visually-hidden"' in trap and 'tabindex="-1"' in trap
    assert 'autocomplete="off"' in trap


def test_default_consent_line_when_the_constituency_has_none(db: Session, client) -> None:
    c = make_constituency(db, make_community(db))
    assert "share them with nobody else" in client.get(f"/join/{c.signup_code}").text


def test_sign_up_waits_for_approval_then_is_approved(db: Session, client) -> None:
    org = make_community(db)
    c = make_constituency(db, org)
    response = _sign_up(client, c.signup_code)
    assert response.status_code == 200
    assert "An organizer will check it" in response.text
    ((person, member),) = _people(db, c)
    assert person.status == PersonStatus.PENDING
    assert person.source == PersonSource.SIGNUP
    assert person.approved_on is None and person.consented_at is not None
    assert person.joined_on == org_today(org)
    assert (person.area, person.relationship) == ("12 Elm St", "tenant")
    assert member.organization_id == org.id
    assert (member.first_name, member.last_name, member.sort_name) == (
        "Rosa",
        "Parks",
        "parks rosa",
    )
    assert member.phone == "+14155550132" and member.preferred_language == "es"
    assert member.member_number.startswith("J") and len(member.member_number) == 8
    people.approve(db, org, person, actor=None, today=date(2026, 12, 1))
    assert person.status == PersonStatus.APPROVED and person.approved_on == date(2026, 12, 1)


def test_sign_up_without_approval_counts_at_once(db: Session, client) -> None:
    org = make_community(db)
    c = make_constituency(
        db, org, approval_required=False, area_choices=[], relationship_choices=[]
    )
    response = _sign_up(client, c.signup_code, area="", relationship="", email="Rosa@Example.ORG")
    assert response.status_code == 200
    assert "You are now a member of" in response.text
    ((person, member),) = _people(db, c)
    assert person.status == PersonStatus.APPROVED
    assert person.approved_on == person.joined_on == org_today(org)
    assert member.email == "rosa@example.org"


def test_the_thanks_page_echoes_nothing_typed(db: Session, client) -> None:
    c = make_constituency(db, make_community(db))
    response = _sign_up(client, c.signup_code, first_name="Zebulon", email="zeb@example.org")
    assert response.status_code == 200
    assert "Zebulon" not in response.text and "zeb@example.org" not in response.text
    assert "555-0132" not in response.text and "5550132" not in response.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"phone": "", "email": ""}, "phone", "Give a phone number or an email address"),
        ({"phone": "12"}, "phone", "This is not a phone number."),
        ({"email": "not-an-email"}, "email", "This is not an email address."),
        ({"consent": ""}, "consent", "Tick the box to agree"),
        ({"area": "99 Nowhere Rd"}, "area", "Choose one of the areas listed."),
        ({"area": ""}, "area", "Choose where you live or work."),
        ({"relationship": "landlord"}, "relationship", "Choose one of the relationships listed."),
        ({"first_name": "", "last_name": ""}, "first_name", "Enter a name."),
        ({"preferred_language": "xx"}, "preferred_language", "Choose one of the languages"),
    ],
)
def test_bad_input_is_400_with_a_message_and_writes_nothing(
    db: Session, client, changes: dict[str, str], field: str, message: str
) -> None:
    c = make_constituency(db, make_community(db))
    client.get(f"/join/{c.signup_code}")
    before = _counts(db)
    response = _sign_up(client, c.signup_code, **changes)
    assert response.status_code == 400
    assert message in response.text
    assert f'id="f-{field}-error"' in response.text
    assert _counts(db) == before
    # What the person typed is kept, so they only fix the one field.
    if field != "first_name":
        assert 'value="Rosa"' in response.text


def test_closed_archived_or_unknown_links_are_404(db: Session, client) -> None:
    org = make_community(db)
    closed = make_constituency(db, org, signup_open=False)
    from ratify.db import utcnow

    archived = make_constituency(db, org, archived_at=utcnow())
    client.get("/login")  # a CSRF cookie, to reach the handler at all
    token = csrf_from(client, "/login")
    for code in (closed.signup_code, archived.signup_code, "no-such-code"):
        assert client.get(f"/join/{code}").status_code == 404, code
        before = _counts(db)
        response = client.post(f"/join/{code}", data={**GOOD, "csrf_token": token})
        assert response.status_code == 404, code
        assert _counts(db) == before


def test_a_filled_honeypot_looks_like_success_and_writes_nothing(db: Session, client) -> None:
    c = make_constituency(db, make_community(db))
    real = _sign_up(client, c.signup_code)
    before = _counts(db)
    trapped = _sign_up(client, c.signup_code, website="http://spam.example")
    assert trapped.status_code == 200
    assert trapped.text.replace(_csrf(trapped.text), "") == real.text.replace(_csrf(real.text), "")
    assert _counts(db) == before
    # Even with nonsense in the other fields, the bot learns nothing from a 400.
    assert _sign_up(client, c.signup_code, website="x", phone="", email="").status_code == 200
    assert _counts(db) == before


def _csrf(text: str) -> str:
    marker = 'name="csrf_token" value="'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]


def test_too_many_sign_ups_from_one_address_are_429_and_write_nothing(db: Session, client) -> None:
    c = make_constituency(db, make_community(db))
    for n in range(people.SIGNUPS_PER_ADDRESS):
        assert _sign_up(client, c.signup_code, first_name=f"Person {n}").status_code == 200
    before = _counts(db)
    response = _sign_up(client, c.signup_code, first_name="One too many")
    assert response.status_code == 429
    assert "Too many people signed up from this connection" in response.text
    assert _counts(db) == before
    assert len(_people(db, c)) == people.SIGNUPS_PER_ADDRESS


def test_failed_attempts_do_not_use_up_the_throttle(db: Session, client) -> None:
    c = make_constituency(db, make_community(db))
    for _ in range(people.SIGNUPS_PER_ADDRESS + 1):
        assert _sign_up(client, c.signup_code, consent="").status_code == 400
    assert _sign_up(client, c.signup_code).status_code == 200


def test_member_numbers_are_unique_in_the_organization(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org, approval_required=False)
    fields = people.PersonFields("Ann", "Lee", phone="4155550100", area="12 Elm St",
                                 relationship="tenant", consent=True)  # fmt: skip
    numbers = {
        people.sign_up(db, org, c, fields, today=date(2026, 12, 1)).member_id for _ in range(20)
    }
    members = db.scalars(select(Member).where(Member.id.in_(numbers))).all()
    assert len({m.member_number for m in members}) == 20


def test_the_service_needs_consent_and_an_open_link(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org)
    fields = people.PersonFields("Ann", phone="4155550100", area="3 Oak Ave", relationship="worker")
    with pytest.raises(people.PersonInvalid) as caught:
        people.sign_up(db, org, c, fields, today=date(2026, 12, 1))
    assert set(caught.value.errors) == {"consent"}
    c.signup_open = False
    from ratify.errors import NotFound

    with pytest.raises(NotFound):
        people.sign_up(db, org, c, people.PersonFields("Ann", phone="4155550100", consent=True),
                       today=date(2026, 12, 1))  # fmt: skip


def test_choices_match_whatever_the_case(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org)
    fields = people.PersonFields("Ann", email="ann@example.org", area="12 elm st",
                                 relationship="TENANT", consent=True)  # fmt: skip
    person = people.sign_up(db, org, c, fields, today=date(2026, 12, 1))
    assert (person.area, person.relationship) == ("12 Elm St", "tenant")
