"""Hash version 2: each event's hash covers keyed commitments of its personal values, so an
export that shows only those can be checked; events from before migration 0015 keep their
version-1 hashes and still verify in the app."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import Engine, Uuid, column, select, table, text, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.audit import services as audit
from ratify.audit.models import AuditEvent, AuditHead
from ratify.db import UTCDateTime, utcnow
from ratify.migrations import downgrade, upgrade
from tests.factories import make_org, make_user


def test_an_exported_event_shows_no_personal_value_and_its_hash_recomputes(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    admin = make_user(db, org, email="boss@example.org")
    member = uuid.uuid4()
    audit.record(
        db, organization=org, actor=admin, action="member.updated", member_id=member,
        data={"member_number": "1001", "email": "pat@example.org", "field": "phone"},
    )  # fmt: skip
    audit.record(db, organization=org, actor=None, action="vote.closed", actor_label="system")
    events = list(audit.exported_events(db, org, secret_key=settings.secret_key))
    text_ = repr(events)
    for personal in ("boss@example.org", "pat@example.org", "'1001'", str(member)):
        assert personal not in text_
    for event in events:
        assert event["hash_version"] == 2 and audit.digest_fields(event) == event["hash"]
    updated = next(e for e in events if e["action"] == "member.updated")
    key = db.get_one(AuditHead, audit.chain_for(org.id)).pseudonym_key
    assert updated["data"]["field"] == "phone"
    assert updated["data"]["member_number"] == audit.commitment(key, "1001")
    assert updated["member"] == audit.commitment(key, str(member))
    assert updated["actor_label"] == audit.commitment(key, "boss@example.org")
    assert events[-1]["actor_label"] == "system"  # nobody's: shown as it is
    # Another chain's key gives other pseudonyms: they cannot be matched across organizations.
    other = make_org(db)
    other_key = db.get_one(AuditHead, audit.chain_for(other.id)).pseudonym_key
    assert audit.commitment(other_key, "1001") != audit.commitment(key, "1001")


def test_a_version_two_event_passed_off_as_version_one_is_altered(db: Session) -> None:
    org = make_org(db)
    audit.record(db, organization=org, actor=None, action="test.event", data={"i": 1})
    db.execute(
        update(AuditEvent)
        .where(AuditEvent.chain == audit.chain_for(org.id), AuditEvent.seq == 2)
        .values(hash_version=1)
    )
    db.expire_all()
    check = audit.verify_chain(db, org.id)
    assert not check.ok and check.first_bad_seq == 2


def _v1_event(conn, chain: str, org_id: uuid.UUID, seq: int, prev: str, **fields) -> str:  # type: ignore[no-untyped-def]
    """An event as the app wrote it before 0015 (no hash_version column yet)."""
    event = AuditEvent(
        id=uuid.uuid4(), chain=chain, seq=seq, organization_id=org_id, actor_id=None,
        actor_label=fields.get("actor_label", "system"), action=fields.get("action", "old.event"),
        object_type=None, object_id=None, member_id=fields.get("member_id"),
        data=fields.get("data", {}), created_at=utcnow().replace(microsecond=0), prev_hash=prev,
    )  # fmt: skip
    digest = audit._digest_v1(event)
    names = ("id", "chain", "seq", "organization_id", "actor_label", "action", "member_id",
             "data", "created_at", "prev_hash", "hash")  # fmt: skip
    columns = AuditEvent.__table__.c  # type: ignore[attr-defined]
    old_events = table("audit_events", *(column(n, columns[n].type) for n in names))
    conn.execute(
        old_events.insert().values(
            id=event.id,
            chain=chain,
            seq=seq,
            organization_id=org_id,
            actor_label=event.actor_label,
            action=event.action,
            member_id=event.member_id,
            data=event.data,
            created_at=event.created_at,
            prev_hash=prev,
            hash=digest,
        )
    )
    return digest


def test_events_from_before_the_migration_keep_verifying_and_new_ones_are_version_two(
    database_urls: dict[str, str],
    live_engine: Engine,
    live_sessions: sessionmaker[Session],
    base_settings,
) -> None:  # type: ignore[no-untyped-def]
    url = database_urls["live"]
    downgrade(url, "0014tally")
    try:
        org_id = uuid.uuid4()
        chain = audit.chain_for(org_id)
        member = uuid.uuid4()
        with live_engine.begin() as conn:
            conn.execute(
                table(
                    "organizations", column("id", Uuid()), column("slug"), column("name"),
                    column("kind"), column("default_language"), column("timezone"),
                    column("created_at", UTCDateTime()),
                ).insert(),
                {"id": org_id, "slug": f"old-{org_id.hex[:6]}", "name": "Old Local",
                 "kind": "union", "default_language": "en", "timezone": "UTC",
                 "created_at": utcnow()},
            )  # fmt: skip
            first = _v1_event(conn, chain, org_id, 1, audit.GENESIS, action="org.created")
            second = _v1_event(
                conn, chain, org_id, 2, first, actor_label="boss@example.org",
                member_id=member, data={"member_number": "1001"},
            )  # fmt: skip
            conn.execute(
                text("INSERT INTO audit_heads (chain, seq, hash) VALUES (:c, 2, :h)"),
                {"c": chain, "h": second},
            )
    finally:
        upgrade(url)
    with live_sessions.begin() as db:
        head = db.get_one(AuditHead, chain)
        assert head.v1_until == 2 and len(head.pseudonym_key) == 64
        assert audit.verify_chain(db, org_id).ok
        from ratify.orgs.models import Organization

        org = db.get_one(Organization, org_id)
        audit.record(db, organization=org, actor=None, action="new.event", member_id=member)
    with live_sessions.begin() as db:
        assert audit.verify_chain(db, org_id).ok
        versions = db.execute(
            select(AuditEvent.seq, AuditEvent.hash_version)
            .where(AuditEvent.chain == chain)
            .order_by(AuditEvent.seq)
        ).all()
        assert [tuple(v) for v in versions] == [(1, 1), (2, 1), (3, 2)]
        exported = list(audit.exported_events(db, org, secret_key=base_settings.secret_key))
        assert [e["hash_version"] for e in exported] == [1, 1, 2]
        newest = exported[2]
        assert newest["v1_until"] == 2 and audit.digest_fields(newest) == newest["hash"]
        assert not re.search(r"\b1001\b", repr(exported)) and str(member) not in repr(exported)
        # Observers see an old event's pseudonyms as before the migration.
        shown = audit.list_events(db, org, pseudonymize=True, secret_key=base_settings.secret_key)
        old = next(e for e in shown if e.seq == 2)
        assert old.member == audit.pseudonym(base_settings.secret_key, org_id, str(member))
        # An old event changed in the database is still caught.
        db.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.seq == 2)
            .values(data={"member_number": "1002"})
        )
        db.expire_all()
        assert audit.verify_chain(db, org_id).first_bad_seq == 2
