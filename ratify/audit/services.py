"""Writing and checking the hash-chained audit log.

Events never hold a ballot choice or a credential (DESIGN.md §4 rule 5); they are written in
the same transaction as the action they record, so a rolled-back action leaves no event.

Each event's hash covers the previous one's. Since migration 0015 (``hash_version`` 2) it
covers the event's *hashed fields* (``hashed_fields``): the event with every personal value
(a staff actor's label, which is their email; the member; data under ``PERSONAL_KEYS``)
replaced by a keyed commitment, HMAC-SHA256 under the chain's own random key. Those fields
are what observers and the election record see, so anyone holding an export can recompute
every hash without seeing a personal value, and nobody without the key can test a guess (a
member number, an email) against a pseudonym. Events written before that (version 1) were
hashed over the raw values: the app still checks them; an export can check only their links.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit.models import AuditEvent, AuditHead
from ratify.db import insert_ignoring_conflicts, utcnow
from ratify.orgs.models import Organization
from ratify.security import keyed_digest

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"
# Keys of event data that identify a person: observers see a pseudonym instead.
PERSONAL_KEYS = frozenset({"email", "name", "phone", "member_number", "address"})
# Members named in an event's data by id (the community's attendance and merges): committed
# as the event's member column is, each id of a list on its own, so one member has one
# pseudonym throughout the chain.
MEMBER_ID_KEYS = frozenset({"member_id", "member_ids", "merged_into"})
_FORBIDDEN_KEYS = frozenset({"choice", "credential", "password", "token", "ballot"})


def chain_for(organization_id: uuid.UUID | None) -> str:
    return f"org:{organization_id}" if organization_id else SYSTEM_CHAIN


HASH_VERSION = 2
# What a version-2 hash covers (``hashed_fields``), as the election record publishes it.
HASHED_FIELDS = (
    "hash_version", "v1_until", "chain", "seq", "prev", "at", "org", "actor", "actor_label",
    "action", "object_type", "object_id", "member", "data",
)  # fmt: skip


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest_v1(event: AuditEvent) -> str:
    """Version 1, kept for the events written before 0015: over the raw values."""
    body = {
        "chain": event.chain,
        "seq": event.seq,
        "prev": event.prev_hash,
        "at": event.created_at.isoformat(),
        "org": str(event.organization_id) if event.organization_id else None,
        "actor": str(event.actor_id) if event.actor_id else None,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "member": str(event.member_id) if event.member_id else None,
        "data": event.data,
    }
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def commitment(key: str, value: object) -> str:
    """A keyed commitment of one personal value: HMAC-SHA256 under the chain's key (64 hex
    digits). One value gives one commitment throughout a chain, so a reader can tell that two
    events concern the same member without learning who."""
    text = value if isinstance(value, str) else _canonical(value)
    return hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256).hexdigest()


def hashed_fields(event: AuditEvent, key: str, v1_until: int) -> dict[str, Any]:
    """What a version-2 hash covers, and what an export shows of the event: its fields with
    each personal value committed. A staff user's label is their email; "system", "cli" and
    an API token's name are nobody's, and stay as they are."""
    actor = str(event.actor_id) if event.actor_id else None
    return {
        "hash_version": HASH_VERSION,
        "v1_until": v1_until,
        "chain": event.chain,
        "seq": event.seq,
        "prev": event.prev_hash,
        "at": event.created_at.isoformat(),
        "org": str(event.organization_id) if event.organization_id else None,
        "actor": actor,
        "actor_label": commitment(key, event.actor_label) if actor else event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "member": commitment(key, str(event.member_id)) if event.member_id else None,
        "data": {k: _committed(key, k, v) for k, v in event.data.items()},
    }


def _committed(key: str, name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in PERSONAL_KEYS:
        return commitment(key, value)
    if name in MEMBER_ID_KEYS:
        if isinstance(value, list):
            return [commitment(key, str(v)) for v in value]
        return commitment(key, str(value))
    return value


def digest_fields(fields: Mapping[str, Any]) -> str:
    """The version-2 hash of an event's hashed fields (SHA-256 of their canonical JSON: keys
    sorted, no spaces, UTF-8). ``ratify verify`` recomputes it from an election record."""
    body = {name: fields[name] for name in HASHED_FIELDS}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def _digest(event: AuditEvent, head: AuditHead) -> str:
    if event.hash_version == 1:
        return _digest_v1(event)
    return digest_fields(hashed_fields(event, head.pseudonym_key, head.v1_until))


def record(
    db: Session,
    *,
    organization: Organization | None,
    actor: StaffUser | None,
    action: str,
    object_type: str | None = None,
    object_id: object | None = None,
    member_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Append one event to the organization's chain (or the system chain)."""
    data = dict(data or {})
    leaked = _FORBIDDEN_KEYS & set(data)
    if leaked:
        raise ValueError(f"audit events may not hold {sorted(leaked)}")
    chain = chain_for(organization.id if organization else None)
    insert_ignoring_conflicts(
        db, AuditHead, chain=chain, seq=0, hash=GENESIS, pseudonym_key=secrets.token_hex(32)
    )
    # Updating the head first takes its row lock: concurrent appends to a chain queue here.
    seq, prev, key, v1_until = db.execute(
        update(AuditHead)
        .where(AuditHead.chain == chain)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash, AuditHead.pseudonym_key, AuditHead.v1_until)
        .execution_options(synchronize_session=False)
    ).one()
    event = AuditEvent(
        id=uuid.uuid4(),
        chain=chain,
        seq=seq,
        organization_id=organization.id if organization else None,
        actor_id=actor.id if actor else None,
        actor_label=actor_label or (actor.email if actor else "system"),
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        member_id=member_id,
        data=data,
        created_at=utcnow().replace(microsecond=0),
        prev_hash=prev,
        hash_version=HASH_VERSION,
    )
    event.hash = digest_fields(hashed_fields(event, key, v1_until))
    db.add(event)
    db.execute(
        update(AuditHead)
        .where(AuditHead.chain == chain)
        .values(hash=event.hash)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(db: Session, organization_id: uuid.UUID | None) -> ChainCheck:
    """Recompute every link of one chain; report the first event that does not fit."""
    chain = chain_for(organization_id)
    head = db.get(AuditHead, chain)
    prev = GENESIS
    count = 0
    stmt = select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    for event in db.scalars(stmt).yield_per(500):
        count += 1
        if event.seq != count:
            return ChainCheck(False, count, prev, event.seq, "an event is missing before this one")
        if event.prev_hash != prev:
            return ChainCheck(False, count, prev, event.seq, "the link to the previous event broke")
        # Events up to the head's v1_until are version 1, every later one version 2.
        expected = 1 if head is not None and event.seq <= head.v1_until else HASH_VERSION
        if head is None or event.hash_version != expected or _digest(event, head) != event.hash:
            return ChainCheck(False, count, prev, event.seq, "this event was altered")
        prev = event.hash
    if head is not None and (head.seq != count or head.hash != prev):
        return ChainCheck(False, count, prev, count + 1, "events were removed from the end")
    return ChainCheck(True, count, prev)


@dataclass(frozen=True)
class EventView:
    """An event as one reader may see it."""

    seq: int
    created_at: Any
    actor_label: str
    action: str
    object_type: str | None
    object_id: str | None
    member: str | None
    data: dict[str, Any]
    hash: str


def pseudonym(secret_key: str, organization_id: uuid.UUID, value: str) -> str:
    """A version-1 event's pseudonym, as observers see it ("P-" and 10 hex digits)."""
    return "P-" + v1_pseudonym(secret_key, organization_id, value)[:10]


def v1_pseudonym(secret_key: str, organization_id: uuid.UUID, value: str) -> str:
    """In full (64 hex digits), as an export shows a version-1 event's personal values."""
    return keyed_digest(secret_key, f"audit-pseudonym:{organization_id}", value)


def shown(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An exported event as the audit page shows it to observers: each commitment (or full
    version-1 pseudonym) cut to "P-" and its first 10 hex digits."""

    def cut(value: object) -> object:
        return "P-" + value[:10] if isinstance(value, str) else value

    def cut_all(name: str, value: object) -> object:
        if name in MEMBER_ID_KEYS and isinstance(value, list):
            return [cut(v) for v in value]
        return cut(value) if name in PERSONAL_KEYS | MEMBER_ID_KEYS else value

    data = {k: cut_all(k, v) for k, v in fields["data"].items()}
    return {**fields, "member": cut(fields["member"]) if fields["member"] else None, "data": data}


def exported_events(
    db: Session, organization: Organization, *, secret_key: str
) -> Iterator[dict[str, Any]]:
    """The organization's whole chain, oldest first, as an election record holds it: each
    version-2 event as its hashed fields (so its hash can be recomputed) with its hash;
    each version-1 event with the same fields, its personal values pseudonymized (its hash,
    over the raw values, can then be checked only by its links)."""
    chain = chain_for(organization.id)
    head = db.get(AuditHead, chain)
    stmt = select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    for event in db.scalars(stmt).yield_per(1000):
        yield {**_public_fields(event, head, secret_key), "hash": event.hash}


def _public_fields(event: AuditEvent, head: AuditHead | None, secret_key: str) -> dict[str, Any]:
    if event.hash_version == 1 or head is None:
        return _v1_fields(event, secret_key)
    return hashed_fields(event, head.pseudonym_key, head.v1_until)


def _v1_fields(event: AuditEvent, secret_key: str) -> dict[str, Any]:
    def hide(value: object) -> str:
        assert event.organization_id is not None
        return v1_pseudonym(secret_key, event.organization_id, str(value))

    actor = str(event.actor_id) if event.actor_id else None
    return {
        "hash_version": 1,
        "v1_until": None,
        "chain": event.chain,
        "seq": event.seq,
        "prev": event.prev_hash,
        "at": event.created_at.isoformat(),
        "org": str(event.organization_id) if event.organization_id else None,
        "actor": actor,
        "actor_label": hide(event.actor_label) if actor else event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "member": hide(event.member_id) if event.member_id else None,
        "data": {
            k: hide(v) if k in PERSONAL_KEYS and v is not None else v for k, v in event.data.items()
        },
    }


def list_events(
    db: Session,
    organization: Organization,
    *,
    pseudonymize: bool,
    secret_key: str,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[EventView]:
    """Newest first; members and contact data pseudonymized for readers who must not see them
    (as in an election record: "P-" and the first 10 hex digits of what the record holds)."""
    chain = chain_for(organization.id)
    stmt = select(AuditEvent).where(AuditEvent.chain == chain)
    if before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < before_seq)
    stmt = stmt.order_by(AuditEvent.seq.desc()).limit(limit)
    head = db.get(AuditHead, chain) if pseudonymize else None

    views = []
    for event in db.scalars(stmt):
        data = dict(event.data)
        member = str(event.member_id) if event.member_id else None
        if pseudonymize:
            hidden = shown(_public_fields(event, head, secret_key))
            data, member = hidden["data"], hidden["member"]
        views.append(
            EventView(
                seq=event.seq,
                created_at=event.created_at,
                actor_label=event.actor_label,
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                member=member,
                data=data,
                hash=event.hash,
            )
        )
    return views


def count_events(db: Session, organization: Organization) -> int:
    stmt = select(func.count()).where(AuditEvent.chain == chain_for(organization.id))
    return db.execute(stmt).scalar_one()
