"""A campaign's letters taken off the outbox in batches for printing: each becomes a page of
``letters.letters_pdf`` with the member's link derived now, and is marked printed in the same
transaction (so a batch is printed once; a failed download prints nothing)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ratify.db import utcnow
from ratify.errors import N_, Conflict
from ratify.notices.letters import Letter
from ratify.notices.models import Campaign, Message, MessageChannel, MessageKind, MessageStatus
from ratify.orgs.models import Organization
from ratify.rosters.models import Member
from ratify.settings import LANGUAGES, Settings
from ratify.votes import credentials, voters
from ratify.votes.models import SecondFactor, Vote, Voter


def address_lines(member: Member) -> tuple[str, ...]:
    town = " ".join(part for part in (member.city, member.region, member.postal_code) if part)
    lines = (member.address_line1, member.address_line2, town, member.country)
    return tuple(line for line in lines if line)


def take_batch(
    db: Session, settings: Settings, org: Organization, vote: Vote, campaign: Campaign,
    *, limit: int,
) -> list[Letter]:  # fmt: skip
    if SecondFactor.POSTAL_CODE in voters.factors_of_voters(db, vote):
        raise Conflict(
            N_("Some voters answer their postal code, which a letter shows: choose another "
               "second factor for them before printing letters.")
        )  # fmt: skip
    rows = db.execute(
        select(Message.id, Voter, Member)
        .join(Voter, Voter.id == Message.voter_id)
        .join(Member, Member.id == Voter.member_id)
        .where(
            Message.campaign_id == campaign.id,
            Message.channel == MessageChannel.LETTER,
            Message.status == MessageStatus.QUEUED,
        )
        .order_by(Member.postal_code, Voter.member_number)  # as a mail house sorts them
        .limit(limit)
        .with_for_update(of=Message.__table__, skip_locked=True)
    ).all()
    minter = credentials.Minter(settings.secret_key, vote.id)
    printed, skipped, batch = [], [], []
    for message_id, voter, member in rows:
        if campaign.kind == MessageKind.REMINDER and voter.has_voted:
            skipped.append(message_id)
            continue
        language = member.preferred_language
        if language not in LANGUAGES or language not in vote.languages:
            language = next((lang for lang in vote.languages if lang in LANGUAGES), "en")
        credential = minter.credential(voter.id, voter.credential_issue)
        batch.append(
            Letter(
                language=language,
                name=f"{member.first_name} {member.last_name}".strip(),
                address_lines=address_lines(member),
                organization=org.name,
                vote_title=vote.title,
                opens_at=vote.opens_at or utcnow(),
                closes_at=vote.closes_at or utcnow(),
                timezone=org.timezone,
                link=credentials.link(settings.base_url, credential),
                factor=voter.factor or vote.second_factor,
            )
        )
        printed.append(message_id)
    now = utcnow()
    for ids, values in (
        (printed, {"status": MessageStatus.SENT, "sent_at": now, "provider_id": "printed"}),
        (skipped, {"status": MessageStatus.SKIPPED, "last_error": "voted already"}),
    ):
        if ids:
            db.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(attempts=1, **values)
                .execution_options(synchronize_session=False)
            )
    return batch
