"""The outbox of notices and the campaigns that fill it.

An outbox row says who gets which notice by which channel, never what it says: the text and
the personal link are made when it is sent (DESIGN.md §4 rule 4: a link is derived, never
stored), so the table, its error text and the logs hold no credential.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ratify.db import Base, UUIDPrimaryKey, utcnow


def _enum(cls: type[StrEnum], length: int = 20) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class MessageChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"  # printed in a batch by staff (notices.letters), never "sent" by a worker


class MessageKind(StrEnum):
    ANNOUNCEMENT = "announcement"  # voting is open (or about to be), with the personal link
    REMINDER = "reminder"  # to voters who have not voted, checked again at send time
    RESULT = "result"  # the certified result
    LINK_REISSUED = "link_reissued"  # the old link no longer works; the new one
    PASSWORD_RESET = "password_reset"  # noqa: S105  (a staff member's one-time link)


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting (again, after a failure: run_after says when)
    SENDING = "sending"  # claimed by a worker until locked_until
    SENT = "sent"  # handed to the channel (provider_id says under which id)
    SKIPPED = "skipped"  # no longer due: the voter voted, opted out, or the link changed
    BOUNCED = "bounced"  # the channel refused the address for good
    DEAD = "dead"  # failed on every attempt: the dead letters staff see as "failed"


class Message(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        # What a worker claims next: ready rows of one channel, oldest first.
        Index("ix_outbox_messages_channel_status_run_after", "channel", "status", "run_after"),
        # A campaign's progress, counted by status.
        Index("ix_outbox_messages_campaign_id_status", "campaign_id", "status"),
    )

    # An integer key: a campaign's 300,000 rows are written by one INSERT ... SELECT. Two
    # indexes and no more: each costs seconds on such an insert.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # None for a staff member's own mail (a password reset), which belongs to no one union.
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[MessageKind] = mapped_column(_enum(MessageKind))
    channel: Mapped[MessageChannel] = mapped_column(_enum(MessageChannel, 10))
    vote_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("votes.id"))
    voter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("voters.id"))
    # For a password reset: whose, and which one-time token (its secret is derived at send
    # time from the token's id, like a personal link, so it is stored nowhere).
    staff_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    password_token_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("password_tokens.id"))
    # The credential issue the notice was meant for: a link reissued since makes it moot.
    credential_issue: Mapped[int | None]
    to_address: Mapped[str] = mapped_column(String(254))  # email or E.164 phone; "" for letters
    language: Mapped[str] = mapped_column(String(10))
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus, 10), default=MessageStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None]
    # The channel's own id for what it accepted (an SMTP queue id, an SMS sid): proof of
    # sending, and what a provider's status callback names.
    provider_id: Mapped[str | None] = mapped_column(String(200))
    # Why the last attempt failed, in the channel's words; never the message's text.
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # send_at is in the future; a worker tick queues it then
    QUEUING = "queuing"  # a worker is writing its messages
    QUEUED = "queued"  # its messages are in the outbox
    CANCELLED = "cancelled"


class Audience(StrEnum):
    ALL = "all"  # every eligible voter
    NOT_VOTED = "not_voted"  # those who have not voted, when queued and again when sent


class Reach(StrEnum):
    """Which of the audience, by the contact details they have."""

    ALL = "all"
    EMAIL = "email"  # those with an email address
    SMS = "sms"  # those with a phone
    LETTER_ONLY = "letter_only"  # those with neither: they get a letter


class BothChannels(StrEnum):
    """What members with both an email address and a phone get (the organization's choice)."""

    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"


class Campaign(UUIDPrimaryKey, Base):
    """One notice to a vote's voters: its texts per channel and language, its audience, and
    when it goes. Queuing it writes one outbox row per member and channel."""

    __tablename__ = "campaigns"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"), index=True)
    kind: Mapped[MessageKind] = mapped_column(_enum(MessageKind))
    name: Mapped[str] = mapped_column(String(200))
    # {channel: {language: {"subject": ..., "body": ...}}}; placeholders as in notices.texts.
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audience: Mapped[Audience] = mapped_column(_enum(Audience), default=Audience.ALL)
    reach: Mapped[Reach] = mapped_column(_enum(Reach), default=Reach.ALL)
    tally_group: Mapped[str | None] = mapped_column(String(30))  # one unit only, or everyone
    both_channels: Mapped[BothChannels] = mapped_column(
        _enum(BothChannels, 10), default=BothChannels.EMAIL
    )
    letters: Mapped[bool] = mapped_column(default=True)  # letters for those with neither
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, 10), default=CampaignStatus.DRAFT
    )
    send_at: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]
    queued_count: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsOptOut(Base):
    """A phone that replied STOP to our number: it gets no more texts until it replies START."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    opted_out_at: Mapped[datetime] = mapped_column(default=utcnow)
