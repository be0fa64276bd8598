"""A ratification from end to end, through the pages as people use them: a roster file
imported, a vote set up and scheduled (the voter list frozen from that roster), opened on
time, members voting through their personal links with their year of birth, turnout moving,
and no page or API answer counting choices while it is open."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.rosters import imports
from ratify.rosters import services as rosters
from ratify.rosters.models import ImportScope
from ratify.rosters.services import UnitFields
from ratify.votes import services as votes
from ratify.votes.models import Ballot, Receipt, Vote, VoteKind, VoteStatus
from tests.api.support import bearer, make_token
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login
from tests.votes.support import PDF
from tests.votes.test_casting import link_of, vote_through_pages, voter

ROSTER = (
    "Member ID,First Name,Last Name,Birth Date,Status\n"
    "5001,Ada,Lovelace,1985-12-10,member\n"
    "5002,Grace,Hopper,1976-12-09,member\n"
    "5003,Katherine,Johnson,1991-08-26,member\n"
    "5004,Dorothy,Vaughan,1990-09-20,member\n"
    "5005,Mary,Jackson,1981-04-09,member\n"
    "5006,Fee,Payer,1980-01-01,fee payer\n"
)


def test_a_ratification_from_roster_file_to_turnout(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    unit = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    staff = make_user(db, org, Role.STAFF)
    committee = [make_user(db, org, Role.COMMITTEE) for _ in range(2)]
    roster = imports.read_roster("payroll.csv", ROSTER.encode())
    imports.apply(
        db,
        org,
        imports.preview(
            db, org, roster, mapping=imports.guess_mapping(roster.headers),
            scope=ImportScope.UNIT, unit=unit, effective=date(2026, 1, 1), phone_region="US",
        ),
        actor_label="test",
        phone_region="US",
    )  # fmt: skip
    vote = votes.create_vote(
        db, org, actor=staff, kind=VoteKind.RATIFICATION, title="2027 contract", languages=["en"]
    )
    opens = datetime.now(UTC) + timedelta(days=1)
    votes.update_vote(
        db, org, vote, actor=staff,
        fields=votes.VoteFields(
            title="2027 contract", question={"en": "Do you accept the TA?"},
            options=[{"en": "Yes"}, {"en": "No"}], opens_at=opens,
            closes_at=opens + timedelta(days=7), cutoff=date(2026, 11, 15),
            unit_ids=frozenset({unit.id}), membership=frozenset({"member"}), good_standing=False,
            employment=frozenset({"active"}), joined_days_before=None,
            tally_grouping=votes.TallyGrouping.AGGREGATE, threshold=votes.Threshold(),
            committee_ids=frozenset(c.id for c in committee), signatures_required=2,
            second_factor=votes.SecondFactor.BIRTH_YEAR, mail_letters=False,
        ),
    )  # fmt: skip
    votes.save_document(db, org, vote, actor=staff, language="en",
                        summary="## Wages\n\n- 4% a year", pdf=PDF, pdf_name="ta.pdf")  # fmt: skip
    page = f"/o/{org.slug}/votes/{vote.id}"
    login(client, staff.email)
    scheduled = client.post(page + "/schedule", data={"csrf_token": csrf_from(client, page)})
    assert scheduled.status_code == 303
    db.expire_all()
    vote = votes.get_vote(db, org, vote.id)
    assert vote.status == VoteStatus.SCHEDULED
    # The voting window opens: the vote's next page view opens it.
    db.execute(update(Vote).where(Vote.id == vote.id)
               .values(opens_at=datetime.now(UTC) - timedelta(minutes=1)))  # fmt: skip
    assert "Status: Open" in client.get(page).text
    member = client.__class__(client.app, base_url="http://testserver", follow_redirects=False)
    member.ledger = client.ledger
    years = {"5001": "1985", "5002": "1976", "5003": "1991"}
    for number, choice in (("5001", "yes"), ("5002", "no"), ("5003", "yes")):
        link = link_of(settings.secret_key, voter(db, vote, number))
        client.ledger.add(link.rpartition("/")[2])
        receipt = vote_through_pages(member, link, years[number], choice)
        client.ledger.add(re.search(r"<code>([A-Z0-9-]+)</code>", receipt).group(1))  # type: ignore[union-attr]
        member.cookies.clear()
    # The fee payer was excluded by the rule: no link of theirs finds anything.
    excluded = voter(db, vote, "5006")
    assert (excluded.status.value, excluded.credential_hash) == ("excluded", None)
    assert member.get(link_of(settings.secret_key, excluded)).status_code == 404
    turnout = client.get(page + "/turnout").text
    assert "3 of 5 eligible voters have voted (60.0%)" in turnout
    api = client.get(
        f"/api/v1/orgs/{org.slug}/votes/{vote.id}/turnout",
        headers=bearer(make_token(db, org, Role.OBSERVER, client)),
    ).json()
    assert (api["eligible"], api["voted"]) == (5, 3)
    # Two chose Yes and one No: nothing anywhere says so while the vote is open.
    for path in ("", "/turnout", "/voters", "/links"):
        text = client.get(page + path).text
        assert not re.search(r"\bYes\b[^<]{0,20}\b2\b|\b2\b[^<]{0,20}\bYes\b", text), path
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Ballot)) == 3
    assert db.scalar(select(func.count()).select_from(Receipt)) == 3
