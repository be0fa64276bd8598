"""Turnout while a vote is open (never a count of choices), links shown or reissued by staff
(audited), and the mail-house file (administrators only, no second factor)."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.votes import casting
from ratify.votes.models import Receipt, SecondFactor
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


def test_the_mail_house_file_has_links_and_addresses_never_the_second_factor(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.POSTAL_CODE)
    path = f"/o/{u.org.slug}/votes/{vote.id}/mail-house.csv"
    login(client, u.staff.email)
    assert client.get(path).status_code == 403  # administrators only
    client.cookies.clear()
    login(client, u.admin.email)
    response = client.get(path)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    for row in rows:
        client.ledger.add(row["link"].rpartition("/")[2])
    assert [r["member_number"] for r in rows] == [
        "1001", "1002", "1003", "1004", "1005", "1006", "2001", "2002", "2003"
    ]  # fmt: skip
    first = rows[0]
    assert first["link"] == settings.base_url + link_of(
        settings.secret_key, voter(db, vote, "1001")
    )
    assert "factor" not in ",".join(rows[0]) and "94110" not in first["link"]
    assert "postal_code" in first  # the address is there for the envelope window
    exported = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.mail_house_exported"))
    assert [e.data for e in exported] == [{"rows": 9}]
    assert db.scalars(select(Receipt)).all() == []
    assert casting.votes_to_mix(db) == []
