"""An offer's certified outcome written back to it and its demands, and the decision record:
printable for leaders, shareable with members by a link only while sharing is on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.community import campaigns as svc
from ratify.community.models import DemandStatus, Offer, OfferStatus
from ratify.errors import BadRequest, Conflict, NotFound
from ratify.votes.models import Vote, VoteKind, VoteStatus
from tests.community.test_campaigns import PDF, World
from tests.helpers import login, post_form


@pytest.fixture
def world(db: Session, client) -> World:  # type: ignore[no-untyped-def]
    return World(db, client)


def _offer(world: World, **data: str) -> Offer:
    before = {o.id for o in world.offers()}
    response = world.post_offer(world.offer_data(**data))
    assert response.status_code == 303, response.text
    (offer,) = [o for o in world.offers() if o.id not in before]
    return offer


def _outcome(passed: bool, yes: int = 31, no: int = 9) -> dict[str, Any]:
    return {
        "vote_id": "7b0c6f3e-0000-4000-8000-000000000001",
        "passed": passed,
        "counts": {"yes": yes, "no": no},
        "certified_at": "2026-04-02T18:30:00+00:00",
    }


def test_an_accepted_offer_wins_the_demands_it_meets(db: Session, world: World) -> None:
    dropped = world.demand("Laundry room", "Repair the machines")
    offer = _offer(
        world,
        **{f"assess_{world.rent.id}": "partly_met", f"assess_{dropped.id}": "not_met"},
    )
    svc.mark_voting(db, world.org, offer)
    assert offer.status == OfferStatus.VOTING
    svc.record_outcome(db, world.org, offer.id, _outcome(True))
    db.refresh(offer)
    assert offer.status == OfferStatus.ACCEPTED
    assert offer.outcome is not None and offer.outcome["counts"] == {"yes": 31, "no": 9}
    assert offer.decided_at == datetime(2026, 4, 2, 18, 30, tzinfo=UTC)
    for demand in (world.heat, world.rent, dropped):
        db.refresh(demand)
    assert (world.heat.status, world.heat.version) == (DemandStatus.WON, 2)
    assert (world.rent.status, world.rent.version) == (DemandStatus.PARTLY_WON, 2)
    assert (dropped.status, dropped.version) == (DemandStatus.PRESSING, 1)  # not met: untouched
    latest = svc.demand_history(db, world.heat)[0]
    assert (latest.version, latest.status, latest.changed_by_id) == (2, DemandStatus.WON, None)
    assert "accepted" in latest.note
    assert svc.demand_history(db, world.rent)[0].status == DemandStatus.PARTLY_WON
    event = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "offer.accepted", AuditEvent.object_id == str(offer.id)
        )
    ).one()
    assert event.data["demands"] == {str(world.heat.id): "won", str(world.rent.id): "partly_won"}

    # Certification retried with the same vote changes nothing; another vote is refused.
    svc.record_outcome(db, world.org, offer.id, _outcome(True))
    db.refresh(world.heat)
    assert world.heat.version == 2
    with pytest.raises(Conflict):
        svc.record_outcome(db, world.org, offer.id, {**_outcome(False), "vote_id": "other"})


def test_a_rejected_offer_reopens_the_pressing_demands_for_revision(
    db: Session, world: World
) -> None:
    won = world.demand("Lobby lights", "Lights in every hallway")
    svc.edit_demand(
        db, world.org, won, actor=world.leader,
        fields=svc.DemandFields(won.title, won.text, "won", str(world.landlord.id), "Fixed"),
    )  # fmt: skip
    offer = _offer(world, **{f"assess_{won.id}": "met"})
    svc.record_outcome(db, world.org, offer.id, _outcome(False, yes=4, no=40))
    db.refresh(offer)
    assert offer.status == OfferStatus.REJECTED
    assert offer.outcome is not None and offer.outcome["passed"] is False
    for demand in (world.heat, world.rent, won):
        db.refresh(demand)
    assert (world.heat.status, world.heat.version) == (DemandStatus.REVISING, 2)
    assert (world.rent.status, world.rent.version) == (DemandStatus.REVISING, 2)
    assert (won.status, won.version) == (DemandStatus.WON, 2)  # not pressing: left as it was
    latest = svc.demand_history(db, world.rent)[0]
    assert latest.status == DemandStatus.REVISING and latest.changed_by_id is None
    assert "rejected" in latest.note
    assert "Reopened for revision" in world.client.get(world.campaign_url).text


def test_outcome_write_back_refuses_what_it_cannot_apply(db: Session, world: World) -> None:
    offer = _offer(world)
    with pytest.raises(BadRequest):
        svc.record_outcome(db, world.org, offer.id, {"vote_id": "x", "passed": "yes"})
    other = World(db, world.client)
    with pytest.raises(NotFound):
        svc.record_outcome(db, other.org, offer.id, _outcome(True))
    with pytest.raises(NotFound):
        svc.mark_voting(db, other.org, offer)
    svc.set_offer_status(db, world.org, offer, actor=world.leader, status=OfferStatus.WITHDRAWN)
    with pytest.raises(Conflict):
        svc.record_outcome(db, world.org, offer.id, _outcome(True))
    with pytest.raises(Conflict):
        svc.mark_voting(db, world.org, offer)
    db.refresh(world.heat)
    assert world.heat.status == DemandStatus.PRESSING


def test_the_record_shows_the_constituency_demands_and_thread_with_outcomes(
    db: Session, world: World
) -> None:
    first = _offer(world, made_on="2026-02-01", text="February offer")
    second = _offer(world, made_on="2026-03-01", text="March offer")
    post_form(
        world.client,
        f"{world.campaign_url}/counter-proposals",
        {"made_on": "2026-02-10", "reply_to": str(first.id), "text": "Our February counter"},
        form_page=f"{world.campaign_url}/counter-proposals/new",
    )
    # A vote on the March offer that is counted but not certified: its figures never show.
    db.add(
        Vote(
            organization_id=world.org.id,
            kind=VoteKind.OFFER_DECISION,
            title="Decide the March offer",
            languages=["en"],
            offer_id=second.id,
            status=VoteStatus.TALLIED,
            result={"aggregate": {"counts": {"yes": 4242, "no": 1717}}},
        )
    )
    svc.record_outcome(db, world.org, first.id, _outcome(False, yes=12, no=88))
    page = world.client.get(f"{world.campaign_url}/record")
    assert page.status_code == 200
    text = page.text
    assert world.constituency.name in text and world.constituency.description in text
    assert "Heat at 20°C from October to April" in text
    assert "2 versions" in text  # the rejection reopened each demand: a second version
    order = [text.index(t) for t in ("February offer", "Our February counter", "March offer")]
    assert order == sorted(order)
    assert "Rejected by the certified vote" in text
    assert "To accept: <strong>12</strong>" in text and "<strong>88</strong>" in text
    assert "Decide the March offer" in text and "Counted" in text
    assert "4242" not in text and "1717" not in text
    assert "Met" in text and "Not met" in text
    assert 'class="no-print"' in text  # the staff links are left off the paper copy


def test_the_shared_record_opens_only_while_sharing_is_on(db: Session, world: World) -> None:
    offer = _offer(world, text="The owner's offer")
    link = f"/record/{world.campaign.record_code}"
    assert world.client.get(link).status_code == 404
    assert world.client.get("/record/nothing-like-it").status_code == 404

    shared = post_form(
        world.client, f"{world.campaign_url}/sharing", {"shared": "on"},
        form_page=world.campaign_url,
    )  # fmt: skip
    assert shared.status_code == 303
    assert link in world.client.get(world.campaign_url).text

    world.client.cookies.clear()  # a member, not signed in
    page = world.client.get(link)
    assert page.status_code == 200
    assert "The owner&#39;s offer" in page.text and "Working heat" in page.text
    assert "Eastside Holdings" in page.text  # the institution, not the person
    assert "Pat Landlord" not in page.text
    assert "The owner&#39;s attorney" not in page.text  # who made it: a person's name
    assert world.leader.name not in page.text and world.leader.email not in page.text
    assert f"/o/{world.org.slug}/" not in page.text  # no staff links
    assert world.client.get(f"{link}/offers/{offer.id}/document").status_code == 404  # no PDF

    login(world.client, world.leader.email)
    post_form(
        world.client, f"{world.campaign_url}/sharing", {"shared": "off"},
        form_page=world.campaign_url,
    )  # fmt: skip
    world.client.cookies.clear()
    assert world.client.get(link).status_code == 404


def test_the_shared_record_serves_the_offers_pdf_of_its_own_campaign_only(
    db: Session, world: World
) -> None:
    response = world.post_offer(
        world.offer_data(), files={"document": ("offer.pdf", PDF, "application/pdf")}
    )
    assert response.status_code == 303
    (offer,) = world.offers()
    svc.set_record_shared(db, world.org, world.campaign, actor=world.leader, shared=True)
    other = World(db, world.client)
    svc.set_record_shared(db, other.org, other.campaign, actor=other.leader, shared=True)
    world.client.cookies.clear()
    mine = world.client.get(f"/record/{world.campaign.record_code}/offers/{offer.id}/document")
    assert mine.status_code == 200 and mine.content == PDF
    assert mine.headers["content-disposition"].startswith("attachment;")
    wrong = world.client.get(f"/record/{other.campaign.record_code}/offers/{offer.id}/document")
    assert wrong.status_code == 404
