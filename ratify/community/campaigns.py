"""A community campaign's negotiation: the decision-makers it presses, its demands (every
version kept), the offers put on the table (each assessed demand by demand) and the
organization's counter-proposals, the outcome of the vote that decided an offer written back,
and the decision record members may be shown."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
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
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound
from ratify.orgs.models import Organization, OrgKind
from ratify.votes import documents
from ratify.votes.models import Vote, VoteStatus

TOO_LONG_200 = N_("Use at most 200 characters.")
TEXT_MAX = 20_000
NOTE_MAX = 500
COUNTER_PROPOSED = "offer.counter_proposed"


class FormInvalid(BadRequest):
    """Field-level problems, all at once: ``errors`` maps a form field to its message."""

    def __init__(
        self, errors: dict[str, str], params: dict[str, dict[str, Any]] | None = None
    ) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors
        self.field_params = params or {}


def require_community(org: Organization) -> None:
    """Campaigns, demands and offers belong to community organizations."""
    if org.kind != OrgKind.COMMUNITY:
        raise NotFound()


def _parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _audit(
    db: Session,
    org: Organization,
    actor: StaffUser | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    data: dict[str, Any],
) -> None:
    audit.record(
        db,
        organization=org,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data=data,
    )


# -- campaigns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignFields:
    name: str
    description: str
    constituency_id: str  # as the form sent it


def _constituency(
    db: Session, org: Organization, value: str, *, current: uuid.UUID | None = None
) -> Constituency | None:
    """The chosen constituency of this organization: not archived, unless it is the one the
    campaign already has."""
    constituency_id = _parse_uuid(value)
    if constituency_id is None:
        return None
    found = db.scalars(
        select(Constituency).where(
            Constituency.id == constituency_id, Constituency.organization_id == org.id
        )
    ).first()
    if found is None or (found.archived_at is not None and found.id != current):
        return None
    return found


def _check_campaign(
    db: Session, org: Organization, fields: CampaignFields, current: uuid.UUID | None
) -> Constituency:
    errors: dict[str, str] = {}
    if not fields.name:
        errors["name"] = N_("Enter the campaign's name.")
    elif len(fields.name) > 200:
        errors["name"] = TOO_LONG_200
    if len(fields.description) > TEXT_MAX:
        errors["description"] = N_("Use at most 20000 characters.")
    constituency = _constituency(db, org, fields.constituency_id, current=current)
    if constituency is None:
        errors["constituency"] = N_("Choose the constituency that decides in this campaign.")
    if errors:
        raise FormInvalid(errors)
    assert constituency is not None
    return constituency


def list_campaigns(db: Session, org: Organization) -> list[CommunityCampaign]:
    stmt = (
        select(CommunityCampaign)
        .where(CommunityCampaign.organization_id == org.id)
        .order_by(CommunityCampaign.created_at.desc(), CommunityCampaign.name)
    )
    return list(db.scalars(stmt))


def get_campaign(db: Session, org: Organization, campaign_id: uuid.UUID) -> CommunityCampaign:
    """A campaign of *this* organization; another organization's is 404."""
    campaign = db.scalars(
        select(CommunityCampaign).where(
            CommunityCampaign.id == campaign_id, CommunityCampaign.organization_id == org.id
        )
    ).first()
    if campaign is None:
        raise NotFound()
    return campaign


def constituency_of(db: Session, campaign: CommunityCampaign) -> Constituency:
    constituency = db.get(Constituency, campaign.constituency_id)
    assert constituency is not None
    return constituency


def create_campaign(
    db: Session, org: Organization, *, actor: StaffUser, fields: CampaignFields
) -> CommunityCampaign:
    require_community(org)
    constituency = _check_campaign(db, org, fields, None)
    campaign = CommunityCampaign(
        organization_id=org.id,
        constituency_id=constituency.id,
        name=fields.name,
        description=fields.description,
        record_code=secrets.token_urlsafe(18),
        record_shared=False,
    )
    db.add(campaign)
    db.flush()
    _audit(
        db, org, actor, "campaign.created", "community_campaign", campaign.id,
        {"title": campaign.name, "constituency_id": str(constituency.id)},
    )  # fmt: skip
    return campaign


def update_campaign(
    db: Session,
    org: Organization,
    campaign: CommunityCampaign,
    *,
    actor: StaffUser,
    fields: CampaignFields,
) -> None:
    constituency = _check_campaign(db, org, fields, campaign.constituency_id)
    changes: dict[str, dict[str, str]] = {}
    for name, after in (
        ("name", fields.name),
        ("description", fields.description),
        ("constituency_id", constituency.id),
    ):
        before = getattr(campaign, name)
        if before != after:
            changes["title" if name == "name" else name] = {"from": str(before), "to": str(after)}
            setattr(campaign, name, after)
    if changes:
        db.flush()
        _audit(
            db, org, actor, "campaign.updated", "community_campaign", campaign.id,
            {"changes": changes},
        )  # fmt: skip


def set_record_shared(
    db: Session, org: Organization, campaign: CommunityCampaign, *, actor: StaffUser, shared: bool
) -> None:
    """Open or close the members' link to the decision record."""
    if campaign.record_shared == shared:
        return
    campaign.record_shared = shared
    db.flush()
    _audit(
        db, org, actor, "campaign.record_shared" if shared else "campaign.record_unshared",
        "community_campaign", campaign.id, {},
    )  # fmt: skip


def shared_campaign(db: Session, record_code: str) -> tuple[Organization, CommunityCampaign]:
    """The campaign behind a members' record link; 404 unless its sharing is on."""
    if not record_code or len(record_code) > 32:
        raise NotFound()
    campaign = db.scalars(
        select(CommunityCampaign).where(CommunityCampaign.record_code == record_code)
    ).first()
    if campaign is None or not campaign.record_shared:
        raise NotFound()
    org = db.get(Organization, campaign.organization_id)
    assert org is not None
    return org, campaign


# -- decision-makers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionMakerFields:
    name: str
    role: str
    institution: str


def _check_decision_maker(fields: DecisionMakerFields) -> None:
    errors: dict[str, str] = {}
    if not fields.name:
        errors["name"] = N_("Enter who this is (a name, or the office if there is no name).")
    for name in ("name", "role", "institution"):
        if len(getattr(fields, name)) > 200:
            errors[name] = TOO_LONG_200
    if errors:
        raise FormInvalid(errors)


def list_decision_makers(db: Session, org: Organization) -> list[DecisionMaker]:
    stmt = (
        select(DecisionMaker)
        .where(DecisionMaker.organization_id == org.id)
        .order_by(DecisionMaker.institution, DecisionMaker.name)
    )
    return list(db.scalars(stmt))


def get_decision_maker(
    db: Session, org: Organization, decision_maker_id: uuid.UUID
) -> DecisionMaker:
    found = db.scalars(
        select(DecisionMaker).where(
            DecisionMaker.id == decision_maker_id, DecisionMaker.organization_id == org.id
        )
    ).first()
    if found is None:
        raise NotFound()
    return found


def _chosen_decision_maker(db: Session, org: Organization, value: str) -> DecisionMaker | None:
    decision_maker_id = _parse_uuid(value)
    if decision_maker_id is None:
        return None
    try:
        return get_decision_maker(db, org, decision_maker_id)
    except NotFound:
        return None


def create_decision_maker(
    db: Session, org: Organization, *, actor: StaffUser, fields: DecisionMakerFields
) -> DecisionMaker:
    require_community(org)
    _check_decision_maker(fields)
    decision_maker = DecisionMaker(
        organization_id=org.id, name=fields.name, role=fields.role, institution=fields.institution
    )
    db.add(decision_maker)
    db.flush()
    _audit(
        db, org, actor, "decision_maker.created", "decision_maker", decision_maker.id,
        {"name": fields.name, "role": fields.role, "institution": fields.institution},
    )  # fmt: skip
    return decision_maker


def update_decision_maker(
    db: Session,
    org: Organization,
    decision_maker: DecisionMaker,
    *,
    actor: StaffUser,
    fields: DecisionMakerFields,
) -> None:
    _check_decision_maker(fields)
    changed = [
        name
        for name in ("name", "role", "institution")
        if getattr(decision_maker, name) != getattr(fields, name)
    ]
    for name in changed:
        setattr(decision_maker, name, getattr(fields, name))
    if changed:
        db.flush()
        # The fields' names only: "name" would be a person's name in the clear.
        _audit(
            db, org, actor, "decision_maker.updated", "decision_maker", decision_maker.id,
            {"fields": changed},
        )  # fmt: skip


# -- demands ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandFields:
    title: str
    text: str
    status: str
    decision_maker_id: str
    note: str


def _check_demand(
    db: Session, org: Organization, fields: DemandFields
) -> tuple[DemandStatus, DecisionMaker]:
    errors: dict[str, str] = {}
    if not fields.title:
        errors["title"] = N_("Enter the demand in a few words.")
    elif len(fields.title) > 200:
        errors["title"] = TOO_LONG_200
    if len(fields.text) > TEXT_MAX:
        errors["text"] = N_("Use at most 20000 characters.")
    if len(fields.note) > NOTE_MAX:
        errors["note"] = N_("Use at most 500 characters.")
    try:
        status = DemandStatus(fields.status)
    except ValueError:
        errors["status"] = N_("Choose the demand's status.")
    decision_maker = _chosen_decision_maker(db, org, fields.decision_maker_id)
    if decision_maker is None:
        errors["decision_maker"] = N_("Choose who can grant this demand.")
    if errors:
        raise FormInvalid(errors)
    assert decision_maker is not None
    return status, decision_maker


def list_demands(db: Session, campaign: CommunityCampaign) -> list[Demand]:
    stmt = (
        select(Demand)
        .where(Demand.campaign_id == campaign.id)
        .order_by(Demand.created_at, Demand.title)
    )
    return list(db.scalars(stmt))


Item = TypeVar("Item", Demand, Offer)


def _of_this_org(db: Session, org: Organization, model: type[Item], item_id: uuid.UUID) -> Item:
    """A demand or an offer of one of *this* organization's campaigns; anything else is 404."""
    item = db.scalars(
        select(model)
        .join(CommunityCampaign, CommunityCampaign.id == model.campaign_id)
        .where(model.id == item_id, CommunityCampaign.organization_id == org.id)
    ).first()
    if item is None:
        raise NotFound()
    return item


def campaign_of(db: Session, item: Demand | Offer) -> CommunityCampaign:
    """The campaign a demand or an offer belongs to."""
    campaign = db.get(CommunityCampaign, item.campaign_id)
    assert campaign is not None
    return campaign


def get_demand(db: Session, org: Organization, demand_id: uuid.UUID) -> Demand:
    """A demand (``_of_this_org``)."""
    return _of_this_org(db, org, Demand, demand_id)


def _write_version(
    db: Session, demand: Demand, *, note: str, changed_by: StaffUser | None
) -> DemandVersion:
    version = DemandVersion(
        demand_id=demand.id,
        version=demand.version,
        title=demand.title,
        text=demand.text,
        status=demand.status,
        decision_maker_id=demand.decision_maker_id,
        note=note[:NOTE_MAX],
        changed_by_id=changed_by.id if changed_by else None,
        changed_at=demand.updated_at,
    )
    db.add(version)
    return version


def add_demand(
    db: Session,
    org: Organization,
    campaign: CommunityCampaign,
    *,
    actor: StaffUser,
    fields: DemandFields,
) -> Demand:
    status, decision_maker = _check_demand(db, org, fields)
    now = utcnow()
    demand = Demand(
        campaign_id=campaign.id,
        decision_maker_id=decision_maker.id,
        title=fields.title,
        text=fields.text,
        status=status,
        version=1,
        created_at=now,
        updated_at=now,
    )
    db.add(demand)
    db.flush()
    _write_version(db, demand, note=fields.note, changed_by=actor)
    db.flush()
    _audit(
        db, org, actor, "demand.added", "demand", demand.id,
        {"campaign_id": str(campaign.id), "title": demand.title, "status": status.value},
    )  # fmt: skip
    return demand


def edit_demand(
    db: Session, org: Organization, demand: Demand, *, actor: StaffUser, fields: DemandFields
) -> bool:
    """Change a demand: a new version, the earlier ones kept as they were. False (and no new
    version) when nothing changed."""
    status, decision_maker = _check_demand(db, org, fields)
    changes: dict[str, dict[str, str]] = {}
    for name, after in (
        ("title", fields.title),
        ("text", fields.text),
        ("status", status),
        ("decision_maker_id", decision_maker.id),
    ):
        before = getattr(demand, name)
        if before != after:
            # The text itself may be long: the audit event says only that it changed.
            changes[name] = {} if name == "text" else {"from": str(before), "to": str(after)}
            setattr(demand, name, after)
    if not changes:
        return False
    demand.version += 1
    demand.updated_at = utcnow()
    db.flush()
    _write_version(db, demand, note=fields.note, changed_by=actor)
    db.flush()
    _audit(
        db, org, actor, "demand.edited", "demand", demand.id,
        {"version": demand.version, "changes": changes, "note": fields.note[:NOTE_MAX]},
    )  # fmt: skip
    return True


def demand_history(db: Session, demand: Demand) -> list[DemandVersion]:
    """Every version, the newest first."""
    stmt = (
        select(DemandVersion)
        .where(DemandVersion.demand_id == demand.id)
        .order_by(DemandVersion.version.desc())
    )
    return list(db.scalars(stmt))


def version_counts(db: Session, demands: list[Demand]) -> dict[uuid.UUID, int]:
    if not demands:
        return {}
    stmt = (
        select(DemandVersion.demand_id, func.count())
        .where(DemandVersion.demand_id.in_([d.id for d in demands]))
        .group_by(DemandVersion.demand_id)
    )
    return {demand_id: count for demand_id, count in db.execute(stmt).all()}


def staff_names(db: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Who made each change, for the staff pages (never the members' record)."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = db.execute(select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(wanted)))
    return {user_id: name for user_id, name in rows.all()}


# -- offers and counter-proposals ---------------------------------------------------------------


@dataclass(frozen=True)
class OfferFields:
    made_on: str
    made_by: str
    text: str
    decision_maker_id: str
    pdf: bytes | None = None  # None when no file was chosen
    pdf_name: str = ""
    # Demand id (as the form sent it) -> (met|partly_met|not_met, note). Offers only.
    assessments: dict[str, tuple[str, str]] = field(default_factory=dict)
    reply_to: str = ""  # counter-proposals: the offer answered, if any


def _check_entry(
    fields: OfferFields, errors: dict[str, str], params: dict[str, dict[str, Any]]
) -> date | None:
    """What an offer and a counter-proposal share: the date, the words or the PDF."""
    made_on: date | None = None
    try:
        made_on = date.fromisoformat(fields.made_on)
    except ValueError:
        errors["made_on"] = N_("Enter the date as YYYY-MM-DD.")
    if len(fields.made_by) > 200:
        errors["made_by"] = TOO_LONG_200
    if len(fields.text) > documents.MAX_SUMMARY_CHARS:  # it becomes a decision vote's summary
        errors["text"] = N_("The text is too long: attach it as a PDF instead.")
    if fields.pdf is not None:
        try:
            documents.check_pdf(fields.pdf)
        except BadRequest as exc:  # PayloadTooLarge is one too
            errors["document"] = exc.message
            params["document"] = exc.params
    if not fields.text and fields.pdf is None:
        errors["text"] = N_("Write out the offer, attach it as a PDF, or both.")
    return made_on


def _attach(offer: Offer, fields: OfferFields) -> dict[str, Any]:
    if fields.pdf is None:
        return {}
    offer.document = fields.pdf
    # The uploaded name is shown, never put in a header (downloads get a fixed name).
    offer.document_name = fields.pdf_name[:255]
    offer.document_size = len(fields.pdf)
    offer.document_digest = hashlib.sha256(fields.pdf).hexdigest()
    return {"document_sha256": offer.document_digest, "document_bytes": offer.document_size}


def log_offer(
    db: Session,
    org: Organization,
    campaign: CommunityCampaign,
    *,
    actor: StaffUser,
    fields: OfferFields,
) -> Offer:
    """An offer from a decision-maker, assessed against every demand of the campaign: one
    demand left unassessed and nothing is written."""
    errors: dict[str, str] = {}
    params: dict[str, dict[str, Any]] = {}
    made_on = _check_entry(fields, errors, params)
    if not fields.made_by:
        errors["made_by"] = N_("Say who made the offer.")
    decision_maker = _chosen_decision_maker(db, org, fields.decision_maker_id)
    if decision_maker is None:
        errors["decision_maker"] = N_("Choose the decision-maker who made the offer.")
    demands = list_demands(db, campaign)
    known = {str(d.id) for d in demands}
    if set(fields.assessments) - known:
        errors["assessments"] = N_("The assessment names a demand that is not this campaign's.")
    assessed: list[tuple[Demand, Assessment, str]] = []
    for demand in demands:
        value, note = fields.assessments.get(str(demand.id), ("", ""))
        try:
            assessed.append((demand, Assessment(value), note))
        except ValueError:
            errors[f"assess_{demand.id}"] = N_("Say whether the offer meets this demand.")
        if len(note) > 5000:
            errors[f"note_{demand.id}"] = N_("Use at most 5000 characters.")
    if errors:
        raise FormInvalid(errors, params)
    assert made_on is not None and decision_maker is not None
    offer = Offer(
        campaign_id=campaign.id,
        side=OfferSide.DECISION_MAKER,
        decision_maker_id=decision_maker.id,
        made_on=made_on,
        made_by=fields.made_by,
        text=fields.text,
        status=OfferStatus.ON_TABLE,
        created_by_id=actor.id,
    )
    data = _attach(offer, fields)
    db.add(offer)
    db.flush()
    for demand, assessment, note in assessed:
        db.add(
            OfferAssessment(
                offer_id=offer.id, demand_id=demand.id, assessment=assessment, note=note
            )
        )
    db.flush()
    _audit(
        db, org, actor, "offer.logged", "offer", offer.id,
        {
            "campaign_id": str(campaign.id),
            "made_on": made_on.isoformat(),
            "assessments": {str(d.id): a.value for d, a, _ in assessed},
            **data,
        },
    )  # fmt: skip
    return offer


def log_counter_proposal(
    db: Session,
    org: Organization,
    campaign: CommunityCampaign,
    *,
    actor: StaffUser,
    fields: OfferFields,
) -> Offer:
    """The organization's counter-proposal, addressed to a decision-maker (the one whose
    offer it answers, when it answers one). It needs no assessment."""
    errors: dict[str, str] = {}
    params: dict[str, dict[str, Any]] = {}
    made_on = _check_entry(fields, errors, params)
    reply_to: Offer | None = None
    if fields.reply_to:
        reply_id = _parse_uuid(fields.reply_to)
        reply_to = (
            db.scalars(
                select(Offer).where(
                    Offer.id == reply_id,
                    Offer.campaign_id == campaign.id,
                    Offer.side == OfferSide.DECISION_MAKER,
                )
            ).first()
            if reply_id
            else None
        )
        if reply_to is None:
            errors["reply_to"] = N_("Choose an offer of this campaign, or none.")
    decision_maker = _chosen_decision_maker(db, org, fields.decision_maker_id)
    if decision_maker is None and reply_to is not None:
        decision_maker = db.get(DecisionMaker, reply_to.decision_maker_id)
    if decision_maker is None and "reply_to" not in errors:
        errors["decision_maker"] = N_("Choose the decision-maker this counter-proposal is for.")
    if errors:
        raise FormInvalid(errors, params)
    assert made_on is not None and decision_maker is not None
    offer = Offer(
        campaign_id=campaign.id,
        side=OfferSide.ORGANIZATION,
        decision_maker_id=decision_maker.id,
        made_on=made_on,
        made_by=fields.made_by or org.name[:200],
        text=fields.text,
        status=OfferStatus.ON_TABLE,
        created_by_id=actor.id,
        reply_to_id=reply_to.id if reply_to else None,
    )
    data = _attach(offer, fields)
    db.add(offer)
    db.flush()
    _audit(
        db, org, actor, COUNTER_PROPOSED, "offer", offer.id,
        {
            "campaign_id": str(campaign.id),
            "made_on": made_on.isoformat(),
            "reply_to": str(reply_to.id) if reply_to else None,
            **data,
        },
    )  # fmt: skip
    return offer


def get_offer(db: Session, org: Organization, offer_id: uuid.UUID) -> Offer:
    """An offer or counter-proposal (``_of_this_org``)."""
    return _of_this_org(db, org, Offer, offer_id)


def offer_document(db: Session, offer: Offer) -> bytes:
    """The attached PDF's bytes (loaded only here: the column is deferred); 404 if none."""
    data = db.scalars(select(Offer.document).where(Offer.id == offer.id)).first()
    if not data or not offer.document_size:
        raise NotFound()
    return data


def thread(db: Session, campaign: CommunityCampaign) -> list[Offer]:
    """The negotiation in order: offers and counter-proposals by date made, then logged."""
    stmt = (
        select(Offer)
        .where(Offer.campaign_id == campaign.id)
        .order_by(Offer.made_on, Offer.created_at, Offer.id)
    )
    return list(db.scalars(stmt))


def replies_to(db: Session, org: Organization, offers: list[Offer]) -> dict[uuid.UUID, uuid.UUID]:
    """Counter-proposal id -> the offer it answers."""
    return {o.id: o.reply_to_id for o in offers if o.reply_to_id is not None}


def assessments_of(
    db: Session, offers: list[Offer]
) -> dict[uuid.UUID, list[tuple[OfferAssessment, Demand]]]:
    """Offer id -> its assessment, demand by demand (in the demands' order)."""
    if not offers:
        return {}
    stmt = (
        select(OfferAssessment, Demand)
        .join(Demand, Demand.id == OfferAssessment.demand_id)
        .where(OfferAssessment.offer_id.in_([o.id for o in offers]))
        .order_by(Demand.created_at, Demand.title)
    )
    found: dict[uuid.UUID, list[tuple[OfferAssessment, Demand]]] = defaultdict(list)
    for assessment, demand in db.execute(stmt).all():
        found[assessment.offer_id].append((assessment, demand))
    return dict(found)


def votes_for(db: Session, org: Organization, offers: list[Offer]) -> dict[uuid.UUID, list[Vote]]:
    """Offer id -> the decision votes on it. Their status only is for showing: counts come
    from ``offer.outcome``, written at certification (DESIGN.md §4 rule 3)."""
    if not offers:
        return {}
    stmt = (
        select(Vote)
        .where(Vote.organization_id == org.id, Vote.offer_id.in_([o.id for o in offers]))
        .order_by(Vote.created_at)
    )
    found: dict[uuid.UUID, list[Vote]] = defaultdict(list)
    for vote in db.scalars(stmt):
        assert vote.offer_id is not None
        found[vote.offer_id].append(vote)
    return dict(found)


def decision_makers_by_id(db: Session, org: Organization) -> dict[uuid.UUID, DecisionMaker]:
    return {d.id: d for d in list_decision_makers(db, org)}


def set_offer_status(
    db: Session, org: Organization, offer: Offer, *, actor: StaffUser, status: OfferStatus
) -> None:
    """Withdraw an offer or mark it superseded: while it is on the table, or while its
    decision vote is still a draft (nobody has a link yet); once a vote is scheduled the offer
    waits for it."""
    if status not in (OfferStatus.WITHDRAWN, OfferStatus.SUPERSEDED):
        raise BadRequest(N_("An offer can be marked withdrawn or superseded."))
    if not can_withdraw(db, org, offer):
        raise Conflict(N_("Only an offer on the table can be withdrawn or marked superseded."))
    offer.status = status
    offer.decided_at = utcnow()
    db.flush()
    _audit(db, org, actor, f"offer.{status.value}", "offer", offer.id, {})


def can_withdraw(db: Session, org: Organization, offer: Offer) -> bool:
    """On the table, or put to a vote that is still a draft."""
    if offer.status == OfferStatus.ON_TABLE:
        return True
    if offer.status != OfferStatus.VOTING:
        return False
    return all(v.status == VoteStatus.DRAFT for v in votes_for(db, org, [offer]).get(offer.id, []))


def mark_voting(db: Session, org: Organization, offer: Offer) -> None:
    """A decision vote on the offer is set up: only an offer on the table can be put to one."""
    get_offer(db, org, offer.id)  # this organization's only
    if offer.status != OfferStatus.ON_TABLE or offer.side != OfferSide.DECISION_MAKER:
        raise Conflict(N_("Only an offer on the table can be put to a vote."))
    offer.status = OfferStatus.VOTING
    db.flush()
    _audit(db, org, None, "offer.voting", "offer", offer.id, {})


def _checked_outcome(outcome: dict[str, Any]) -> tuple[bool, datetime, dict[str, Any]]:
    passed = outcome.get("passed")
    counts = outcome.get("counts")
    certified_at = outcome.get("certified_at")
    if (
        not isinstance(passed, bool)
        or not isinstance(outcome.get("vote_id"), str)
        or not isinstance(counts, dict)
        or not isinstance(certified_at, str)
    ):
        raise BadRequest(N_("The vote's outcome could not be read."))
    try:
        when = datetime.fromisoformat(certified_at)
    except ValueError:
        raise BadRequest(N_("The vote's outcome could not be read.")) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return passed, when, dict(outcome)


OUTCOME_NOTES = {
    (True, Assessment.MET): N_("Won: the offer that met it was accepted by the vote."),
    (True, Assessment.PARTLY_MET): N_(
        "Partly won: the offer that partly met it was accepted by the vote."
    ),
    (False, None): N_("Reopened for revision: the offer was rejected by the vote."),
}


def record_outcome(
    db: Session, org: Organization, offer_id: uuid.UUID, outcome: dict[str, Any]
) -> None:
    """Write back a certified decision vote's outcome: the offer accepted (its demands met
    are won, partly met partly won) or rejected (every pressing demand of the campaign is
    reopened for revision). Each demand changed gets a new version. Written again with the
    same vote it changes nothing."""
    passed, certified_at, kept = _checked_outcome(outcome)
    offer = get_offer(db, org, offer_id)
    if offer.status in (OfferStatus.ACCEPTED, OfferStatus.REJECTED):
        if offer.outcome and offer.outcome.get("vote_id") == kept["vote_id"]:
            return
        raise Conflict(N_("This offer was already decided by another vote."))
    if offer.status not in (OfferStatus.ON_TABLE, OfferStatus.VOTING):
        raise Conflict(N_("This offer was withdrawn or superseded."))
    offer.status = OfferStatus.ACCEPTED if passed else OfferStatus.REJECTED
    offer.outcome = kept
    offer.decided_at = certified_at
    changed: dict[str, str] = {}
    if passed:
        for assessment, demand in assessments_of(db, [offer]).get(offer.id, []):
            if assessment.assessment == Assessment.MET:
                status = DemandStatus.WON
            elif assessment.assessment == Assessment.PARTLY_MET:
                status = DemandStatus.PARTLY_WON
            else:
                continue
            if demand.status != status:
                _outcome_version(db, demand, status, OUTCOME_NOTES[(True, assessment.assessment)])
                changed[str(demand.id)] = status.value
    else:
        for demand in list_demands(db, campaign_of(db, offer)):
            if demand.status == DemandStatus.PRESSING:
                _outcome_version(db, demand, DemandStatus.REVISING, OUTCOME_NOTES[(False, None)])
                changed[str(demand.id)] = DemandStatus.REVISING.value
    db.flush()
    _audit(
        db, org, None, "offer.accepted" if passed else "offer.rejected", "offer", offer.id,
        {"vote_id": kept["vote_id"], "passed": passed, "demands": changed},
    )  # fmt: skip


def _outcome_version(db: Session, demand: Demand, status: DemandStatus, note: str) -> None:
    demand.status = status
    demand.version += 1
    demand.updated_at = utcnow()
    db.flush()
    _write_version(db, demand, note=note, changed_by=None)


# -- the decision record ------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRecord:
    campaign: CommunityCampaign
    constituency: Constituency
    demands: list[Demand]
    version_counts: dict[uuid.UUID, int]
    thread: list[Offer]
    assessments: dict[uuid.UUID, list[tuple[OfferAssessment, Demand]]]
    votes: dict[uuid.UUID, list[Vote]]
    decision_makers: dict[uuid.UUID, DecisionMaker]
    replies: dict[uuid.UUID, Offer]  # counter-proposal id -> the offer it answers


def decision_record(db: Session, org: Organization, campaign: CommunityCampaign) -> DecisionRecord:
    """Everything the printable record shows, read at once."""
    demands = list_demands(db, campaign)
    offers = thread(db, campaign)
    by_id = {o.id: o for o in offers}
    replies = {
        counter: by_id[answered]
        for counter, answered in replies_to(db, org, offers).items()
        if answered in by_id
    }
    return DecisionRecord(
        campaign=campaign,
        constituency=constituency_of(db, campaign),
        demands=demands,
        version_counts=version_counts(db, demands),
        thread=offers,
        assessments=assessments_of(db, offers),
        votes=votes_for(db, org, offers),
        decision_makers=decision_makers_by_id(db, org),
        replies=replies,
    )
