"""Challenged ballots in sealed envelopes (issue 6). A challenged voter votes online or on
paper; their ballot waits in an envelope kept with their voter record until the committee
decides the challenge, after the close and before the count. Accepted, the choice goes
straight into the box as a new ballot with no link back (DESIGN.md §4 rule 1); rejected, the
envelope is emptied unopened. The decision and its reason are kept, and audited.

The seal. Each vote has its own envelope key, derived from the secret key by HKDF-SHA256
under a purpose label of its own ("ratify.vote-envelope-key") and the vote id: never the
credential key, so nothing that derives links can open envelopes, and one vote's key opens
no other vote's. The payload is sealed with AES-256-GCM (the ``cryptography`` package), a
random 96-bit nonce, and the vote id and envelope id as associated data, so a sealed payload
copied into another voter's envelope (or another vote's) no longer opens. The payload is
padded to a fixed size: the stored bytes are as long whatever the choice (rule 1's lesson
from the review page: sizes leak). ``sealed`` holds nonce + ciphertext; nothing reads it but
``decide``, and only to accept.

The receipt (rule 7). The voter is shown a receipt code when they seal, like any voter, but
it is stored only inside the sealed payload: no Receipt row exists while the envelope waits,
so the published receipts never hold one for a ballot that is not in the box. Accepted, the
receipt is inserted beside the ballot (both unmixed, so the worker's next mix rewrites them
with the rest of the box and no join on transaction id or position finds them); rejected,
it is destroyed with the envelope and never published. A receipt still proves only that a
ballot was counted in its group, never which choice. So "receipts = online ballots" holds
for the reconciliation, and a voter whose code is missing after the decisions knows their
challenge was rejected (the committee tells them so anyway).

Sealing is one transaction like a cast (rule 2): the voter's conditional update (this
voter, this credential issue, challenged, not yet voted, the vote open now) and the
envelope's insert; no audit event, no ballot, no receipt. Paper envelopes (recorded by the
strike-off page with nothing sealed) are decided the same way, without decryption: the
physical envelope joins the paper count, or is destroyed.
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound
from ratify.orgs.models import Organization
from ratify.rosters.models import Member
from ratify.votes import casting, sheets
from ratify.votes.models import (
    Ballot,
    Channel,
    Envelope,
    EnvelopeStatus,
    Receipt,
    Vote,
    Voter,
    VoterStatus,
    VoteStatus,
)

ENVELOPE_KEY_PURPOSE = b"ratify.vote-envelope-key"
ASSOCIATED_PREFIX = b"ratify.envelope.v1"
NONCE_BYTES = 12
PAYLOAD_BYTES = 64  # {"c": an option key of up to 20, "r": a 16-letter receipt}, padded
SEALED_BYTES = NONCE_BYTES + PAYLOAD_BYTES + 16  # and GCM's tag
REASON_LENGTH = 500
_RECEIPT_SHAPE = re.compile(f"[{casting.RECEIPT_ALPHABET}]{{{casting.RECEIPT_LENGTH}}}")


class BrokenSeal(Conflict):
    """A sealed payload that does not authenticate: changed after sealing, moved from
    another envelope, or sealed under another secret key. Nothing is written."""

    default_message = N_(
        "This envelope cannot be opened: its seal does not check (it was changed after it "
        "was sealed, or sealed under another secret key). Nothing was changed. Reject it, "
        "giving that reason."
    )


class NotDecidable(Conflict):
    default_message = N_("Challenges are decided after the close and before the count.")


# -- the seal ----------------------------------------------------------------------------------


def envelope_key(secret_key: str, vote_id: uuid.UUID) -> bytes:
    """The vote's 256-bit envelope key: HKDF-SHA256 of the secret key, for this purpose and
    this vote only."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=ENVELOPE_KEY_PURPOSE + vote_id.bytes,
    ).derive(secret_key.encode())


def _associated(vote_id: uuid.UUID, envelope_id: uuid.UUID) -> bytes:
    return ASSOCIATED_PREFIX + vote_id.bytes + envelope_id.bytes


def seal_payload(
    secret_key: str, vote_id: uuid.UUID, envelope_id: uuid.UUID, choice: str, receipt: str
) -> bytes:
    """Nonce + AES-GCM ciphertext of the choice and the receipt code, of a fixed length."""
    plain = json.dumps({"c": choice, "r": receipt}, separators=(",", ":")).encode()
    if len(plain) > PAYLOAD_BYTES:
        raise ValueError("an option key longer than an envelope holds")
    plain = plain.ljust(PAYLOAD_BYTES)  # JSON allows the trailing spaces
    nonce = os.urandom(NONCE_BYTES)
    aead = AESGCM(envelope_key(secret_key, vote_id))
    return nonce + aead.encrypt(nonce, plain, _associated(vote_id, envelope_id))


def open_payload(
    secret_key: str, vote_id: uuid.UUID, envelope_id: uuid.UUID, sealed: bytes | None
) -> tuple[str, str]:
    """(choice, receipt code) from a sealed payload, or BrokenSeal."""
    if sealed is None or len(sealed) != SEALED_BYTES:
        raise BrokenSeal()
    aead = AESGCM(envelope_key(secret_key, vote_id))
    try:
        plain = aead.decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _associated(vote_id, envelope_id)
        )
        data = json.loads(plain)
    except (InvalidTag, ValueError):
        raise BrokenSeal() from None
    choice, receipt = (data.get("c"), data.get("r")) if isinstance(data, dict) else (None, None)
    if not isinstance(choice, str) or not isinstance(receipt, str):
        raise BrokenSeal()
    if not _RECEIPT_SHAPE.fullmatch(receipt):
        raise BrokenSeal()
    return choice, receipt


# -- sealing (the member's cast, for a challenged voter) ----------------------------------------


# As the cast's first write, for a challenged voter.
_MARK_SEALED = casting.spending(VoterStatus.CHALLENGED)
_ENVELOPE = insert(casting.table(Envelope))


def seal(db: Session, secret_key: str, seat: casting.Seat, choice: str) -> str:
    """A challenged voter's online ballot, sealed in an envelope; returns the receipt code
    to show them once (kept only inside the seal until acceptance). Two writes, no read
    before them: the voter's conditional update (so a second attempt, or a paper vote,
    matches nothing) and the envelope. A refused seal has written nothing."""
    if choice not in sheets.sheet(db, seat.vote_id).keys:
        _refuse(db, seat)
        raise BadRequest(N_("Choose one of the options on the ballot."))
    now = utcnow()
    marked = db.connection().execute(_MARK_SEALED, casting.spent(seat, now)).scalar()
    if marked is None:
        _refuse(db, seat)
        raise casting.AlreadyVoted(casting.CHALLENGED_ALREADY_VOTED)
    envelope_id = uuid.uuid4()
    code = casting.new_receipt_code()
    db.connection().execute(
        _ENVELOPE,
        {
            "id": envelope_id,
            "vote_id": seat.vote_id,
            "voter_id": seat.voter_id,
            "channel": Channel.ONLINE,
            "sealed": seal_payload(secret_key, seat.vote_id, envelope_id, choice, code),
            "status": EnvelopeStatus.SEALED,
            "reason": "",
        },
    )
    return code


def _refuse(db: Session, seat: casting.Seat) -> None:
    """Why this seat may not seal, read only when it may not."""
    access = casting.find_by_session(db, seat.voter_id, seat.issue)
    if access is None or access.vote_id != seat.vote_id:
        raise casting.LinkReplaced()
    casting.may_cast(access)
    if access.status != VoterStatus.CHALLENGED:
        raise Conflict()  # the challenge was settled otherwise meanwhile


# -- the committee's decisions --------------------------------------------------------------------


def pending(db: Session, vote: Vote) -> int:
    """Envelopes not yet decided, online or on paper: the count waits for none."""
    return (
        db.scalar(
            select(func.count())
            .select_from(Envelope)
            .where(Envelope.vote_id == vote.id, Envelope.status == EnvelopeStatus.SEALED)
        )
        or 0
    )


def get_envelope(db: Session, vote: Vote, envelope_id: uuid.UUID) -> Envelope:
    """An envelope of *this* vote (the vote already scoped to its organization), or 404."""
    found = db.scalars(
        select(Envelope).where(Envelope.id == envelope_id, Envelope.vote_id == vote.id)
    ).first()
    if found is None:
        raise NotFound()
    return found


def decide(
    db: Session,
    org: Organization,
    vote: Vote,
    envelope: Envelope,
    *,
    accept: bool,
    reason: str,
    actor: StaffUser,
    secret_key: str,
) -> None:
    """Accept or reject a challenged voter's envelope, once, after the close and before the
    count. Accepted online: the seal is checked (so a broken one is refused now and writes
    nothing), but the envelope stays sealed until the count opens every accepted envelope
    together into the box (``open_accepted``): one ballot inserted here, in the transaction
    that marks this voter's envelope, would share its transaction id and its place with
    it (rule 1), and a copy of the table before and after would show its choice. Rejected:
    emptied unopened. The reason (required to reject) is kept on the envelope and in the
    audit event, which names the member and the decision, never the choice (rule 5)."""
    if envelope.vote_id != vote.id or vote.organization_id != org.id:
        raise NotFound()
    if vote.status != VoteStatus.CLOSED:
        raise NotDecidable()
    if envelope.status != EnvelopeStatus.SEALED:
        raise Conflict(N_("This envelope was already decided."))
    reason = reason.strip()
    if not accept and not reason:
        raise BadRequest(N_("Give the reason for rejecting the challenged ballot."))
    if len(reason) > REASON_LENGTH:
        raise BadRequest(N_("Use at most 500 characters."))
    voter = db.get_one(Voter, envelope.voter_id)
    if accept and envelope.channel == Channel.ONLINE:
        choice, _code = open_payload(secret_key, vote.id, envelope.id, envelope.sealed)
        if choice not in sheets.sheet(db, vote.id).keys:
            raise BrokenSeal()
    # An accepted online envelope keeps its seal until the count; any other is emptied.
    keep_sealed = accept and envelope.channel == Channel.ONLINE
    # Conditional, so two committee members deciding at once decide once, and never after
    # the count has begun.
    decided = db.execute(
        update(Envelope)
        .where(
            Envelope.id == envelope.id,
            Envelope.status == EnvelopeStatus.SEALED,
            exists().where(Vote.id == Envelope.vote_id, Vote.status == VoteStatus.CLOSED),
        )
        .values(
            status=EnvelopeStatus.ACCEPTED if accept else EnvelopeStatus.REJECTED,
            sealed=Envelope.sealed if keep_sealed else None,
            reason=reason,
            decided_by_id=actor.id,
            decided_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(decided, "rowcount", 0)) != 1:
        raise Conflict(N_("This envelope was already decided."))
    db.expire(envelope)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.challenge_accepted" if accept else "vote.challenge_rejected",
        object_type="vote",
        object_id=vote.id,
        member_id=voter.member_id,
        data={
            "member_number": voter.member_number,
            "channel": envelope.channel.value,
            "decision": "accepted" if accept else "rejected",
            "reason": reason,
        },
    )


def open_accepted(db: Session, vote: Vote, secret_key: str) -> int:
    """The count's first step: every accepted online envelope opened at once, in random
    order, its choice a new ballot (a new random id, no voter, no envelope, no time) in the
    voter's group with the receipt the voter was shown, and the envelopes emptied. The
    caller then mixes the whole box in the same transaction, so these ballots share their
    transaction and their places with every other. Returns the ballots added."""
    rows = db.execute(
        select(Envelope.id, Envelope.sealed, Voter.tally_group)
        .join(Voter, Voter.id == Envelope.voter_id)
        .where(
            Envelope.vote_id == vote.id,
            Envelope.status == EnvelopeStatus.ACCEPTED,
            Envelope.sealed.is_not(None),
        )
    ).all()
    keys = sheets.sheet(db, vote.id).keys
    opened = []
    for envelope_id, sealed, group in rows:
        choice, code = open_payload(secret_key, vote.id, envelope_id, sealed)
        if choice not in keys:
            raise BrokenSeal()
        opened.append((choice, code, group))
    random.SystemRandom().shuffle(opened)
    for choice, code, group in opened:
        db.execute(
            insert(Ballot).values(
                id=uuid.uuid4(), vote_id=vote.id, tally_group=group, choice=choice
            )
        )
        db.execute(insert(Receipt).values(code=code, vote_id=vote.id, tally_group=group))
    if rows:
        db.execute(
            update(Envelope)
            .where(Envelope.id.in_([envelope_id for envelope_id, _s, _g in rows]))
            .values(sealed=None)
            .execution_options(synchronize_session=False)
        )
    return len(opened)


# -- the committee's list -----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A challenged voter as the committee's page shows them: never the sealed payload."""

    member_number: str
    name: str
    tally_group: str
    challenge_reason: str
    voted: Channel | None  # how they voted, or None
    envelope_id: uuid.UUID | None
    envelope_status: EnvelopeStatus | None
    decision_reason: str
    decided_at: datetime | None


def challenges(db: Session, vote: Vote) -> list[Challenge]:
    """Every challenged voter of the vote (and any voter with an envelope), by member
    number, with their envelope's state. Reads no sealed payload."""
    rows = db.execute(
        select(
            Voter.member_number,
            Member.first_name,
            Member.last_name,
            Voter.tally_group,
            Voter.reason,
            Voter.has_voted,
            Voter.channel,
            Envelope.id,
            Envelope.status,
            Envelope.reason,
            Envelope.decided_at,
        )
        .join(Member, Member.id == Voter.member_id)
        .outerjoin(Envelope, Envelope.voter_id == Voter.id)
        .where(
            Voter.vote_id == vote.id,
            or_(Voter.status == VoterStatus.CHALLENGED, Envelope.id.is_not(None)),
        )
        .order_by(Voter.member_number)
    ).all()
    return [
        Challenge(
            member_number=number,
            name=f"{last}, {first}".strip(", "),
            tally_group=group,
            challenge_reason=why,
            voted=channel if has_voted else None,
            envelope_id=envelope_id,
            envelope_status=status,
            decision_reason=decision or "",
            decided_at=decided_at,
        )
        for (
            number, first, last, group, why, has_voted, channel,
            envelope_id, status, decision, decided_at,
        ) in rows
    ]  # fmt: skip
