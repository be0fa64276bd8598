"""Campaign pages: campaigns in a constituency, decision-makers, demands with their whole
history, offers assessed demand by demand, counter-proposals in the thread, attached PDFs,
and who may see or change which."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.community import campaigns as svc
from ratify.community.models import (
    Assessment,
    CommunityCampaign,
    Constituency,
    DecisionMaker,
    Demand,
    DemandStatus,
    DemandVersion,
    Offer,
    OfferAssessment,
    OfferSide,
    OfferStatus,
)
from ratify.errors import NotFound
from ratify.orgs.models import Organization
from ratify.votes.models import Vote, VoteKind, VoteStatus
from tests.community.support import make_community, make_constituency, make_leader
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login, post_form

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class World:
    """A community organization, a leader signed in, a constituency, a decision-maker and a
    campaign with two demands."""

    def __init__(self, db: Session, client, role: Role = Role.STAFF) -> None:  # type: ignore[no-untyped-def]
        self.db = db
        self.client = client
        self.org: Organization = make_community(db)
        self.leader: StaffUser = make_leader(db, self.org, role)
        self.constituency: Constituency = make_constituency(db, self.org)
        self.landlord = svc.create_decision_maker(
            db,
            self.org,
            actor=self.leader,
            fields=svc.DecisionMakerFields("Pat Landlord", "Owner", "Eastside Holdings"),
        )
        self.campaign: CommunityCampaign = svc.create_campaign(
            db,
            self.org,
            actor=self.leader,
            fields=svc.CampaignFields("Fix the heat", "Heat all winter", str(self.constituency.id)),
        )
        self.heat = self.demand("Working heat", "Heat at 20°C from October to April")
        self.rent = self.demand("Rent freeze", "No rent increase for two years")
        client.cookies.clear()
        login(client, self.leader.email)

    def demand(self, title: str, text: str) -> Demand:
        return svc.add_demand(
            self.db,
            self.org,
            self.campaign,
            actor=self.leader,
            fields=svc.DemandFields(
                title, text, DemandStatus.PRESSING.value, str(self.landlord.id), ""
            ),
        )

    @property
    def base(self) -> str:
        return f"/o/{self.org.slug}"

    @property
    def campaign_url(self) -> str:
        return f"{self.base}/campaigns/{self.campaign.id}"

    def offer_data(self, **extra: str) -> dict[str, str]:
        data = {
            "made_on": "2026-03-01",
            "made_by": "The owner's attorney",
            "decision_maker": str(self.landlord.id),
            "text": "Heat repaired by November; rent up 3%.",
            f"assess_{self.heat.id}": "met",
            f"note_{self.heat.id}": "Boiler replaced",
            f"assess_{self.rent.id}": "not_met",
            f"note_{self.rent.id}": "Still an increase",
        }
        data.update(extra)
        return data

    def post_offer(self, data: dict[str, str], files: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
        token = csrf_from(self.client, f"{self.campaign_url}/offers/new")
        return self.client.post(
            f"{self.campaign_url}/offers", data={**data, "csrf_token": token}, files=files
        )

    def offers(self) -> list[Offer]:
        return list(self.db.scalars(select(Offer).where(Offer.campaign_id == self.campaign.id)))


@pytest.fixture
def world(db: Session, client) -> World:  # type: ignore[no-untyped-def]
    return World(db, client)


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


# -- campaigns and decision-makers -------------------------------------------------------------


def test_campaign_is_started_in_one_of_the_organizations_constituencies(
    db: Session, world: World
) -> None:
    other = make_constituency(db, make_community(db))
    page = world.client.get(f"{world.base}/campaigns/new")
    assert world.constituency.name in page.text
    assert other.name not in page.text
    refused = post_form(
        world.client,
        f"{world.base}/campaigns",
        {"name": "Stolen", "description": "", "constituency": str(other.id)},
        form_page=f"{world.base}/campaigns/new",
    )
    assert refused.status_code == 400
    assert "Choose the constituency" in refused.text
    assert db.scalar(select(CommunityCampaign).where(CommunityCampaign.name == "Stolen")) is None

    made = post_form(
        world.client,
        f"{world.base}/campaigns",
        {
            "name": "Safe stairs",
            "description": "Repair",
            "constituency": str(world.constituency.id),
        },
        form_page=f"{world.base}/campaigns/new",
    )
    assert made.status_code == 303
    campaign = db.scalars(
        select(CommunityCampaign).where(CommunityCampaign.name == "Safe stairs")
    ).one()
    assert campaign.constituency_id == world.constituency.id
    assert made.headers["location"] == f"{world.base}/campaigns/{campaign.id}"
    listing = world.client.get(f"{world.base}/campaigns")
    assert "Safe stairs" in listing.text and "Fix the heat" in listing.text

    edited = post_form(
        world.client,
        f"{world.base}/campaigns/{campaign.id}/edit",
        {"name": "Safe stairs now", "description": "", "constituency": str(world.constituency.id)},
    )
    assert edited.status_code == 303
    db.refresh(campaign)
    assert campaign.name == "Safe stairs now"


def test_decision_makers_are_added_and_edited(db: Session, world: World) -> None:
    response = post_form(
        world.client,
        f"{world.base}/decision-makers",
        {"name": "Council member Ruiz", "role": "Chair", "institution": "City council"},
        form_page=f"{world.base}/decision-makers/new",
    )
    assert response.status_code == 303
    ruiz = db.scalars(
        select(DecisionMaker).where(DecisionMaker.name == "Council member Ruiz")
    ).one()
    assert ruiz.organization_id == world.org.id
    assert post_form(
        world.client, f"{world.base}/decision-makers", {"name": ""},
        form_page=f"{world.base}/decision-makers/new",
    ).status_code == 400  # fmt: skip
    post_form(
        world.client,
        f"{world.base}/decision-makers/{ruiz.id}/edit",
        {"name": "Council member Ruiz", "role": "Vice chair", "institution": "City council"},
    )
    db.refresh(ruiz)
    assert ruiz.role == "Vice chair"
    assert "Vice chair" in world.client.get(f"{world.base}/decision-makers").text


def test_a_union_has_no_campaign_pages(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    union = make_org(db)
    login(client, make_user(db, union, Role.ADMIN).email)
    assert client.get(f"/o/{union.slug}/campaigns").status_code == 404
    assert client.get(f"/o/{union.slug}/decision-makers").status_code == 404


# -- demands ------------------------------------------------------------------------------------


def test_editing_a_demand_keeps_every_version(db: Session, world: World) -> None:
    created = post_form(
        world.client,
        f"{world.campaign_url}/demands",
        {
            "title": "Pest control",
            "text": "Monthly visits in every building",
            "status": "pressing",
            "decision_maker": str(world.landlord.id),
            "note": "From the January meeting",
        },
        form_page=f"{world.campaign_url}/demands/new",
    )
    assert created.status_code == 303
    demand = db.scalars(select(Demand).where(Demand.title == "Pest control")).one()
    assert created.headers["location"] == f"{world.base}/demands/{demand.id}"
    edit = f"{world.base}/demands/{demand.id}/edit"
    for text, note in (
        ("Visits every two weeks", "Infestation got worse"),
        ("Visits every week", "Agreed at the February meeting"),
    ):
        response = post_form(
            world.client,
            edit,
            {
                "title": "Pest control",
                "text": text,
                "status": "pressing",
                "decision_maker": str(world.landlord.id),
                "note": note,
            },
        )
        assert response.status_code == 303
    db.refresh(demand)
    assert demand.version == 3
    assert demand.text == "Visits every week"
    versions = svc.demand_history(db, demand)
    assert [v.version for v in versions] == [3, 2, 1]
    assert [v.text for v in versions] == [
        "Visits every week",
        "Visits every two weeks",
        "Monthly visits in every building",
    ]
    assert versions[0].note == "Agreed at the February meeting"
    assert all(v.changed_by_id == world.leader.id for v in versions)

    page = world.client.get(f"{world.base}/demands/{demand.id}")
    assert page.status_code == 200
    for n in (1, 2, 3):
        assert f'id="version-{n}"' in page.text
    assert "Monthly visits in every building" in page.text  # the old text is still shown
    assert "Infestation got worse" in page.text
    edits = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "demand.edited", AuditEvent.object_id == str(demand.id)
        )
    ).all()
    assert len(edits) == 2


def test_a_demand_with_no_change_makes_no_version_and_bad_input_none_either(
    db: Session, world: World
) -> None:
    edit = f"{world.base}/demands/{world.heat.id}/edit"
    same = {
        "title": world.heat.title,
        "text": world.heat.text,
        "status": "pressing",
        "decision_maker": str(world.landlord.id),
        "note": "",
    }
    assert post_form(world.client, edit, same).status_code == 303
    bad = post_form(world.client, edit, {**same, "title": "", "status": "granted"})
    assert bad.status_code == 400
    assert "Enter the demand in a few words." in bad.text
    db.refresh(world.heat)
    assert world.heat.version == 1
    assert len(svc.demand_history(db, world.heat)) == 1


# -- offers -------------------------------------------------------------------------------------


def test_an_offers_assessment_is_saved_demand_by_demand_and_shown(
    db: Session, world: World
) -> None:
    response = world.post_offer(world.offer_data())
    assert response.status_code == 303, response.text
    (offer,) = world.offers()
    assert response.headers["location"] == f"{world.base}/offers/{offer.id}"
    assert offer.side == OfferSide.DECISION_MAKER
    assert offer.status == OfferStatus.ON_TABLE
    assert offer.made_on == date(2026, 3, 1)
    assert offer.made_by == "The owner's attorney"
    rows = {
        a.demand_id: (a.assessment, a.note)
        for a in db.scalars(select(OfferAssessment).where(OfferAssessment.offer_id == offer.id))
    }
    assert rows == {
        world.heat.id: (Assessment.MET, "Boiler replaced"),
        world.rent.id: (Assessment.NOT_MET, "Still an increase"),
    }
    page = world.client.get(f"{world.base}/offers/{offer.id}")
    assert page.status_code == 200
    table = page.text.split('class="cards-on-phone assessment"')[1].split("</table>")[0]
    assert re.search(r"Working heat</a></td><td>Met</td><td>Boiler replaced", table)
    assert re.search(r"Rent freeze</a></td><td>Not met</td><td>Still an increase", table)
    assert "Heat repaired by November" in page.text


def test_an_offer_missing_an_assessment_is_refused_and_nothing_is_written(
    db: Session, world: World
) -> None:
    data = world.offer_data()
    del data[f"assess_{world.rent.id}"]
    before = (_count(db, Offer), _count(db, OfferAssessment), _count(db, AuditEvent))
    response = world.post_offer(data, files={"document": ("offer.pdf", PDF, "application/pdf")})
    assert response.status_code == 400
    assert "Say whether the offer meets this demand." in response.text
    assert 'value="The owner&#39;s attorney"' in response.text  # what was typed is kept
    assert (_count(db, Offer), _count(db, OfferAssessment), _count(db, AuditEvent)) == before

    unknown = world.offer_data(**{f"assess_{world.rent.id}": "mostly"})
    assert world.post_offer(unknown).status_code == 400
    assert world.offers() == []


def test_a_counter_proposal_takes_its_place_in_the_thread_in_order(
    db: Session, world: World
) -> None:
    world.post_offer(world.offer_data(made_on="2026-03-01", text="Second offer, in March"))
    (march,) = world.offers()
    counter = post_form(
        world.client,
        f"{world.campaign_url}/counter-proposals",
        {
            "made_on": "2026-03-08",
            "made_by": "",
            "decision_maker": "",
            "reply_to": str(march.id),
            "text": "Our counter: heat by October, no increase.",
        },
        form_page=f"{world.campaign_url}/counter-proposals/new?reply_to={march.id}",
    )
    assert counter.status_code == 303, counter.text
    # Logged last, but made first: the thread follows the dates the offers were made.
    world.post_offer(world.offer_data(made_on="2026-02-01", text="First offer, in February"))
    thread = svc.thread(db, world.campaign)
    assert [o.made_on for o in thread] == [date(2026, 2, 1), date(2026, 3, 1), date(2026, 3, 8)]
    reply = thread[2]
    assert reply.side == OfferSide.ORGANIZATION
    assert reply.decision_maker_id == world.landlord.id  # the one whose offer it answers
    assert reply.made_by == world.org.name
    assert db.scalar(select(func.count()).where(OfferAssessment.offer_id == reply.id)) == 0

    page = world.client.get(world.campaign_url).text
    thread_html = page.split('id="thread"')[1]
    positions = [
        thread_html.index(text)
        for text in ("First offer, in February", "Second offer, in March", "Our counter")
    ]
    assert positions == sorted(positions)
    assert "Counter-proposal" in thread_html
    assert f'href="#offer-{march.id}"' in thread_html  # in reply to the March offer


def test_a_counter_proposal_needs_a_decision_maker_or_an_offer_it_answers(
    db: Session, world: World
) -> None:
    response = post_form(
        world.client,
        f"{world.campaign_url}/counter-proposals",
        {"made_on": "2026-03-08", "text": "Our counter", "decision_maker": "", "reply_to": ""},
        form_page=f"{world.campaign_url}/counter-proposals/new",
    )
    assert response.status_code == 400
    assert world.offers() == []


def test_an_attachment_must_be_a_pdf_and_is_served_as_a_download(db: Session, world: World) -> None:
    fake = world.post_offer(
        world.offer_data(), files={"document": ("offer.pdf", b"<html>hi</html>", "application/pdf")}
    )
    assert fake.status_code == 400
    assert "This file is not a PDF" in fake.text
    assert world.offers() == []

    ok = world.post_offer(
        world.offer_data(text=""),
        files={"document": ('x"\r\nSet-Cookie: a=b.pdf', PDF, "application/pdf")},
    )
    assert ok.status_code == 303, ok.text
    (offer,) = world.offers()
    assert offer.document_size == len(PDF)
    download = world.client.get(f"{world.base}/offers/{offer.id}/document")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == 'attachment; filename="offer-2026-03-01.pdf"'
    assert download.headers["x-content-type-options"] == "nosniff"


def test_an_offer_with_neither_text_nor_pdf_is_refused(db: Session, world: World) -> None:
    response = world.post_offer(world.offer_data(text=""))
    assert response.status_code == 400
    assert "Write out the offer, attach it as a PDF, or both." in response.text
    assert world.offers() == []


def test_an_offer_can_be_withdrawn_or_superseded_only_from_the_table(
    db: Session, world: World
) -> None:
    world.post_offer(world.offer_data())
    (offer,) = world.offers()
    url = f"{world.base}/offers/{offer.id}/status"
    page = f"{world.base}/offers/{offer.id}"
    assert post_form(world.client, url, {"status": "accepted"}, form_page=page).status_code == 400
    assert post_form(world.client, url, {"status": "withdrawn"}, form_page=page).status_code == 303
    db.refresh(offer)
    assert offer.status == OfferStatus.WITHDRAWN
    again = post_form(world.client, url, {"status": "superseded"}, form_page=page)
    assert again.status_code == 409
    db.refresh(offer)
    assert offer.status == OfferStatus.WITHDRAWN


def test_the_offer_page_offers_a_decision_vote_and_lists_the_votes_on_it(
    db: Session, world: World, app
) -> None:  # type: ignore[no-untyped-def]
    world.post_offer(world.offer_data())
    (offer,) = world.offers()
    page = world.client.get(f"{world.base}/offers/{offer.id}").text
    action = f'action="/o/{world.org.slug}/offers/{offer.id}/decision-vote"'
    if "offer_decision_vote" in app.state.ratify.routes_by_name:
        form = page.split(action)[1].split("</form>")[0]
        assert 'name="csrf_token"' in form
        assert "Put this offer to a vote" in form
    else:
        assert action not in page
    vote = Vote(
        organization_id=world.org.id,
        kind=VoteKind.OFFER_DECISION,
        title="Accept the March offer?",
        languages=["en"],
        offer_id=offer.id,
        status=VoteStatus.OPEN,
    )
    db.add(vote)
    svc.mark_voting(db, world.org, offer)
    db.flush()
    page = world.client.get(f"{world.base}/offers/{offer.id}").text
    assert f'href="/o/{world.org.slug}/votes/{vote.id}"' in page
    assert "Accept the March offer?" in page and "Open" in page
    assert action not in page  # no longer on the table


# -- who may do what ----------------------------------------------------------------------------


def test_an_observer_reads_but_cannot_log_offers(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    world = World(db, client)
    observer = make_user(db, world.org, Role.OBSERVER)
    client.cookies.clear()
    login(client, observer.email)
    assert client.get(world.campaign_url).status_code == 200
    assert client.get(f"{world.campaign_url}/offers/new").status_code == 403
    token = csrf_from(client, world.campaign_url)
    for path in ("offers", "counter-proposals", "demands"):
        response = client.post(
            f"{world.campaign_url}/{path}", data={**world.offer_data(), "csrf_token": token}
        )
        assert response.status_code == 403, path
    assert world.offers() == []
    assert "Log an offer" not in client.get(world.campaign_url).text


def test_another_organizations_campaign_demand_offer_and_record_are_404(
    db: Session, client
) -> None:  # type: ignore[no-untyped-def]
    theirs = World(db, client)
    theirs.post_offer(theirs.offer_data())
    (offer,) = theirs.offers()
    mine = make_community(db)
    me = make_leader(db, mine, Role.ADMIN)
    client.cookies.clear()
    login(client, me.email)
    base = f"/o/{mine.slug}"
    for path in (
        f"/campaigns/{theirs.campaign.id}",
        f"/campaigns/{theirs.campaign.id}/edit",
        f"/campaigns/{theirs.campaign.id}/record",
        f"/campaigns/{theirs.campaign.id}/offers/new",
        f"/demands/{theirs.heat.id}",
        f"/demands/{theirs.heat.id}/edit",
        f"/offers/{offer.id}",
        f"/offers/{offer.id}/document",
        f"/decision-makers/{theirs.landlord.id}/edit",
        "/campaigns/not-a-uuid",
    ):
        response = client.get(base + path)
        assert response.status_code == 404, path
        assert "Fix the heat" not in response.text
    token = csrf_from(client, f"{base}/campaigns")
    for path, data in (
        (f"/offers/{offer.id}/status", {"status": "withdrawn"}),
        (f"/campaigns/{theirs.campaign.id}/sharing", {"shared": "on"}),
        (f"/demands/{theirs.heat.id}/edit", {"title": "Mine now"}),
        (f"/campaigns/{theirs.campaign.id}/offers", theirs.offer_data()),
    ):
        assert client.post(base + path, data={**data, "csrf_token": token}).status_code == 404
    db.refresh(offer)
    db.refresh(theirs.campaign)
    assert offer.status == OfferStatus.ON_TABLE and not theirs.campaign.record_shared
    # Nor can a demand of mine be aimed at their decision-maker.
    my_campaign = svc.create_campaign(
        db, mine, actor=me,
        fields=svc.CampaignFields("Mine", "", str(make_constituency(db, mine).id)),
    )  # fmt: skip
    response = post_form(
        client,
        f"{base}/campaigns/{my_campaign.id}/demands",
        {"title": "X", "status": "pressing", "decision_maker": str(theirs.landlord.id)},
        form_page=f"{base}/campaigns/{my_campaign.id}/demands/new",
    )
    assert response.status_code == 400
    with pytest.raises(NotFound):
        svc.get_offer(db, mine, offer.id)
    assert db.scalar(select(func.count()).where(DemandVersion.demand_id == theirs.heat.id)) == 1
