"""After the close, each voter's link leads to the receipt codes counted (rule 7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from ratify.votes import published
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor, Vote, VoteStatus
from tests.votes.support import make_union
from tests.votes.test_casting import link_of, open_vote, sign_in, vote_through_pages, voter


def _close(db: Session, vote: Vote) -> None:
    now = datetime.now(UTC)
    db.execute(update(Vote).where(Vote.id == vote.id).values(closes_at=now - timedelta(minutes=1)))
    db.expire_all()
    org = vote.organization_id
    fresh = db.get_one(Vote, vote.id)
    from ratify.orgs.models import Organization

    votes.advance(db, db.get_one(Organization, org), fresh)
    assert fresh.status == VoteStatus.CLOSED
    db.flush()


def _code(page: str) -> str:
    found = re.search(r'<p class="receipt"><code>([A-Z0-9-]+)</code>', page)
    assert found is not None, page
    return found.group(1)


def test_receipts_are_published_to_voters_after_the_close_and_searchable(
    db: Session, client, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    codes = {}
    for number, choice in (("1001", "yes"), ("1002", "no"), ("1003", "yes")):
        client.cookies.clear()
        codes[number] = _code(
            vote_through_pages(
                client, link_of(settings.secret_key, voter(db, vote, number)), "", choice
            )
        )
    # While open: refused, and the page says when.
    early = client.get("/v/receipts")
    assert early.status_code == 409 and "published when voting closes" in early.text
    _close(db, vote)
    # A member who did not vote may look too: through their own link.
    client.cookies.clear()
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1004")), "").status_code
        == 303
    )
    listed = client.get("/v/receipts")
    assert listed.status_code == 200
    assert "3 in all" in listed.text
    shown = re.findall(r"<li><code>([A-Z0-9-]+)</code>", listed.text)
    assert shown == sorted(codes.values())  # in code order, never in casting order
    assert "accept" not in listed.text.lower() and "reject" not in listed.text.lower()
    # Typed back as members do: lower case, no dashes, a space.
    mine = codes["1002"]
    typed = mine.replace("-", "").lower()[:6] + " " + mine.replace("-", "").lower()[6:]
    found = client.get("/v/receipts", params={"q": typed})
    assert re.findall(r"<li><code>([A-Z0-9-]+)</code>", found.text) == [mine]
    missing = client.get("/v/receipts", params={"q": "ZZZZ-ZZZZ-ZZZZ-ZZZ2"})
    assert "No receipt begins with" in missing.text and "<li><code>" not in missing.text
    # Paged by code: two at a time here.
    monkeypatch.setattr(published, "SHOWN", 2)
    first = client.get("/v/receipts")
    assert re.findall(r"<li><code>([A-Z0-9-]+)</code>", first.text) == sorted(codes.values())[:2]
    more = re.search(r'href="/v/receipts\?after=([A-Z0-9]+)"', first.text)
    assert more is not None
    rest = client.get("/v/receipts", params={"after": more.group(1)})
    assert re.findall(r"<li><code>([A-Z0-9-]+)</code>", rest.text) == sorted(codes.values())[2:]
    # The voted page links to them now.
    client.cookies.clear()
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    assert "/v/receipts" in client.get("/v/ballot").text


def test_another_votes_receipts_are_not_listed(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    first = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    other = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    code = _code(
        vote_through_pages(client, link_of(settings.secret_key, voter(db, other, "1001")), "")
    )
    _close(db, first)
    client.cookies.clear()
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, first, "1001")), "").status_code
        == 303
    )
    listed = client.get("/v/receipts").text
    assert "0 in all" in listed and code not in listed


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("abcd-efgh", "ABCDEFGH"), (" 2345 6789 ", "23456789"), ("x" * 40, "X" * 16)],
)
def test_typed_codes_are_read_as_stored(typed: str, stored: str) -> None:
    assert published.normalize(typed) == stored
