"""The decision vote on an offer, from set-up to certified result: created from the offer,
its electorate frozen from the constituency's criteria at the cutoff, members voting on
their phones with the last digits of the phone they signed up with, the count, the
committee's signatures, and the outcome written back to the offer (demands reopened after a
rejection, won after an acceptance). Another organization reaches none of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.community import campaigns, people
from ratify.community.decision import create_decision_vote
from ratify.community.models import (
    Constituency,
    Demand,
    DemandStatus,
    DemandVersion,
    Offer,
    OfferStatus,
)
from ratify.rosters.models import Member
from ratify.security import password_hasher
from ratify.votes import casting, certify, paper, results, voters
from ratify.votes import services as votes
from ratify.votes.models import (
    Channel,
    SecondFactor,
    Vote,
    VoteDocument,
    VoteKind,
    Voter,
    VoteStatus,
)
from tests.api.support import bearer, make_token
from tests.community.support import make_community, make_constituency
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_from, login
from tests.votes.test_casting import link_of, sign_in, vote_through_pages
from tests.votes.test_published import _close

PHONES = [f"+1415555{n:04d}" for n in range(1201, 1209)]


def make_community_offer(db: Session):  # type: ignore[no-untyped-def]
    """Six approved Elm Street tenants, one on Oak Avenue (outside the areas), one waiting for
    approval; a campaign with two demands and an offer meeting one of them."""
    org = make_community(db)
    leader = make_user(db, org, Role.STAFF)
    committee = [make_user(db, org, Role.COMMITTEE) for _ in range(2)]
    constituency = make_constituency(
        db, org, criteria={"areas": ["12 Elm St"]}, approval_required=True
    )
    people_in = []
    for n, phone in enumerate(PHONES):
        area = "3 Oak Ave" if n == 6 else "12 Elm St"
        person = people.sign_up(
            db, org, constituency,
            people.PersonFields(first_name=f"Tenant{n}", last_name="Resident", phone=phone,
                                area=area, relationship="tenant", preferred_language="en",
                                consent=True),
            today=date(2026, 10, 1), phone_region="US",
        )  # fmt: skip
        if n != 7:
            people.approve(db, org, person, actor=leader, today=date(2026, 10, 2))
        people_in.append(person)
    maker = campaigns.create_decision_maker(
        db, org, actor=leader,
        fields=campaigns.DecisionMakerFields("Pat Landlord", "Owner", "Acme Properties"),
    )  # fmt: skip
    campaign = campaigns.create_campaign(
        db, org, actor=leader,
        fields=campaigns.CampaignFields("Repairs now", "Fix the buildings", str(constituency.id)),
    )  # fmt: skip
    demands = [
        campaigns.add_demand(
            db,
            org,
            campaign,
            actor=leader,
            fields=campaigns.DemandFields(title, text, "pressing", str(maker.id), ""),
        )
        for title, text in (
            ("Heat", "Heat in every unit by November"),
            ("Rent freeze", "No increase for two years"),
        )
    ]
    offer = campaigns.log_offer(
        db, org, campaign, actor=leader,
        fields=campaigns.OfferFields(
            made_on="2026-11-20", made_by="Pat Landlord", text="## Offer\n\nHeat fixed; rent +3%.",
            decision_maker_id=str(maker.id),
            assessments={str(demands[0].id): ("met", "All units"),
                         str(demands[1].id): ("not_met", "3% increase")},
        ),
    )  # fmt: skip
    db.flush()
    return org, leader, committee, constituency, people_in, demands, offer


def _setup_form(client, page: str, vote: Vote, constituency: Constituency, committee) -> dict:  # type: ignore[no-untyped-def]
    opens = datetime.now(UTC) + timedelta(days=1)
    form = {
        "csrf_token": csrf_from(client, page),
        "title": vote.title,
        "opens": opens.strftime("%Y-%m-%dT%H:%M"),
        "closes": (opens + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "cutoff": "2026-11-25",
        "constituency": str(constituency.id),
        "tally_grouping": "aggregate",
        "threshold_fraction": "1/2",
        "threshold_units": "aggregate",
        "signatures_required": "2",
        "second_factor": "phone_last4",
    }
    for lang in vote.languages:
        form[f"question_{lang}"] = vote.question[lang]
        for position, option in enumerate(vote.options):
            form[f"option_{position}_{lang}"] = option.labels[lang]
    return {**form, "committee": [str(c.id) for c in committee]}


def test_an_offer_decision_from_the_offer_to_the_certified_rejection(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    org, leader, committee, constituency, _, demands, offer = make_community_offer(db)
    login(client, leader.email)
    offer_page = f"/o/{org.slug}/offers/{offer.id}"
    created = client.post(
        f"{offer_page}/decision-vote", data={"csrf_token": csrf_from(client, offer_page)}
    )
    assert created.status_code == 303
    vote = votes.get_vote(
        db, org, db.scalars(select(Vote.id).where(Vote.offer_id == offer.id)).one()
    )
    assert created.headers["location"] == f"/o/{org.slug}/votes/{vote.id}/edit"
    assert vote.kind == VoteKind.OFFER_DECISION and vote.status == VoteStatus.DRAFT
    assert vote.second_factor == SecondFactor.PHONE_LAST4
    assert vote.eligibility == {"constituency": str(constituency.id)}
    assert [o.labels["en"] for o in vote.options] == [
        "Accept the offer", "Reject it and keep campaigning",
    ]  # fmt: skip
    summaries = db.scalars(
        select(VoteDocument.summary_markdown).where(VoteDocument.vote_id == vote.id)
    )
    assert set(summaries) == {"## Offer\n\nHeat fixed; rent +3%."}
    db.expire_all()
    assert db.get_one(Offer, offer.id).status == OfferStatus.VOTING
    # An offer already being voted on is not put to a second vote.
    again = client.post(
        f"{offer_page}/decision-vote", data={"csrf_token": csrf_from(client, offer_page)}
    )
    assert again.status_code == 409
    assert len(db.scalars(select(Vote).where(Vote.offer_id == offer.id)).all()) == 1

    # Set-up through the page: the constituency replaces the union's rule.
    vote = votes.get_vote(db, org, vote.id)
    edit = f"/o/{org.slug}/votes/{vote.id}/edit"
    page = client.get(edit)
    assert page.status_code == 200 and constituency.name in page.text
    assert 'name="units"' not in page.text
    bad = _setup_form(client, edit, vote, constituency, committee) | {"constituency": "nope"}
    refused = client.post(edit, data=bad)
    assert refused.status_code == 400 and "Choose the constituency that decides" in refused.text
    saved = client.post(edit, data=_setup_form(client, edit, vote, constituency, committee))
    assert saved.status_code == 303, saved.text
    detail = f"/o/{org.slug}/votes/{vote.id}"
    assert constituency.name in client.get(detail).text
    scheduled = client.post(f"{detail}/schedule", data={"csrf_token": csrf_from(client, detail)})
    assert scheduled.status_code == 303
    db.expire_all()
    vote = votes.get_vote(db, org, vote.id)
    assert vote.status == VoteStatus.SCHEDULED
    listed = {
        v.member_number: (v.status.value, v.reason, v.factor)
        for v in db.scalars(select(Voter).where(Voter.vote_id == vote.id))
    }
    summary = voters.summarize(db, vote)
    assert (summary.eligible, summary.excluded, summary.missing_factor) == (6, 2, 0)
    assert sorted(r for s, r, _ in listed.values() if s == "excluded") == [
        "not_approved", "outside_areas",
    ]  # fmt: skip
    assert {f for s, _, f in listed.values() if s == "eligible"} == {SecondFactor.PHONE_LAST4}

    # Open: members vote on their phones, answering with their phone's last 4 digits.
    now = datetime.now(UTC)
    db.execute(update(Vote).where(Vote.id == vote.id).values(
        opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=1)))  # fmt: skip
    db.expire_all()
    vote = votes.get_vote(db, org, vote.id)
    votes.advance(db, org, vote)
    assert vote.status == VoteStatus.OPEN
    eligible = db.scalars(
        select(Voter).where(Voter.vote_id == vote.id, Voter.status == "eligible")
        .order_by(Voter.member_number)
    ).all()  # fmt: skip
    phones = {m.id: m for m in db.scalars(select(Member).where(Member.organization_id == org.id))}
    db.commit()
    client.cookies.clear()
    first = eligible[0]
    wrong = sign_in(client, link_of(settings.secret_key, first), "0000")
    assert wrong.status_code == 400
    choices = ["yes", "yes", "no", "no", "no", "no"]
    for v, choice in zip(eligible, choices, strict=True):
        client.cookies.clear()
        receipt = vote_through_pages(
            client, link_of(settings.secret_key, v), phones[v.member_id].phone[-4:], choice
        )
        assert "receipt" in receipt.lower()
    client.cookies.clear()

    _close(db, vote)
    vote = votes.get_vote(db, org, vote.id)
    db.commit()
    result = f"/o/{org.slug}/votes/{vote.id}/result"
    login(client, committee[0].email)
    assert (
        client.post(f"{result}/count", data={"csrf_token": csrf_from(client, result)}).status_code
        == 303
    )
    for _n, member in enumerate(committee):
        client.cookies.clear()
        login(client, member.email)
        signed = client.post(
            f"{result}/sign", data={"csrf_token": csrf_from(client, result), "password": PASSWORD}
        )
        assert signed.status_code == 303, signed.text
    db.expire_all()
    vote = db.get_one(Vote, vote.id)
    assert vote.status == VoteStatus.CERTIFIED
    assert "The offer is rejected: the campaign goes on." in client.get(result).text

    # The outcome on the offer, and the demands reopened for revision with their history.
    decided = db.get_one(Offer, offer.id)
    assert decided.status == OfferStatus.REJECTED and decided.decided_at is not None
    assert decided.outcome is not None
    assert decided.outcome["vote_id"] == str(vote.id) and decided.outcome["passed"] is False
    assert decided.outcome["counts"] == {"yes": 2, "no": 4}
    assert decided.outcome["box_digest"] == vote.box_digest
    for demand in demands:
        fresh = db.get_one(Demand, demand.id)
        assert fresh.status == DemandStatus.REVISING and fresh.version == 2
        versions = db.scalars(
            select(DemandVersion).where(DemandVersion.demand_id == demand.id)
            .order_by(DemandVersion.version)
        ).all()  # fmt: skip
        assert [v.status for v in versions] == [DemandStatus.PRESSING, DemandStatus.REVISING]
    client.cookies.clear()
    login(client, leader.email)
    record = client.get(f"/o/{org.slug}/campaigns/{decided.campaign_id}/record")
    assert record.status_code == 200 and "rejected" in record.text.lower()


def open_decision_vote(db: Session, settings, org, leader, committee, offer) -> Vote:  # type: ignore[no-untyped-def]
    """The offer's decision vote, set up with its committee, scheduled and open now."""
    vote = create_decision_vote(
        db, org, offer, actor=leader, title="Offer", cutoff=date(2026, 11, 25)
    )
    fields = votes.saved_fields(vote, [c.id for c in committee])
    opens = datetime.now(UTC) + timedelta(hours=1)
    votes.update_vote(db, org, vote, actor=leader, fields=replace(
        fields, opens_at=opens, closes_at=opens + timedelta(days=1),
        committee_ids=frozenset(c.id for c in committee), signatures_required=2,
    ))  # fmt: skip
    votes.schedule(db, org, vote, actor=leader, secret_key=settings.secret_key)
    now = datetime.now(UTC)
    db.execute(update(Vote).where(Vote.id == vote.id).values(
        opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=1)))  # fmt: skip
    db.expire_all()
    vote = votes.get_vote(db, org, vote.id)
    votes.advance(db, org, vote)
    assert vote.status == VoteStatus.OPEN
    return vote


def test_an_offer_accepted_online_and_on_paper_wins_the_demands_it_met(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    org, leader, committee, _constituency, _, demands, offer = make_community_offer(db)
    vote = open_decision_vote(db, settings, org, leader, committee, offer)
    eligible = db.scalars(
        select(Voter).where(Voter.vote_id == vote.id, Voter.status == "eligible")
    ).all()
    # Five vote on their phones; the sixth at the meeting, on paper, struck off the list.
    for v, choice in zip(eligible[:5], ["yes", "yes", "yes", "no", "yes"], strict=True):
        casting.cast(db, casting.Seat(v.id, 1, vote.id), choice)
    paper.strike_off(db, org, vote, actor=leader, member_number=eligible[5].member_number,
                     channel=Channel.IN_PERSON)  # fmt: skip
    _close(db, vote)
    vote = votes.get_vote(db, org, vote.id)
    batch = paper.enter_batch(db, org, vote, actor=committee[0], group="all",
                              label="Meeting box", counts={"yes": "1", "no": "0"})  # fmt: skip
    paper.confirm_batch(db, org, vote, actor=committee[1], batch_id=batch.id)
    results.count(db, org, vote, actor=committee[0], secret_key=settings.secret_key)
    for member in committee:
        certify.sign(db, settings, password_hasher(settings), org, vote, user=member,
                     password=PASSWORD, client_address="10.0.0.1")  # fmt: skip
    db.expire_all()
    decided = db.get_one(Offer, offer.id)
    assert decided.status == OfferStatus.ACCEPTED and decided.outcome["counts"] == {
        "yes": 5,
        "no": 1,
    }
    assert db.get_one(Demand, demands[0].id).status == DemandStatus.WON
    assert db.get_one(Demand, demands[1].id).status == DemandStatus.PRESSING  # not met


def test_another_organization_reaches_no_offer_or_decision_vote(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    org, leader, _, _, _, _, offer = make_community_offer(db)
    vote = create_decision_vote(
        db, org, offer, actor=leader, title="Offer", cutoff=date(2026, 11, 25)
    )
    other = make_community(db)
    outsider = make_user(db, other, Role.ADMIN)
    secret = make_token(db, other, Role.STAFF, client)
    db.commit()
    login(client, outsider.email)
    for path in (f"/o/{other.slug}/votes/{vote.id}", f"/o/{other.slug}/votes/{vote.id}/edit",
                 f"/o/{other.slug}/offers/{offer.id}"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    own = f"/o/{other.slug}/votes"
    refused = client.post(
        f"/o/{other.slug}/offers/{offer.id}/decision-vote",
        data={"csrf_token": csrf_from(client, own)},
    )
    assert refused.status_code == 404
    theirs = f"/api/v1/orgs/{other.slug}/votes"
    assert client.get(f"{theirs}/{vote.id}", headers=bearer(secret)).status_code == 404
    listed = client.get(theirs, headers=bearer(secret))
    assert listed.status_code == 200 and str(vote.id) not in listed.text
    # Their token on our organization's URL: not found either.
    ours = f"/api/v1/orgs/{org.slug}/votes/{vote.id}"
    assert client.get(ours, headers=bearer(secret)).status_code == 404
    # The organization's own token sees its decision vote through the API.
    mine = make_token(db, org, Role.STAFF, client)
    db.commit()
    read = client.get(ours, headers=bearer(mine))
    assert read.status_code == 200 and read.json()["kind"] == "offer_decision"
    # An observer may not put an offer to a vote.
    client.cookies.clear()
    login(client, make_user(db, org, Role.OBSERVER).email)
    db.commit()
    page = f"/o/{org.slug}/votes"
    assert (
        client.post(
            f"/o/{org.slug}/offers/{offer.id}/decision-vote",
            data={"csrf_token": csrf_from(client, page)},
        ).status_code
        == 403
    )
