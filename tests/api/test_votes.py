"""Votes through the API: list, one vote with its voter list in counts, turnout; another
organization's vote is 404; nothing counts choices while the vote is open."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.votes import casting
from ratify.votes.models import SecondFactor
from tests.api.support import bearer, make_token
from tests.factories import make_org
from tests.votes.support import make_union
from tests.votes.test_casting import open_vote, voter


def test_votes_voter_list_and_turnout_in_counts_never_choices(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number in ("1001", "2001"):
        access = casting.find_by_session(db, voter(db, vote, number).id, 1)
        assert access is not None
        casting.cast(db, access.seat, "yes")
    db.flush()
    headers = bearer(make_token(db, u.org, Role.OBSERVER, client))
    api = f"/api/v1/orgs/{u.org.slug}/votes"
    listed = client.get(api, headers=headers).json()
    assert [(v["id"], v["status"]) for v in listed["items"]] == [(str(vote.id), "open")]
    detail = client.get(f"{api}/{vote.id}", headers=headers).json()
    assert detail["voter_list"] == {
        "fingerprint": vote.voter_fingerprint,
        "eligible": 9,
        "excluded": 1,
        "challenged": 0,
        "missing_second_factor": 0,
        "groups": {"RN": 6, "TECH": 3},
        "small_groups": ["TECH"],
    }
    turnout = client.get(f"{api}/{vote.id}/turnout", headers=headers).json()
    assert (turnout["eligible"], turnout["voted"]) == (9, 2)
    assert [(g["group"], g["voted"], g["online"]) for g in turnout["groups"]] == [
        ("RN", 1, 1),
        ("TECH", 1, 1),
    ]
    assert sum(h["voted"] for h in turnout["hourly"]) == 2
    for answer in (listed, detail, turnout):
        assert "yes" not in str(answer).lower()  # no count of choices, nor any choice
    # Another organization's token finds nothing of this vote.
    other = bearer(make_token(db, make_org(db), Role.STAFF, client))
    other_api = api.replace(u.org.slug, "nope")
    assert client.get(f"{api}/{vote.id}", headers=other).status_code == 404
    assert client.get(other_api, headers=headers).status_code == 404
    assert client.get(f"{api}/{vote.id}/turnout").status_code == 401
