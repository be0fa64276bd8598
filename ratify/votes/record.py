"""The election record: one JSON document with everything needed to check a counted vote
without trusting whoever runs Ratify (its format is in docs/record.md; ``ratify verify``,
``votes.verify``, checks it). It holds the vote's definition, the voter list in counts, the
ballot box, the receipts, the confirmed paper batches, the stored result, the reconciliation,
the certificate's facts and the organization's audit chain as observers see it.

Nothing here is read before the vote is counted (DESIGN.md §4 rule 3). Ballots are listed by
their random ids, never as stored (rule 1); receipts apart, by code, with nothing linking
either to the other or to a voter (rules 1 and 7). No name, member number or contact detail
of a member, no credential and no second factor (rules 4 and 5): the audit events carry keyed
commitments of personal values (``audit.hashed_fields``), so their hashes still recompute.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr
from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.audit.models import AuditEvent
from ratify.db import utcnow
from ratify.errors import N_, Conflict, Forbidden
from ratify.orgs.models import Organization
from ratify.votes import certify, reconcile, tally, voters
from ratify.votes import services as votes
from ratify.votes.models import (
    Ballot,
    BatchStatus,
    PaperBatch,
    Receipt,
    Vote,
    VoteStatus,
)

FORMAT = "ratify-election-record"
VERSION = 1
COUNTED = (VoteStatus.TALLIED, VoteStatus.CERTIFIED)

NOT_COUNTED = N_("This vote has not been counted yet.")
CERTIFIED_ONLY = N_("The result is shown here once it is certified.")


def require_readable(vote: Vote, *, results_after_close: bool) -> None:
    """Who may read a vote's result, certificate or record, and when: nobody before the
    close (409, rule 3); before certification only those who may read results after the
    close (403), as on the result page."""
    tally.require_closed(vote)
    if vote.status != VoteStatus.CERTIFIED and not results_after_close:
        raise Forbidden(CERTIFIED_ONLY)


def require_counted(vote: Vote) -> None:
    tally.require_closed(vote)
    if vote.status not in COUNTED:
        raise Conflict(NOT_COUNTED)


def record_download(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser | None,
    via: str,
    actor_label: str | None = None,
) -> None:
    """Who took the record, and how (page, api, cli): in the audit log, before the export,
    so the record holds its own download."""
    require_counted(vote)
    audit.record(
        db,
        organization=org,
        actor=actor,
        actor_label=actor_label,
        action="vote.record_downloaded",
        object_type="vote",
        object_id=vote.id,
        data={"via": via},
    )


def export(db: Session, org: Organization, vote: Vote, secret_key: str) -> dict[str, Any]:
    """The election record of a tallied or certified vote (409 before), as docs/record.md
    describes it. ``secret_key`` pseudonymizes events from before hash version 2."""
    require_counted(vote)
    assert vote.result is not None and vote.box_digest is not None
    box = tally.count_box(db, vote)
    reconciliation = reconcile.reconcile(db, vote)
    voted = {g.group: g.online_voters + g.paper_voters for g in reconciliation.groups}
    summary = voters.summarize(db, vote)
    groups = sorted({g.group for g in box.groups} | set(voted))
    eligible = {g.group: g.eligible for g in box.groups}
    rule = vote.eligibility
    events = list(audit.exported_events(db, org, secret_key=secret_key))
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "organization": {
            "id": str(org.id),
            "slug": org.slug,
            "name": org.name,
            "timezone": org.timezone,
        },
        "vote": {
            "id": str(vote.id),
            "title": vote.title,
            "kind": vote.kind.value,
            "status": vote.status.value,
            "languages": list(vote.languages),
            "question": dict(vote.question),
            "options": [{"key": o.key, "labels": dict(o.labels)} for o in vote.options],
            "allow_blank": vote.allow_blank,
            "opens_at": vote.opens_at.isoformat() if vote.opens_at else None,
            "closes_at": vote.closes_at.isoformat() if vote.closes_at else None,
            "eligibility": {
                "cutoff": vote.cutoff.isoformat() if vote.cutoff else None,
                "unit_codes": votes.unit_codes(db, org, rule.get("units", [])),
                **rule,
            }
            if rule
            else None,
            "tally_grouping": vote.tally_grouping.value,
            "threshold": dict(vote.threshold),
            "signatures_required": vote.signatures_required,
            "second_factor": vote.second_factor.value,
        },
        "voter_list": {
            "fingerprint": vote.voter_fingerprint,
            "eligible": summary.eligible,
            "excluded": summary.excluded,
            "challenged": summary.challenged,
            "groups": [
                {"group": g, "eligible": eligible.get(g, 0), "voted": voted.get(g, 0)}
                for g in groups
            ],
        },
        "ballots": _ballots(db, vote),
        "receipts": _receipts(db, vote),
        "paper_batches": _batches(db, vote),
        "result": vote.result,
        "reconciliation": {**reconciliation.as_dict(), "note": vote.reconciliation_note},
        "certificate": {
            "tallied_at": vote.tallied_at.isoformat() if vote.tallied_at else None,
            "certified_at": vote.certified_at.isoformat() if vote.certified_at else None,
            "box_digest": vote.box_digest,
            "signatures_required": vote.signatures_required,
            "signers": [
                {"name": user.name, "signed_at": signature.signed_at.isoformat()}
                for user, signature in certify.signers(db, vote)
            ],
            "tallied_event": quoted_event(db, vote, "vote.tallied"),
            "certified_event": quoted_event(db, vote, "vote.certified"),
        },
        "audit": {
            "chain": audit.chain_for(org.id),
            "head": {"seq": events[-1]["seq"], "hash": events[-1]["hash"]}
            if events
            else {"seq": 0, "hash": audit.GENESIS},
            "events": events,
        },
    }


def _ballots(db: Session, vote: Vote) -> list[list[str]]:
    """[id, group, choice] by id (a UUID's order is its hex digits' on both engines), the ids
    read as text and written as ``str(uuid.UUID)`` writes them (as ``tally.box_digest``
    reads them: several times faster than making a UUID of each)."""
    stmt = (
        select(cast(Ballot.id, String), Ballot.tally_group, Ballot.choice)
        .where(Ballot.vote_id == vote.id)
        .order_by(Ballot.id)
        .execution_options(yield_per=20_000)
    )
    db.flush()  # a Core read on the connection does not autoflush
    return [[_uuid_text(i), g, c] for i, g, c in db.connection().execute(stmt)]


def _uuid_text(value: str) -> str:
    """PostgreSQL's text of a UUID, or SQLite's 32 hex digits, as ``str(uuid.UUID)``."""
    if len(value) == 32:
        h = value.lower()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return value.lower()


def _receipts(db: Session, vote: Vote) -> list[list[str]]:
    """[code, group] by code, sorted here: a text column's order follows the collation."""
    rows = db.execute(
        select(Receipt.code, Receipt.tally_group)
        .where(Receipt.vote_id == vote.id)
        .execution_options(yield_per=10_000)
    )
    return sorted([code, group] for code, group in rows)


def _batches(db: Session, vote: Vote) -> list[dict[str, Any]]:
    rows = db.execute(
        select(PaperBatch.tally_group, PaperBatch.label, PaperBatch.counts).where(
            PaperBatch.vote_id == vote.id, PaperBatch.status == BatchStatus.CONFIRMED
        )
    )
    batches = [{"group": g, "label": label, "counts": dict(counts)} for g, label, counts in rows]
    return sorted(batches, key=lambda b: (b["group"], b["label"], json.dumps(b["counts"])))


def quoted_event(db: Session, vote: Vote, action: str) -> dict[str, Any] | None:
    """The seq and hash of the vote's latest event with this action (as certificates quote
    the audit log at certification)."""
    found = db.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(
            AuditEvent.chain == audit.chain_for(vote.organization_id),
            AuditEvent.object_type == "vote",
            AuditEvent.object_id == str(vote.id),
            AuditEvent.action == action,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    return {"seq": found.seq, "hash": found.hash} if found else None


def dumps(record: dict[str, Any]) -> str:
    """The record as a file: readable, with one ballot, receipt or audit event a line (so a
    member can find their receipt, and two records compare line by line)."""

    compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    quoted = json.encoder.encode_basestring  # one JSON string, as the encoder writes it

    def line(item: Any) -> str:
        # A ballot or receipt (a million of them): its strings quoted one by one, which is
        # several times faster than encoding each list.
        if isinstance(item, list) and all(isinstance(v, str) for v in item):
            return "[" + ",".join(map(quoted, item)) + "]"
        return compact(item)

    def listed(items: list[Any], indent: str) -> str:
        if not items:
            return "[]"
        return "[\n" + ",\n".join(indent + "  " + line(i) for i in items) + "\n" + indent + "]"

    parts = []
    for key, value in record.items():
        if key in ("ballots", "receipts"):
            body = listed(value, "  ")
        elif key == "audit":
            inner = [
                f"    {json.dumps(k)}: " + (listed(v, "    ") if k == "events" else compact(v))
                for k, v in value.items()
            ]
            body = "{\n" + ",\n".join(inner) + "\n  }"
        else:
            body = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# -- the format, as ``ratify verify`` reads it -------------------------------------------------
# Lax containers (a JSON array reads as a tuple) with strict values: a number is never read
# from a string, nor a count from true.


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganizationPart(_Part):
    id: StrictStr
    slug: StrictStr
    name: StrictStr
    timezone: StrictStr


class OptionPart(_Part):
    key: StrictStr
    labels: dict[StrictStr, StrictStr]


class EligibilityPart(_Part):
    """A union's rule (units, statuses, standing), or an offer decision's constituency."""

    cutoff: StrictStr | None
    unit_codes: list[StrictStr]
    units: list[StrictStr] | None = None
    membership: list[StrictStr] | None = None
    good_standing: StrictBool | None = None
    employment: list[StrictStr] | None = None
    joined_days_before: StrictInt | None = None
    constituency: StrictStr | None = None
    constituency_name: StrictStr | None = None
    criteria: dict[StrictStr, Any] | None = None
    approval_required: StrictBool | None = None


class VotePart(_Part):
    id: StrictStr
    title: StrictStr
    kind: Literal["ratification", "question", "offer_decision"]
    status: Literal["tallied", "certified"]
    languages: list[StrictStr]
    question: dict[StrictStr, StrictStr]
    options: list[OptionPart]
    allow_blank: StrictBool
    opens_at: StrictStr | None
    closes_at: StrictStr | None
    eligibility: EligibilityPart | None
    tally_grouping: Literal["aggregate", "per_unit"]
    threshold: dict[StrictStr, Any]
    signatures_required: StrictInt
    second_factor: StrictStr


class GroupVotersPart(_Part):
    group: StrictStr
    eligible: StrictInt
    voted: StrictInt


class VoterListPart(_Part):
    fingerprint: StrictStr | None
    eligible: StrictInt
    excluded: StrictInt
    challenged: StrictInt
    groups: list[GroupVotersPart]


class PaperBatchPart(_Part):
    group: StrictStr
    label: StrictStr
    counts: dict[StrictStr, StrictInt]


class ReconciledGroupPart(_Part):
    group: StrictStr
    online_voters: StrictInt
    online_ballots: StrictInt
    receipts: StrictInt
    paper_voters: StrictInt
    paper_ballots: StrictInt


class ReconciliationPart(_Part):
    groups: list[ReconciledGroupPart]
    reissued: StrictInt
    links_shown: StrictInt
    mail_house_exports: StrictInt
    matches: StrictBool
    note: StrictStr


class EventRef(_Part):
    seq: StrictInt
    hash: StrictStr


class SignerPart(_Part):
    name: StrictStr
    signed_at: StrictStr


class CertificatePart(_Part):
    tallied_at: StrictStr | None
    certified_at: StrictStr | None
    box_digest: StrictStr
    signatures_required: StrictInt
    signers: list[SignerPart]
    tallied_event: EventRef | None
    certified_event: EventRef | None


class AuditEventPart(_Part):
    hash_version: Literal[1, 2]
    v1_until: StrictInt | None
    chain: StrictStr
    seq: StrictInt
    prev: StrictStr
    at: StrictStr
    org: StrictStr | None
    actor: StrictStr | None
    actor_label: StrictStr
    action: StrictStr
    object_type: StrictStr | None
    object_id: StrictStr | None
    member: StrictStr | None
    data: dict[StrictStr, Any]
    hash: StrictStr


class AuditPart(_Part):
    chain: StrictStr
    head: EventRef
    events: list[AuditEventPart]


class ElectionRecord(_Part):
    """Version 1 of the election record (docs/record.md)."""

    format: Literal["ratify-election-record"]
    version: Literal[1]
    exported_at: StrictStr
    organization: OrganizationPart
    vote: VotePart
    voter_list: VoterListPart
    ballots: list[tuple[StrictStr, StrictStr, StrictStr]]
    receipts: list[tuple[StrictStr, StrictStr]]
    paper_batches: list[PaperBatchPart]
    result: dict[StrictStr, Any]
    reconciliation: ReconciliationPart
    certificate: CertificatePart
    audit: AuditPart
