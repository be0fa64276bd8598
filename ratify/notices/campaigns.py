"""Campaigns: a notice to a vote's voters, composed by staff, queued into the outbox now or at
a set time.

Queuing writes one outbox row per member and channel with one INSERT ... SELECT per channel
(300,000 rows in seconds), in the transaction that starts it: in the request for a small
list, in a worker job for a big one (the job itself written in the request's transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, insert, literal, not_, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound
from ratify.jobs import services as jobs
from ratify.jobs.models import Job
from ratify.notices import texts
from ratify.notices.models import (
    Audience,
    BothChannels,
    Campaign,
    CampaignStatus,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    Reach,
    SmsOptOut,
)
from ratify.orgs.models import Organization
from ratify.rosters.models import Member
from ratify.votes.models import Vote, Voter, VoterStatus, VoteStatus

QUEUE_TASK = "notices.queue_campaign"
# Lists bigger than this are queued by `ratify worker` (a few seconds for 300,000).
IN_REQUEST_VOTERS = 20_000
CAMPAIGN_KINDS = (MessageKind.ANNOUNCEMENT, MessageKind.REMINDER, MessageKind.RESULT)
TEXT_CHANNELS = (MessageChannel.EMAIL, MessageChannel.SMS)
MAX_SUBJECT = 200
MAX_BODY = {MessageChannel.EMAIL: 10_000, MessageChannel.SMS: 1_000}


class CampaignInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need attention."))
        self.errors = errors


@dataclass(frozen=True)
class CampaignForm:
    kind: MessageKind
    name: str
    audience: Audience
    reach: Reach
    tally_group: str | None
    both_channels: BothChannels
    letters: bool
    # {channel: {language: {"subject": ..., "body": ...}}}
    texts: Mapping[str, Mapping[str, Mapping[str, str]]]


def languages_of(vote: Vote, campaign: Campaign | None = None) -> list[str]:
    """The vote's languages, then any the organization added its own texts for."""
    found = list(vote.languages)
    if campaign is not None:
        for by_language in campaign.texts.values():
            found.extend(lang for lang in by_language if lang not in found)
    return found


def default_texts(kind: MessageKind, languages: list[str]) -> dict[str, dict[str, dict[str, str]]]:
    found: dict[str, dict[str, dict[str, str]]] = {}
    for channel in TEXT_CHANNELS:
        for lang in languages:
            text = texts.default_text(kind, channel, lang)
            found.setdefault(channel.value, {})[lang] = {"subject": text.subject, "body": text.body}
    return found


def _check_kind(db: Session, vote: Vote, kind: MessageKind) -> None:
    if kind not in CAMPAIGN_KINDS:
        raise BadRequest(N_("Choose an announcement, a reminder or a result notice."))
    if kind == MessageKind.RESULT:
        if vote.status != VoteStatus.CERTIFIED:
            raise Conflict(N_("A result notice can go out once the result is certified."))
        if not db.get_one(Organization, vote.organization_id).publish_results:
            # The notice sends members to the result through their links (votes.published).
            raise Conflict(
                N_("Members can read the result through their links only where the "
                   "organization publishes certified results: tick that in its settings first.")
            )  # fmt: skip
    elif vote.status not in (VoteStatus.SCHEDULED, VoteStatus.OPEN):
        raise Conflict(
            N_("Announcements and reminders go out while the vote is scheduled or open.")
        )


def check_form(vote: Vote, form: CampaignForm) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not form.name.strip():
        errors["name"] = N_("Give the notice a name staff will recognize.")
    elif len(form.name) > 200:
        errors["name"] = N_("Keep the name under 200 characters.")
    for channel in TEXT_CHANNELS:
        for lang, text in form.texts.get(channel.value, {}).items():
            for part in ("subject", "body"):
                value = text.get(part, "")
                key = f"{channel.value}.{lang}.{part}"
                if channel == MessageChannel.SMS and part == "subject":
                    continue
                limit = MAX_SUBJECT if part == "subject" else MAX_BODY[channel]
                if not value.strip():
                    errors[key] = N_("Write this text, or the default will be lost.")
                elif part == "subject" and ("\n" in value or "\r" in value):
                    errors[key] = N_("Keep the subject on one line.")
                elif len(value) > limit:
                    errors[key] = N_("This text is too long.")
                elif bad := texts.unknown_placeholders(value):
                    errors[key] = N_("Unknown placeholder: %(found)s. Use only those listed.")
                    errors[key + ".found"] = ", ".join(bad)
                elif part == "body" and "{link}" not in value and form.kind != MessageKind.RESULT:
                    errors[key] = N_("The text must hold {link}: the member's personal link.")
    return errors


def create(
    db: Session, org: Organization, vote: Vote, form: CampaignForm, *, actor: StaffUser
) -> Campaign:
    _check_kind(db, vote, form.kind)
    if errors := check_form(vote, form):
        raise CampaignInvalid(errors)
    now = utcnow()
    campaign = Campaign(
        id=uuid.uuid4(),
        organization_id=org.id,
        vote_id=vote.id,
        kind=form.kind,
        name=form.name.strip(),
        texts=_plain(form.texts),
        audience=form.audience,
        reach=form.reach,
        tally_group=form.tally_group or None,
        both_channels=form.both_channels,
        letters=form.letters,
        status=CampaignStatus.DRAFT,
        created_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    db.add(campaign)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="notice.campaign_created",
        object_type="campaign",
        object_id=campaign.id,
        data={"vote_id": str(vote.id), "kind": form.kind.value, "name": campaign.name},
    )
    return campaign


def update(
    db: Session, org: Organization, vote: Vote, campaign: Campaign, form: CampaignForm,
    *, actor: StaffUser,
) -> None:  # fmt: skip
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise Conflict(N_("This notice has been queued: it can no longer be changed."))
    if errors := check_form(vote, form):
        raise CampaignInvalid(errors)
    campaign.name = form.name.strip()
    campaign.texts = _plain(form.texts)
    campaign.audience = form.audience
    campaign.reach = form.reach
    campaign.tally_group = form.tally_group or None
    campaign.both_channels = form.both_channels
    campaign.letters = form.letters
    campaign.updated_at = utcnow()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="notice.campaign_changed",
        object_type="campaign",
        object_id=campaign.id,
        data={"name": campaign.name},
    )


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in value.items()}


def get(db: Session, org: Organization, vote: Vote, campaign_id: uuid.UUID) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None or campaign.organization_id != org.id or campaign.vote_id != vote.id:
        raise NotFound()
    return campaign


def list_for_vote(db: Session, vote: Vote) -> list[Campaign]:
    stmt = select(Campaign).where(Campaign.vote_id == vote.id).order_by(Campaign.created_at)
    return list(db.scalars(stmt))


# -- who gets what -------------------------------------------------------------------------------


def _voters(campaign: Campaign) -> ColumnElement[bool]:
    conditions = [
        Voter.vote_id == campaign.vote_id,
        Voter.status.in_([VoterStatus.ELIGIBLE, VoterStatus.CHALLENGED]),
        Voter.credential_hash.is_not(None),
    ]
    if campaign.audience == Audience.NOT_VOTED:
        conditions.append(Voter.has_voted.is_(False))
    if campaign.tally_group:
        conditions.append(Voter.tally_group == campaign.tally_group)
    return and_(*conditions)


def _channel_condition(campaign: Campaign, channel: MessageChannel) -> ColumnElement[bool] | None:
    """Which of the campaign's voters get this channel; None when none do."""
    has_email = Member.email != ""
    has_phone = Member.phone != ""
    reach, both = campaign.reach, campaign.both_channels
    if channel == MessageChannel.EMAIL:
        if reach not in (Reach.ALL, Reach.EMAIL):
            return None
        if reach == Reach.EMAIL or both in (BothChannels.EMAIL, BothChannels.BOTH):
            return has_email
        return and_(has_email, not_(has_phone))
    if channel == MessageChannel.SMS:
        if reach not in (Reach.ALL, Reach.SMS):
            return None
        opted_out = exists().where(SmsOptOut.phone == Member.phone)
        if reach == Reach.SMS or both in (BothChannels.SMS, BothChannels.BOTH):
            return and_(has_phone, not_(opted_out))
        return and_(has_phone, not_(has_email), not_(opted_out))
    if reach == Reach.LETTER_ONLY or (reach == Reach.ALL and campaign.letters):
        return and_(not_(has_email), not_(has_phone))
    return None


def reach_counts(db: Session, campaign: Campaign) -> dict[MessageChannel, int]:
    """How many messages each channel would get if the campaign were queued now."""
    found = {}
    for channel in MessageChannel:
        condition = _channel_condition(campaign, channel)
        if condition is None:
            found[channel] = 0
            continue
        stmt = (
            select(func.count())
            .select_from(Voter)
            .join(Member, Member.id == Voter.member_id)
            .where(_voters(campaign), condition)
        )
        found[channel] = int(db.scalar(stmt) or 0)
    return found


def queue(db: Session, campaign: Campaign, vote: Vote) -> int:
    """Write the campaign's outbox rows; how many. Reminders are checked again when sent."""
    now = utcnow()
    offered = languages_of(vote, campaign)
    language = case(
        (Member.preferred_language.in_(offered), Member.preferred_language),
        else_=literal(offered[0]),
    )
    table = Message.__table__.c
    for channel in MessageChannel:
        condition = _channel_condition(campaign, channel)
        if condition is None:
            continue
        address = {
            MessageChannel.EMAIL: Member.email,
            MessageChannel.SMS: Member.phone,
            MessageChannel.LETTER: literal(""),
        }[channel]
        rows = (
            select(
                literal(campaign.organization_id, table.organization_id.type),
                literal(campaign.id, table.campaign_id.type),
                literal(campaign.kind.value, table.kind.type),
                literal(channel.value, table.channel.type),
                literal(vote.id, table.vote_id.type),
                Voter.id,
                Voter.credential_issue,
                address,
                language,
                literal(MessageStatus.QUEUED.value, table.status.type),
                literal(0),
                literal(5),
                literal(now, table.run_after.type),
                literal(now, table.created_at.type),
            )
            .select_from(Voter)
            .join(Member, Member.id == Voter.member_id)
            .where(_voters(campaign), condition)
            .order_by(Voter.member_number)
        )
        columns = [
            "organization_id",
            "campaign_id",
            "kind",
            "channel",
            "vote_id",
            "voter_id",
            "credential_issue",
            "to_address",
            "language",
            "status",
            "attempts",
            "max_attempts",
            "run_after",
            "created_at",
        ]
        db.execute(insert(Message).from_select(columns, rows))
    # Counted, not summed from rowcounts: a driver may not report one for INSERT ... SELECT.
    return int(db.scalar(select(func.count()).where(Message.campaign_id == campaign.id)) or 0)


# -- when it goes ------------------------------------------------------------------------------


def _startable(db: Session, campaign: Campaign, vote: Vote) -> None:
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise Conflict(N_("This notice has been queued already."))
    _check_kind(db, vote, campaign.kind)


def _start(db: Session, campaign: Campaign, vote: Vote) -> None:
    """Queue now, or hand the queuing to a worker job when the list is big."""
    listed = db.scalar(
        select(func.count()).select_from(Voter).where(Voter.vote_id == vote.id)
    )  # fmt: skip
    if (listed or 0) > IN_REQUEST_VOTERS:
        campaign.status = CampaignStatus.QUEUING
        jobs.enqueue(
            db, QUEUE_TASK, {"campaign_id": str(campaign.id)}, organization_id=vote.organization_id
        )
        return
    _queue_now(db, campaign, vote)


def _queue_now(db: Session, campaign: Campaign, vote: Vote) -> None:
    campaign.queued_count = queue(db, campaign, vote)
    campaign.status = CampaignStatus.QUEUED
    campaign.queued_at = utcnow()


def send_now(
    db: Session, org: Organization, vote: Vote, campaign: Campaign, *, actor: StaffUser
) -> None:
    _startable(db, campaign, vote)
    campaign.send_at = utcnow()
    _start(db, campaign, vote)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="notice.campaign_sent",
        object_type="campaign",
        object_id=campaign.id,
        data={"name": campaign.name, "queued": campaign.queued_count},
    )


def schedule(
    db: Session, org: Organization, vote: Vote, campaign: Campaign, send_at: datetime,
    *, actor: StaffUser,
) -> None:  # fmt: skip
    _startable(db, campaign, vote)
    if send_at <= utcnow():
        raise BadRequest(N_("Choose a time in the future, or send it now."))
    closes = vote.closes_at
    if closes is not None and campaign.kind != MessageKind.RESULT and send_at >= closes:
        raise BadRequest(N_("Choose a time before the vote closes."))
    campaign.status = CampaignStatus.SCHEDULED
    campaign.send_at = send_at
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="notice.campaign_scheduled",
        object_type="campaign",
        object_id=campaign.id,
        data={"name": campaign.name, "send_at": send_at.isoformat()},
    )


def cancel(
    db: Session, org: Organization, campaign: Campaign, *, actor: StaffUser
) -> None:  # fmt: skip
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise Conflict(N_("This notice has been queued: it can no longer be cancelled."))
    campaign.status = CampaignStatus.CANCELLED
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="notice.campaign_cancelled",
        object_type="campaign",
        object_id=campaign.id,
        data={"name": campaign.name},
    )


def start_due(db: Session) -> int:
    """The worker tick: scheduled campaigns whose time has come are queued (or dropped, with
    the reason kept, when their vote has moved on)."""
    now = utcnow()
    due = db.scalars(
        select(Campaign)
        .where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now)
        .with_for_update(skip_locked=True)
    ).all()
    for campaign in due:
        vote = db.get_one(Vote, campaign.vote_id)
        try:
            _check_kind(db, vote, campaign.kind)
        except (Conflict, BadRequest):
            campaign.status = CampaignStatus.CANCELLED
            continue
        _start(db, campaign, vote)
    return len(due)


def queue_job(db: Session, job: Job) -> None:
    campaign = db.get(Campaign, uuid.UUID(job.payload["campaign_id"]), with_for_update=True)
    if campaign is None or campaign.status != CampaignStatus.QUEUING:
        return  # queued already by an earlier attempt that committed
    _queue_now(db, campaign, db.get_one(Vote, campaign.vote_id))
