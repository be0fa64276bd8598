"""Writing and checking the hash-chained audit log.

Events never hold a ballot choice or a credential (DESIGN.md §4 rule 5); they are written in
the same transaction as the action they record, so a rolled-back action leaves no event.
"""

from __future__ import annotations

import hashlib
import json
import uuid
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
_FORBIDDEN_KEYS = frozenset({"choice", "credential", "password", "token", "ballot"})


def chain_for(organization_id: uuid.UUID | None) -> str:
    return f"org:{organization_id}" if organization_id else SYSTEM_CHAIN


def _digest(event: AuditEvent) -> str:
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
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    insert_ignoring_conflicts(db, AuditHead, chain=chain, seq=0, hash=GENESIS)
    # Updating the head first takes its row lock: concurrent appends to a chain queue here.
    seq, prev = db.execute(
        update(AuditHead)
        .where(AuditHead.chain == chain)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
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
    )
    event.hash = _digest(event)
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
    prev = GENESIS
    count = 0
    stmt = select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    for event in db.scalars(stmt).yield_per(500):
        count += 1
        if event.seq != count:
            return ChainCheck(False, count, prev, event.seq, "an event is missing before this one")
        if event.prev_hash != prev:
            return ChainCheck(False, count, prev, event.seq, "the link to the previous event broke")
        if _digest(event) != event.hash:
            return ChainCheck(False, count, prev, event.seq, "this event was altered")
        prev = event.hash
    head = db.get(AuditHead, chain)
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
    return "P-" + keyed_digest(secret_key, f"audit-pseudonym:{organization_id}", value)[:10]


def list_events(
    db: Session,
    organization: Organization,
    *,
    pseudonymize: bool,
    secret_key: str,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[EventView]:
    """Newest first; members and contact data pseudonymized for readers who must not see them."""
    stmt = select(AuditEvent).where(AuditEvent.chain == chain_for(organization.id))
    if before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < before_seq)
    stmt = stmt.order_by(AuditEvent.seq.desc()).limit(limit)

    def hide(value: object) -> str:
        return pseudonym(secret_key, organization.id, str(value))

    views = []
    for event in db.scalars(stmt):
        data = dict(event.data)
        member = str(event.member_id) if event.member_id else None
        if pseudonymize:
            data = {k: (hide(v) if k in PERSONAL_KEYS else v) for k, v in data.items()}
            member = hide(member) if member else None
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
