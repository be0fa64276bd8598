"""A vote, its options, its documents per language, its certifying committee, its frozen
voter list, and its ballot box: ballots and receipts, which live apart from the voters and
from each other (DESIGN.md §4)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

# An offer decision names its offer (votes.offer_id): that table must be known wherever
# votes are, whichever of the two a process imports first.
from ratify.accounts.models import StaffUser
from ratify.community import models as _community_models  # noqa: F401
from ratify.db import Base, UUIDPrimaryKey, utcnow


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


def _enum(enum: type[StrEnum], length: int = 20) -> Enum:
    return Enum(enum, native_enum=False, length=length, values_callable=_values)


class VoteKind(StrEnum):
    RATIFICATION = "ratification"  # accept the tentative agreement: Yes or No
    QUESTION = "question"  # 2 to 10 options, one choice
    # A community's decision on an offer: accept it (key "yes") or reject it and keep
    # campaigning ("no"); the electorate is a constituency's, frozen at the cutoff.
    OFFER_DECISION = "offer_decision"


class VoteStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # the voter list is frozen; opens by itself at opens_at
    OPEN = "open"
    CLOSED = "closed"
    TALLIED = "tallied"  # counted: challenges decided, paper batches confirmed, result fixed
    CERTIFIED = "certified"  # signed by the committee; read-only


class TallyGrouping(StrEnum):
    AGGREGATE = "aggregate"
    PER_UNIT = "per_unit"


class SecondFactor(StrEnum):
    MEMBER_LAST4 = "member_last4"
    BIRTH_YEAR = "birth_year"
    POSTAL_CODE = "postal_code"
    PHONE_LAST4 = "phone_last4"  # the last digits of the phone a person signed up with
    NONE = "none"


class Vote(UUIDPrimaryKey, Base):
    __tablename__ = "votes"
    __table_args__ = (Index("ix_votes_status_opens_at", "status", "opens_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[VoteKind] = mapped_column(_enum(VoteKind))
    status: Mapped[VoteStatus] = mapped_column(_enum(VoteStatus), default=VoteStatus.DRAFT)
    title: Mapped[str] = mapped_column(String(200))
    # The languages the ballot is offered in; every one needs its wording and summary.
    languages: Mapped[list[str]] = mapped_column(JSON)
    question: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # language -> text
    opens_at: Mapped[datetime | None]  # UTC; entered and shown in the organization's zone
    closes_at: Mapped[datetime | None]
    # The eligibility rule's parameters (rosters.eligibility.EligibilityRule, without its
    # cutoff): units, membership, good_standing, employment, joined_days_before.
    cutoff: Mapped[date | None]
    eligibility: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tally_grouping: Mapped[TallyGrouping] = mapped_column(
        _enum(TallyGrouping), default=TallyGrouping.AGGREGATE
    )
    # Stored now, applied by the tally (issue 6): kind majority|fraction, numerator and
    # denominator, quorum_percent (or null), units every_unit|aggregate.
    threshold: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    signatures_required: Mapped[int] = mapped_column(default=2)
    second_factor: Mapped[SecondFactor] = mapped_column(
        _enum(SecondFactor), default=SecondFactor.MEMBER_LAST4
    )
    mail_letters: Mapped[bool] = mapped_column(default=False)
    # An offer decision: the offer it decides (its outcome is written back at certification).
    offer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("offers.id"), index=True)
    # SHA-256 of the frozen list's sorted member numbers and groups (see votes.voters).
    voter_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # A big voter list is frozen by ``ratify worker``: the job doing it (the vote stays a
    # draft, and cannot be changed, meanwhile), and why the last such job refused, if it did.
    freeze_job_id: Mapped[uuid.UUID | None]
    freeze_error: Mapped[str] = mapped_column(String(300), default="", server_default="")
    # Eligible voters per tally group, counted as the vote opens: once open, nobody becomes
    # or stops being eligible (exclusions end at opening; a voter added later is challenged),
    # so the tally reads them here rather than counting the whole list again.
    eligible_counts: Mapped[dict[str, int] | None] = mapped_column(JSON)
    # A blank (abstain) option on the ballot; the threshold says whether blanks count.
    allow_blank: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Fixed at tallying (votes.tally): per group and in aggregate, the outcome and the rule
    # applied; with the digest of the ballot box it was counted from.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    box_digest: Mapped[str | None] = mapped_column(String(64))
    # Why the reconciliation's figures differ, where they do: certification waits for it.
    reconciliation_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    tallied_at: Mapped[datetime | None]
    certified_at: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    scheduled_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    options: Mapped[list[VoteOption]] = relationship(
        lazy="raise", order_by="VoteOption.position", cascade="all, delete-orphan"
    )


class VoteOption(UUIDPrimaryKey, Base):
    """One choice on the ballot. ``key`` is what a ballot will record (yes, no, or 1..10)."""

    __tablename__ = "vote_options"
    __table_args__ = (UniqueConstraint("vote_id", "key"),)

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"), index=True)
    position: Mapped[int]
    key: Mapped[str] = mapped_column(String(20))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)  # language -> wording


class VoteDocument(UUIDPrimaryKey, Base):
    """The tentative agreement in one language: the full text (a PDF) and a summary written
    in Markdown, kept with its sanitized HTML so ballot pages render nothing per request."""

    __tablename__ = "vote_documents"
    __table_args__ = (UniqueConstraint("vote_id", "language"),)

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"))
    language: Mapped[str] = mapped_column(String(10))
    summary_markdown: Mapped[str] = mapped_column(Text, default="")
    summary_html: Mapped[str] = mapped_column(Text, default="")
    # Read only when the PDF itself is served: listing documents never loads the bytes.
    full_text: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    full_text_name: Mapped[str] = mapped_column(String(255), default="")
    full_text_size: Mapped[int] = mapped_column(default=0)
    full_text_digest: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommitteeMember(UUIDPrimaryKey, Base):
    """A staff user (with the committee role) who certifies this vote; fixed at scheduling."""

    __tablename__ = "vote_committee_members"
    __table_args__ = (UniqueConstraint("vote_id", "user_id"),)

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))

    user: Mapped[StaffUser] = relationship(lazy="raise")


class VoterStatus(StrEnum):
    ELIGIBLE = "eligible"
    EXCLUDED = "excluded"  # by the rule (reason: its code) or by hand (reason: the words)
    CHALLENGED = "challenged"  # added by hand; votes by sealed envelope (issue 6)


class Channel(StrEnum):
    ONLINE = "online"
    PAPER = "paper"
    IN_PERSON = "in_person"


class Voter(UUIDPrimaryKey, Base):
    """One member on a vote's frozen list. Says *that* the member voted, never how, and when
    only to the hour (DESIGN.md §4 rule 1). The second factor is kept only as a keyed hash."""

    __tablename__ = "voters"
    # One index per purpose, no more: each costs seconds when 300,000 voters are frozen.
    # Member numbers are unique in an organization (so this also keeps a member on a list
    # once); the list is read and paged in this order, and counted by vote through it.
    # And the counts by status and group (the tally's eligible voters per unit, turnout,
    # the list's summary) read this narrow index instead of every voter row: at 1,250,000
    # voters, 80 ms instead of 200 (bench/tally.py --eligible-index); 9 MB, built in 0.6 s
    # at that size, so a frozen list pays well under a second for it.
    __table_args__ = (
        UniqueConstraint("vote_id", "member_number"),
        Index("ix_voters_vote_id_status_tally_group", "vote_id", "status", "tally_group"),
    )

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    # As frozen: the list's fingerprint is over these, whatever the roster says later.
    member_number: Mapped[str] = mapped_column(String(50))
    tally_group: Mapped[str] = mapped_column(String(30))  # a unit code, or "all"
    status: Mapped[VoterStatus] = mapped_column(_enum(VoterStatus))
    reason: Mapped[str] = mapped_column(String(500), default="")
    # Which second factor this voter answers: the vote's, another chosen for voters lacking
    # its data, or none; null while their data is missing and nobody has chosen yet.
    factor: Mapped[SecondFactor | None] = mapped_column(_enum(SecondFactor))
    factor_check: Mapped[str | None] = mapped_column(String(64))
    # A keyed hash of the current credential (votes.credentials): the link finds the voter
    # by it; the credential itself is derived, never stored (rule 4).
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Wrong second factors for the current credential, ever: past a limit the link is
    # locked until staff reissue it (the sliding throttle alone lets a guesser go on).
    factor_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    # Server defaults: the freeze copies in only what differs between voters.
    credential_issue: Mapped[int] = mapped_column(default=1, server_default="1")
    has_voted: Mapped[bool] = mapped_column(default=False, server_default=false())
    voted_hour: Mapped[datetime | None]
    channel: Mapped[Channel | None] = mapped_column(_enum(Channel, 10))


class Ballot(Base):
    """One ballot in the box (DESIGN.md §4 rule 1): a random id, the vote, the tally group
    and the choice, nothing else: no member, voter or receipt, no time. ``mixed`` is false
    until the worker's mix has rewritten it in random order. On SQLite the table is WITHOUT
    ROWID, so its pages follow the random key, not the order of casting. (An encrypted
    ballot will add its payload beside ``choice``.)"""

    __tablename__ = "ballots"
    __table_args__ = (
        Index("ix_ballots_vote_id_mixed", "vote_id", "mixed"),
        {"sqlite_with_rowid": False},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"))
    tally_group: Mapped[str] = mapped_column(String(30))
    choice: Mapped[str] = mapped_column(String(20))
    mixed: Mapped[bool] = mapped_column(default=False, server_default=false())


class Receipt(Base):
    """A receipt code (rule 7): random, shown once to the voter, published after the close
    so each can find theirs. It proves a ballot was counted in its group, never which
    choice: nothing links it to the ballot or to the voter."""

    __tablename__ = "receipts"
    __table_args__ = (
        Index("ix_receipts_vote_id_mixed", "vote_id", "mixed"),
        {"sqlite_with_rowid": False},
    )

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"))
    tally_group: Mapped[str] = mapped_column(String(30))
    mixed: Mapped[bool] = mapped_column(default=False, server_default=false())


class BatchStatus(StrEnum):
    ENTERED = "entered"  # by one committee member; not counted yet
    CONFIRMED = "confirmed"  # by a second: counted
    WITHDRAWN = "withdrawn"  # a mistake, taken back before confirmation


class PaperBatch(UUIDPrimaryKey, Base):
    """Paper or in-person ballots counted by hand in one tally group (one ballot box, say):
    counts per option, entered after the close (rule 3) by one committee member, counted
    only once a second has confirmed them; both audited."""

    __tablename__ = "paper_batches"

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"), index=True)
    tally_group: Mapped[str] = mapped_column(String(30))
    label: Mapped[str] = mapped_column(String(200), default="")
    counts: Mapped[dict[str, int]] = mapped_column(JSON)  # option key -> ballots
    status: Mapped[BatchStatus] = mapped_column(_enum(BatchStatus), default=BatchStatus.ENTERED)
    entered_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    confirmed_at: Mapped[datetime | None]


class EnvelopeStatus(StrEnum):
    SEALED = "sealed"
    ACCEPTED = "accepted"  # its ballot is in the box, with no link back
    REJECTED = "rejected"  # destroyed unopened


class Envelope(UUIDPrimaryKey, Base):
    """A challenged voter's ballot, sealed. Online, its choice is encrypted under the vote's
    envelope key (derived from the secret key) and nothing reads it until the challenge is
    accepted: then it goes straight into the box as a new ballot and the envelope is
    emptied. Rejected, it is emptied unopened. On paper the envelope itself is physical:
    this row records it and the decision. The reason is kept either way."""

    __tablename__ = "envelopes"

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"), index=True)
    voter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("voters.id"), unique=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, 10))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # nonce + ciphertext
    status: Mapped[EnvelopeStatus] = mapped_column(
        _enum(EnvelopeStatus), default=EnvelopeStatus.SEALED
    )
    reason: Mapped[str] = mapped_column(String(500), default="")
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None]


class Signature(UUIDPrimaryKey, Base):
    """One certifying committee member's sign-off (after re-entering their password)."""

    __tablename__ = "vote_signatures"
    __table_args__ = (UniqueConstraint("vote_id", "user_id"),)

    vote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("votes.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
