"""Campaign pages: campaigns, decision-makers, demands and their history, offers (assessed
demand by demand) and counter-proposals, the negotiation's thread, and the decision record
(printable, and shareable with members by a link)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ratify.authz import PUBLIC, Permission
from ratify.community import campaigns as svc
from ratify.community import constituencies as cons
from ratify.community.models import (
    Assessment,
    CommunityCampaign,
    DecisionMaker,
    Demand,
    DemandStatus,
    Offer,
    OfferSide,
    OfferStatus,
)
from ratify.errors import N_, NotFound, RatifyError
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.votes import documents
from ratify.votes.views import STATUS_LABELS as VOTE_STATUS_LABELS
from ratify.web.forms import text_field
from ratify.web.routing import RatifyRoute, ViewContext, page

DEMAND_STATUS_LABELS = {
    DemandStatus.PRESSING: N_("Pressing"),
    DemandStatus.REVISING: N_("Reopened for revision"),
    DemandStatus.WON: N_("Won"),
    DemandStatus.PARTLY_WON: N_("Partly won"),
    DemandStatus.DROPPED: N_("Dropped"),
}
OFFER_STATUS_LABELS = {
    OfferStatus.ON_TABLE: N_("On the table"),
    OfferStatus.VOTING: N_("Being voted on"),
    OfferStatus.ACCEPTED: N_("Accepted by vote"),
    OfferStatus.REJECTED: N_("Rejected by vote"),
    OfferStatus.WITHDRAWN: N_("Withdrawn"),
    OfferStatus.SUPERSEDED: N_("Superseded"),
}
ASSESSMENT_LABELS = {
    Assessment.MET: N_("Met"),
    Assessment.PARTLY_MET: N_("Partly met"),
    Assessment.NOT_MET: N_("Not met"),
}
SIDE_LABELS = {
    OfferSide.DECISION_MAKER: N_("Offer"),
    OfferSide.ORGANIZATION: N_("Counter-proposal"),
}
# The keys of a decision vote's counts (VoteKind.OFFER_DECISION: "yes" accepts the offer).
COUNT_LABELS = {
    "yes": N_("To accept"),
    "no": N_("To reject and keep campaigning"),
    "blank": N_("Blank"),
}
DECISION_VOTE_ROUTE = "offer_decision_vote"  # ratify/community/decision.py


def _labels(ctx: ViewContext) -> dict[str, Any]:
    def tr(table: dict[Any, str]) -> dict[str, str]:
        return {str(k): ctx.gettext(v) for k, v in table.items()}

    return {
        "demand_status_labels": tr(DEMAND_STATUS_LABELS),
        "offer_status_labels": tr(OFFER_STATUS_LABELS),
        "assessment_labels": tr(ASSESSMENT_LABELS),
        "side_labels": tr(SIDE_LABELS),
        "vote_status_labels": tr(VOTE_STATUS_LABELS),
        "count_labels": tr(COUNT_LABELS),
        "demand_statuses": [s.value for s in DemandStatus],
        "assessments": [a.value for a in Assessment],
    }


def _org(ctx: ViewContext) -> Organization:
    assert ctx.org is not None
    svc.require_community(ctx.org)
    return ctx.org


def _errors(ctx: ViewContext, exc: svc.FormInvalid) -> dict[str, str]:
    return {k: ctx.gettext(v, **exc.field_params.get(k, {})) for k, v in exc.errors.items()}


def _campaign(ctx: ViewContext) -> CommunityCampaign:
    return svc.get_campaign(ctx.db, _org(ctx), ctx.path_uuid("campaign_id"))


# -- campaigns ----------------------------------------------------------------------------------


def campaigns_list(ctx: ViewContext) -> Response:
    org = _org(ctx)
    return ctx.render("community/campaigns.html", campaigns=svc.list_campaigns(ctx.db, org))


def _campaign_values(campaign: CommunityCampaign | svc.CampaignFields) -> dict[str, str]:
    constituency = (
        campaign.constituency_id
        if isinstance(campaign, svc.CampaignFields)
        else str(campaign.constituency_id)
    )
    return {
        "name": campaign.name,
        "description": campaign.description,
        "constituency": constituency,
    }


def _campaign_form(
    ctx: ViewContext,
    campaign: CommunityCampaign | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    org = _org(ctx)
    constituencies = cons.list_constituencies(ctx.db, org)
    if campaign is not None and campaign.constituency_id not in {c.id for c in constituencies}:
        constituencies.append(svc.constituency_of(ctx.db, campaign))  # archived since
    return ctx.render(
        "community/campaign_form.html",
        status_code=status_code,
        campaign=campaign,
        constituencies=constituencies,
        values=values,
        errors=errors or {},
    )


def _parse_campaign(ctx: ViewContext) -> svc.CampaignFields:
    return svc.CampaignFields(
        name=text_field(ctx.form, "name"),
        description=text_field(ctx.form, "description").replace("\r\n", "\n"),
        constituency_id=text_field(ctx.form, "constituency"),
    )


def campaign_new(ctx: ViewContext) -> Response:
    return _campaign_form(ctx, None, {})


def campaign_create(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    fields = _parse_campaign(ctx)
    try:
        campaign = svc.create_campaign(ctx.db, org, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _campaign_form(ctx, None, _campaign_values(fields), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("campaign_detail", campaign_id=campaign.id))


def campaign_edit(ctx: ViewContext) -> Response:
    campaign = _campaign(ctx)
    return _campaign_form(ctx, campaign, _campaign_values(campaign))


def campaign_update(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    campaign = _campaign(ctx)
    fields = _parse_campaign(ctx)
    try:
        svc.update_campaign(ctx.db, org, campaign, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _campaign_form(ctx, campaign, _campaign_values(fields), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("campaign_detail", campaign_id=campaign.id))


def campaign_detail(ctx: ViewContext) -> Response:
    org = _org(ctx)
    campaign = _campaign(ctx)
    record = svc.decision_record(ctx.db, org, campaign)
    return ctx.render(
        "community/campaign.html",
        record=record,
        campaign=campaign,
        shared_url=f"{str(ctx.request.base_url).rstrip('/')}/record/{campaign.record_code}",
        **_labels(ctx),
    )


def campaign_sharing(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    campaign = _campaign(ctx)
    svc.set_record_shared(ctx.db, org, campaign, actor=ctx.user, shared=ctx.field("shared") == "on")
    return ctx.redirect(ctx.org_url("campaign_detail", campaign_id=campaign.id) + "#sharing")


# -- decision-makers ----------------------------------------------------------------------------


def decision_makers_list(ctx: ViewContext) -> Response:
    org = _org(ctx)
    return ctx.render(
        "community/decision_makers.html", decision_makers=svc.list_decision_makers(ctx.db, org)
    )


def _parse_decision_maker(ctx: ViewContext) -> svc.DecisionMakerFields:
    return svc.DecisionMakerFields(
        name=text_field(ctx.form, "name"),
        role=text_field(ctx.form, "role"),
        institution=text_field(ctx.form, "institution"),
    )


def _decision_maker_form(
    ctx: ViewContext,
    decision_maker: DecisionMaker | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return ctx.render(
        "community/decision_maker_form.html",
        status_code=status_code,
        decision_maker=decision_maker,
        values=values,
        errors=errors or {},
    )


def _dm_values(dm: DecisionMaker | svc.DecisionMakerFields) -> dict[str, str]:
    return {"name": dm.name, "role": dm.role, "institution": dm.institution}


def decision_maker_new(ctx: ViewContext) -> Response:
    _org(ctx)
    return _decision_maker_form(ctx, None, {})


def decision_maker_create(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    fields = _parse_decision_maker(ctx)
    try:
        svc.create_decision_maker(ctx.db, org, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _decision_maker_form(ctx, None, _dm_values(fields), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("decision_makers_list"))


def decision_maker_edit(ctx: ViewContext) -> Response:
    org = _org(ctx)
    dm = svc.get_decision_maker(ctx.db, org, ctx.path_uuid("decision_maker_id"))
    return _decision_maker_form(ctx, dm, _dm_values(dm))


def decision_maker_update(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    dm = svc.get_decision_maker(ctx.db, org, ctx.path_uuid("decision_maker_id"))
    fields = _parse_decision_maker(ctx)
    try:
        svc.update_decision_maker(ctx.db, org, dm, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _decision_maker_form(ctx, dm, _dm_values(fields), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("decision_makers_list"))


# -- demands ------------------------------------------------------------------------------------


def _parse_demand(ctx: ViewContext) -> svc.DemandFields:
    return svc.DemandFields(
        title=text_field(ctx.form, "title"),
        text=text_field(ctx.form, "text").replace("\r\n", "\n"),
        status=text_field(ctx.form, "status"),
        decision_maker_id=text_field(ctx.form, "decision_maker"),
        note=text_field(ctx.form, "note"),
    )


def _demand_values(demand: Demand | svc.DemandFields) -> dict[str, str]:
    if isinstance(demand, svc.DemandFields):
        return {
            "title": demand.title,
            "text": demand.text,
            "status": demand.status,
            "decision_maker": demand.decision_maker_id,
            "note": demand.note,
        }
    return {
        "title": demand.title,
        "text": demand.text,
        "status": demand.status.value,
        "decision_maker": str(demand.decision_maker_id),
        "note": "",
    }


def _demand_form(
    ctx: ViewContext,
    campaign: CommunityCampaign,
    demand: Demand | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    org = _org(ctx)
    return ctx.render(
        "community/demand_form.html",
        status_code=status_code,
        campaign=campaign,
        demand=demand,
        decision_makers=svc.list_decision_makers(ctx.db, org),
        values=values,
        errors=errors or {},
        **_labels(ctx),
    )


def demand_new(ctx: ViewContext) -> Response:
    campaign = _campaign(ctx)
    return _demand_form(ctx, campaign, None, {"status": DemandStatus.PRESSING.value})


def demand_create(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    campaign = _campaign(ctx)
    fields = _parse_demand(ctx)
    try:
        demand = svc.add_demand(ctx.db, org, campaign, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _demand_form(ctx, campaign, None, _demand_values(fields), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("demand_detail", demand_id=demand.id))


def _demand(ctx: ViewContext) -> tuple[Demand, CommunityCampaign]:
    demand = svc.get_demand(ctx.db, _org(ctx), ctx.path_uuid("demand_id"))
    return demand, svc.campaign_of(ctx.db, demand)


def demand_detail(ctx: ViewContext) -> Response:
    org = _org(ctx)
    demand, campaign = _demand(ctx)
    history = svc.demand_history(ctx.db, demand)
    return ctx.render(
        "community/demand.html",
        demand=demand,
        campaign=campaign,
        history=history,
        decision_makers=svc.decision_makers_by_id(ctx.db, org),
        changed_by=svc.staff_names(ctx.db, {v.changed_by_id for v in history}),
        **_labels(ctx),
    )


def demand_edit(ctx: ViewContext) -> Response:
    demand, campaign = _demand(ctx)
    return _demand_form(ctx, campaign, demand, _demand_values(demand))


def demand_update(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    demand, campaign = _demand(ctx)
    fields = _parse_demand(ctx)
    try:
        svc.edit_demand(ctx.db, org, demand, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _demand_form(ctx, campaign, demand, _demand_values(fields), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("demand_detail", demand_id=demand.id))


# -- offers and counter-proposals ---------------------------------------------------------------


def _parse_offer(ctx: ViewContext, demands: list[Demand]) -> svc.OfferFields:
    assert ctx.form is not None
    file = ctx.form.get("document")
    pdf: bytes | None = None
    name = ""
    if isinstance(file, UploadFile) and file.filename:
        # One byte more than allowed is enough to refuse it, whatever its size.
        pdf = file.file.read(documents.MAX_PDF_BYTES + 1)
        name = file.filename
    return svc.OfferFields(
        made_on=text_field(ctx.form, "made_on"),
        made_by=text_field(ctx.form, "made_by"),
        text=text_field(ctx.form, "text").replace("\r\n", "\n"),
        decision_maker_id=text_field(ctx.form, "decision_maker"),
        pdf=pdf,
        pdf_name=name,
        assessments={
            str(d.id): (
                text_field(ctx.form, f"assess_{d.id}"),
                text_field(ctx.form, f"note_{d.id}").replace("\r\n", "\n"),
            )
            for d in demands
            if f"assess_{d.id}" in ctx.form or f"note_{d.id}" in ctx.form
        },
        reply_to=text_field(ctx.form, "reply_to"),
    )


def _offer_form(
    ctx: ViewContext,
    campaign: CommunityCampaign,
    side: OfferSide,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    org = _org(ctx)
    offers = [o for o in svc.thread(ctx.db, campaign) if o.side == OfferSide.DECISION_MAKER]
    return ctx.render(
        "community/offer_form.html",
        status_code=status_code,
        campaign=campaign,
        side=side.value,
        demands=svc.list_demands(ctx.db, campaign),
        decision_makers=svc.list_decision_makers(ctx.db, org),
        offers=offers,
        values=values or {},
        errors=errors or {},
        max_mb=documents.MAX_PDF_BYTES // (1024 * 1024),
        **_labels(ctx),
    )


def _offer_values(ctx: ViewContext) -> dict[str, str]:
    assert ctx.form is not None
    return {k: v for k, v in ctx.form.multi_items() if isinstance(v, str) and k != "csrf_token"}


def _today(org: Organization) -> str:
    return org_today(org).isoformat()


def offer_new(ctx: ViewContext) -> Response:
    campaign = _campaign(ctx)
    return _offer_form(ctx, campaign, OfferSide.DECISION_MAKER, {"made_on": _today(_org(ctx))})


def counter_new(ctx: ViewContext) -> Response:
    campaign = _campaign(ctx)
    reply_to = ctx.request.query_params.get("reply_to", "")[:36]
    values = {"reply_to": reply_to, "made_on": _today(_org(ctx))}
    return _offer_form(ctx, campaign, OfferSide.ORGANIZATION, values)


def offer_create(ctx: ViewContext) -> Response:
    return _log(ctx, OfferSide.DECISION_MAKER)


def counter_create(ctx: ViewContext) -> Response:
    return _log(ctx, OfferSide.ORGANIZATION)


def _log(ctx: ViewContext, side: OfferSide) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    campaign = _campaign(ctx)
    fields = _parse_offer(ctx, svc.list_demands(ctx.db, campaign))
    log = svc.log_offer if side == OfferSide.DECISION_MAKER else svc.log_counter_proposal
    try:
        with ctx.db.begin_nested():  # a refused offer writes nothing, not even part of it
            offer = log(ctx.db, org, campaign, actor=ctx.user, fields=fields)
    except svc.FormInvalid as exc:
        return _offer_form(ctx, campaign, side, _offer_values(ctx), _errors(ctx, exc), 400)
    return ctx.redirect(ctx.org_url("offer_detail", offer_id=offer.id))


def _offer(ctx: ViewContext) -> Offer:
    return svc.get_offer(ctx.db, _org(ctx), ctx.path_uuid("offer_id"))


def offer_detail(ctx: ViewContext, status_code: int = 200, problem: str | None = None) -> Response:
    org = _org(ctx)
    offer = _offer(ctx)
    campaign = svc.campaign_of(ctx.db, offer)
    decision_vote_url = None
    if (
        offer.side == OfferSide.DECISION_MAKER
        and offer.status == OfferStatus.ON_TABLE
        and DECISION_VOTE_ROUTE in ctx.app.routes_by_name
    ):
        decision_vote_url = ctx.org_url(DECISION_VOTE_ROUTE, offer_id=offer.id)
    reply_to = svc.replies_to(ctx.db, org, [offer]).get(offer.id)
    return ctx.render(
        "community/offer.html",
        status_code=status_code,
        problem=problem,
        offer=offer,
        campaign=campaign,
        assessed=svc.assessments_of(ctx.db, [offer]).get(offer.id, []),
        votes=svc.votes_for(ctx.db, org, [offer]).get(offer.id, []),
        decision_makers=svc.decision_makers_by_id(ctx.db, org),
        reply_to=svc.get_offer(ctx.db, org, reply_to) if reply_to else None,
        decision_vote_url=decision_vote_url,
        can_withdraw=svc.can_withdraw(ctx.db, org, offer),
        **_labels(ctx),
    )


def offer_document(ctx: ViewContext) -> Response:
    offer = _offer(ctx)
    return _pdf(svc.offer_document(ctx.db, offer), offer)


def _pdf(data: bytes, offer: Offer) -> Response:
    """The attached PDF as a download, never shown inline, and never under the uploaded name
    (it could carry anything into a header): a fixed one."""
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="offer-{offer.made_on.isoformat()}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def offer_status(ctx: ViewContext) -> Response:
    org = _org(ctx)
    assert ctx.user is not None
    offer = _offer(ctx)
    try:
        status = OfferStatus(ctx.field("status"))
        with ctx.db.begin_nested():
            svc.set_offer_status(ctx.db, org, offer, actor=ctx.user, status=status)
    except ValueError:
        return offer_detail(ctx, 400, ctx.gettext(N_("Choose withdrawn or superseded.")))
    except RatifyError as exc:
        return offer_detail(ctx, exc.status_code, ctx.gettext(exc.message, **exc.params))
    return ctx.redirect(ctx.org_url("offer_detail", offer_id=offer.id))


# -- the decision record ------------------------------------------------------------------------


def campaign_record(ctx: ViewContext) -> Response:
    org = _org(ctx)
    campaign = _campaign(ctx)
    return ctx.render(
        "community/record.html",
        record=svc.decision_record(ctx.db, org, campaign),
        shared=False,
        org_name=org.name,
        **_labels(ctx),
    )


def shared_record(ctx: ViewContext) -> Response:
    """The same record for members, by the link leaders chose to share: no staff links, no
    names of people."""
    org, campaign = svc.shared_campaign(ctx.db, str(ctx.request.path_params["record_code"]))
    return ctx.render(
        "community/record.html",
        record=svc.decision_record(ctx.db, org, campaign),
        shared=True,
        org_name=org.name,
        # A members' page: none of the staff navigation.
        user=None,
        org=None,
        role=None,
        **_labels(ctx),
    )


def shared_offer_document(ctx: ViewContext) -> Response:
    org, campaign = svc.shared_campaign(ctx.db, str(ctx.request.path_params["record_code"]))
    offer = svc.get_offer(ctx.db, org, ctx.path_uuid("offer_id"))
    if offer.campaign_id != campaign.id:
        raise NotFound()
    return _pdf(svc.offer_document(ctx.db, offer), offer)


M = Permission.COMMUNITY_MANAGE
V = Permission.ORG_VIEW
POST = ["POST"]

ROUTES: list[RatifyRoute] = [
    page("/o/{slug}/campaigns", campaigns_list, access=V),
    page("/o/{slug}/campaigns/new", campaign_new, access=M),
    page("/o/{slug}/campaigns", campaign_create, access=M, methods=POST),
    page("/o/{slug}/campaigns/{campaign_id}", campaign_detail, access=V),
    page("/o/{slug}/campaigns/{campaign_id}/edit", campaign_edit, access=M),
    page("/o/{slug}/campaigns/{campaign_id}/edit", campaign_update, access=M, methods=POST),
    page("/o/{slug}/campaigns/{campaign_id}/sharing", campaign_sharing, access=M, methods=POST),
    page("/o/{slug}/campaigns/{campaign_id}/record", campaign_record, access=V),
    page("/o/{slug}/campaigns/{campaign_id}/demands/new", demand_new, access=M),
    page("/o/{slug}/campaigns/{campaign_id}/demands", demand_create, access=M, methods=POST),
    page("/o/{slug}/campaigns/{campaign_id}/offers/new", offer_new, access=M),
    page(
        "/o/{slug}/campaigns/{campaign_id}/offers",
        offer_create,
        access=M,
        methods=POST,
        upload=True,
    ),
    page("/o/{slug}/campaigns/{campaign_id}/counter-proposals/new", counter_new, access=M),
    page(
        "/o/{slug}/campaigns/{campaign_id}/counter-proposals",
        counter_create,
        access=M,
        methods=POST,
        upload=True,
    ),
    page("/o/{slug}/decision-makers", decision_makers_list, access=V),
    page("/o/{slug}/decision-makers/new", decision_maker_new, access=M),
    page("/o/{slug}/decision-makers", decision_maker_create, access=M, methods=POST),
    page("/o/{slug}/decision-makers/{decision_maker_id}/edit", decision_maker_edit, access=M),
    page(
        "/o/{slug}/decision-makers/{decision_maker_id}/edit",
        decision_maker_update,
        access=M,
        methods=POST,
    ),
    page("/o/{slug}/demands/{demand_id}", demand_detail, access=V),
    page("/o/{slug}/demands/{demand_id}/edit", demand_edit, access=M),
    page("/o/{slug}/demands/{demand_id}/edit", demand_update, access=M, methods=POST),
    page("/o/{slug}/offers/{offer_id}", offer_detail, access=V),
    page("/o/{slug}/offers/{offer_id}/document", offer_document, access=V),
    page("/o/{slug}/offers/{offer_id}/status", offer_status, access=M, methods=POST),
    page("/record/{record_code}", shared_record, access=PUBLIC),
    page("/record/{record_code}/offers/{offer_id}/document", shared_offer_document, access=PUBLIC),
]
