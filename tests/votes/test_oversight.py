"""Turnout while a vote is open (never a count of choices), links shown or reissued by staff
(audited), and the mail-house file (administrators only, no second factor)."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.votes import casting
from ratify.votes import services as votes
from ratify.votes.models import Receipt, SecondFactor, Voter
from tests.helpers import csrf_from, login
from tests.votes.support import make_union
from tests.votes.test_casting import link_of, open_vote, sign_in, vote_through_pages, voter


def test_turnout_moves_as_members_vote_and_no_page_counts_choices(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    base = f"/o/{u.org.slug}/votes/{vote.id}"
    login(client, u.staff.email)
    before = client.get(base + "/turnout").text
    assert "0 of 9 eligible voters have voted (0.0%)" in before and "Nobody has voted yet" in before
    member = client.__class__(client.app, base_url="http://testserver", follow_redirects=False)
    member.ledger = client.ledger
    choices = {"1001": "yes", "1002": "yes", "2001": "no"}
    for number, choice in choices.items():
        vote_through_pages(
            member, link_of(settings.secret_key, voter(db, vote, number)), "", choice
        )
        member.cookies.clear()
    page = client.get(base + "/turnout").text
    assert "3 of 9 eligible voters have voted (33.3%)" in page
    assert '<th scope="row">RN</th><td>6</td><td>2</td><td>33.3</td><td>2</td>' in page
    assert '<th scope="row">TECH</th><td>3</td><td>1</td><td>33.3</td><td>1</td>' in page
    assert "<svg" in page and "<rect" in page
    # While open, no staff page says how many chose what (rule 3).
    for path in ("", "/turnout", "/voters", "/links"):
        text = client.get(base + path).text
        for word in ("Yes, I accept", "No, I reject"):
            assert (
                f"{word} the agreement: 2" not in text
                and f"{word} the agreement</td><td>" not in text
            )
        assert "2 yes" not in text.lower() and "yes: 2" not in text.lower()
    client.cookies.clear()
    login(client, u.committee[0].email)
    assert client.get(base + "/turnout").status_code == 200


def test_staff_show_and_reissue_a_link_each_audited(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4)
    base = f"/o/{u.org.slug}/votes/{vote.id}/links"
    login(client, u.staff.email)
    token = csrf_from(client, base)
    shown = client.post(base + "/show", data={"csrf_token": token, "member_number": "1003"})
    old_link = link_of(settings.secret_key, voter(db, vote, "1003"))
    client.ledger.add(old_link.rpartition("/")[2])
    assert shown.status_code == 200 and f"{settings.base_url}{old_link}" in shown.text
    missing = client.post(base + "/show", data={"csrf_token": token, "member_number": "9001"})
    assert missing.status_code == 404  # the fee payer is not on the list
    reissued = client.post(base + "/reissue", data={"csrf_token": token, "member_number": "1003"})
    assert reissued.status_code == 200 and "no longer works" in reissued.text
    db.expire_all()
    new_link = link_of(settings.secret_key, voter(db, vote, "1003"))
    client.ledger.add(new_link.rpartition("/")[2])
    assert new_link != old_link
    assert client.get(old_link).status_code == 404
    assert sign_in(client, new_link, "1003").status_code == 303
    actions = [
        (e.action, e.data.get("member_number"))
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        if e.action.startswith("vote.link") or e.action == "vote.credential_reissued"
    ]
    assert actions == [("vote.link_shown", "1003"), ("vote.credential_reissued", "1003")]
    # Observers and the committee cannot see links at all.
    client.cookies.clear()
    login(client, u.committee[0].email)
    assert client.get(base).status_code == 403


def _mail_house(client, u, vote):  # type: ignore[no-untyped-def]
    base = f"/o/{u.org.slug}/votes/{vote.id}"
    return client.post(
        base + "/mail-house.csv", data={"csrf_token": csrf_from(client, base + "/links")}
    )


def test_the_mail_house_file_has_links_and_addresses_never_the_second_factor(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(
        db, u, settings.secret_key, second_factor=SecondFactor.BIRTH_YEAR, mail_letters=True
    )
    path = f"/o/{u.org.slug}/votes/{vote.id}/mail-house.csv"
    login(client, u.staff.email)
    assert _mail_house(client, u, vote).status_code == 403  # administrators only
    client.cookies.clear()
    login(client, u.admin.email)
    assert client.get(path).status_code == 405  # a POST with its CSRF token, never a GET
    assert client.post(path, data={}).status_code == 403
    response = _mail_house(client, u, vote)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    for row in rows:
        client.ledger.add(row["link"].rpartition("/")[2])
    assert sorted(r["member_number"] for r in rows) == [
        "1001", "1002", "1003", "1004", "1005", "1006", "2001", "2002", "2003"
    ]  # fmt: skip
    by_number = {r["member_number"]: r for r in rows}
    expected = link_of(settings.secret_key, voter(db, vote, "1001"))
    assert by_number["1001"]["link"] == settings.base_url + expected
    assert by_number["1001"]["postal_code"] == "94110-1234"  # for the envelope window
    text_ = response.text
    assert not re.search(r"\b1981\b", text_) and "birth" not in text_  # member 1001's year of birth
    exported = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.mail_house_exported"))
    assert [e.data for e in exported] == [{"rows": 9}]
    assert db.scalars(select(Receipt)).all() == []
    assert casting.votes_to_mix(db) == []


def test_the_mail_house_file_leaves_out_member_numbers_when_they_are_the_factor(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(
        db, u, settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4, mail_letters=True
    )
    login(client, u.admin.email)
    response = _mail_house(client, u, vote)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    for row in rows:
        client.ledger.add(row["link"].rpartition("/")[2])
    assert [r["row"] for r in rows] == [str(n) for n in range(1, 10)]
    assert "member_number" not in rows[0]
    numbers = {v.member_number for v in db.scalars(select(Voter).where(Voter.vote_id == vote.id))}
    assert not [cell for row in rows for cell in row.values() if cell in numbers]


def test_no_mail_house_file_for_a_vote_without_letters_or_with_postal_codes(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.POSTAL_CODE)
    login(client, u.admin.email)
    refused = _mail_house(client, u, vote)
    assert refused.status_code == 409 and "without mailed letters" in refused.text
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.mail_house_exported")).all()
        == []
    )


def test_a_vote_whose_links_went_out_cannot_return_to_draft(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    """Returning to draft drops the voter list, and with it every link: refused once a link
    was shown to staff or exported for letters."""
    from tests.votes.support import ready_vote

    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=settings.secret_key)
    other = ready_vote(db, u)
    votes.schedule(db, u.org, other, actor=u.staff, secret_key=settings.secret_key)
    login(client, u.staff.email)
    base = f"/o/{u.org.slug}/votes/{vote.id}"
    token = csrf_from(client, base + "/links")
    shown = client.post(base + "/links/show", data={"csrf_token": token, "member_number": "1001"})
    client.ledger.add(link_of(settings.secret_key, voter(db, vote, "1001")).rpartition("/")[2])
    assert shown.status_code == 200
    refused = client.post(base + "/unschedule", data={"csrf_token": token})
    assert refused.status_code == 409 and "Reissue single links instead" in refused.text
    db.expire_all()
    assert votes.get_vote(db, u.org, vote.id).status.value == "scheduled"
    assert voter(db, vote, "1001") is not None
    # A vote whose links never left Ratify still can.
    votes.unschedule(db, u.org, other, actor=u.staff)
    assert votes.get_vote(db, u.org, other.id).status.value == "draft"
