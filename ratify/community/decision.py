"""The decision vote on an offer: from the offer's page, leaders create a draft vote of kind
``offer decision`` (accept the offer, or reject it and keep campaigning) whose electorate is
the campaign's constituency as its criteria stand on the cutoff date. From there it is an
ordinary vote (votes.services): set-up, frozen list, links through Notices, the phone
ballot, tally and certification; certifying writes the outcome back to the offer."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session
from starlette.responses import Response

from ratify.accounts.models import StaffUser
from ratify.authz import Permission
from ratify.community import campaigns
from ratify.community.models import Offer
from ratify.errors import N_, BadRequest
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.settings import LANGUAGES
from ratify.votes import services as votes
from ratify.votes.documents import MAX_SUMMARY_CHARS
from ratify.votes.models import Vote, VoteKind
from ratify.web.routing import ViewContext, page


def create_decision_vote(
    db: Session,
    org: Organization,
    offer: Offer,
    *,
    actor: StaffUser,
    title: str,
    cutoff: date,
) -> Vote:
    """A draft decision vote on an offer on the table, in every ballot language, its summary
    the offer's text (leaders translate it on the documents page) and its full text the
    offer's document when there is one. The offer is then being voted on."""
    campaign = campaigns.campaign_of(db, offer)
    campaigns.mark_voting(db, org, offer)  # only an offer on the table (409 otherwise)
    vote = votes.create_vote(
        db,
        org,
        actor=actor,
        kind=VoteKind.OFFER_DECISION,
        title=title[:200],
        languages=list(LANGUAGES),
        offer_id=offer.id,
        constituency_id=campaign.constituency_id,
    )
    vote.cutoff = cutoff
    document = campaigns.offer_document(db, offer) if offer.document_size else None
    summary = offer.text.strip()
    if len(summary) > MAX_SUMMARY_CHARS:
        raise BadRequest(
            N_("The offer's text is longer than a ballot's summary can be (%(max)s characters)."),
            max=MAX_SUMMARY_CHARS,
        )
    for language in vote.languages:
        votes.save_document(
            db,
            org,
            vote,
            actor=actor,
            language=language,
            summary=summary,
            pdf=document,
            pdf_name=offer.document_name,
        )
    db.flush()
    return vote


def offer_decision_vote(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    offer = campaigns.get_offer(ctx.db, ctx.org, ctx.path_uuid("offer_id"))
    campaign = campaigns.campaign_of(ctx.db, offer)
    title = ctx.gettext(
        N_("%(campaign)s: the offer of %(date)s"),
        campaign=campaign.name,
        date=offer.made_on.isoformat(),
    )
    vote = create_decision_vote(
        ctx.db, ctx.org, offer, actor=ctx.user, title=title, cutoff=org_today(ctx.org)
    )
    return ctx.redirect(ctx.org_url("vote_edit", vote_id=vote.id))


ROUTES = [
    page(
        "/o/{slug}/offers/{offer_id}/decision-vote",
        offer_decision_vote,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
]
