"""The election record: what it holds (and never holds), who may download it and when, the
download in the audit log, and the CLI's export (both databases)."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.cli import main
from ratify.errors import Conflict
from ratify.security import password_hasher
from ratify.votes import certify, record, results, verify
from ratify.votes import services as votes
from ratify.votes.models import Ballot, Receipt, Vote, VoteStatus
from tests.factories import PASSWORD, make_user
from tests.helpers import login
from tests.votes.support import Union, make_union
from tests.votes.test_results import _voted_and_closed


def counted_vote(db: Session, u: Union, settings) -> Vote:  # type: ignore[no-untyped-def]
    """``_voted_and_closed`` (RN: 3 yes and 1 no online, 1 no on paper; TECH: 2 yes), counted."""
    vote = _voted_and_closed(db, u, settings)
    results.count(db, u.org, vote, actor=u.committee[0], secret_key=settings.secret_key)
    db.flush()
    return votes.get_vote(db, u.org, vote.id)


def certified_vote(db: Session, u: Union, settings) -> Vote:  # type: ignore[no-untyped-def]
    vote = counted_vote(db, u, settings)
    for member in u.committee:
        certify.sign(
            db, settings, password_hasher(settings), u.org, vote, user=member,
            password=PASSWORD, client_address="10.0.0.1",
        )  # fmt: skip
    db.flush()
    vote = votes.get_vote(db, u.org, vote.id)
    assert vote.status == VoteStatus.CERTIFIED
    return vote


def test_a_certified_votes_record_holds_the_box_the_result_and_the_chain_and_no_person(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = certified_vote(db, u, settings)
    exported = record.export(db, u.org, vote, settings.secret_key)
    parsed = record.ElectionRecord.model_validate(json.loads(record.dumps(exported)))
    assert parsed.format == "ratify-election-record" and parsed.version == 1
    assert parsed.vote.status == "certified" and parsed.vote.kind == "ratification"
    assert parsed.vote.eligibility is not None
    assert parsed.vote.eligibility.unit_codes == ["RN", "TECH"]
    assert [o.key for o in parsed.vote.options] == ["yes", "no"]
    # The box: every ballot, by id; receipts apart, by code.
    ballots = db.execute(select(Ballot.id, Ballot.tally_group, Ballot.choice)).all()
    assert parsed.ballots == sorted((str(i), g, c) for i, g, c in ballots)
    assert [b[0] for b in parsed.ballots] == sorted(b[0] for b in parsed.ballots)
    codes = db.execute(select(Receipt.code, Receipt.tally_group)).all()
    assert parsed.receipts == sorted((c, g) for c, g in codes)
    assert [(b.group, b.label, b.counts) for b in parsed.paper_batches] == [
        ("RN", "Box 1", {"yes": 0, "no": 1})
    ]
    assert [(g.group, g.eligible, g.voted) for g in parsed.voter_list.groups] == [
        ("RN", 6, 5),
        ("TECH", 3, 2),
    ]
    assert parsed.voter_list.fingerprint == vote.voter_fingerprint
    assert parsed.result == vote.result
    assert parsed.reconciliation.matches
    assert parsed.certificate.box_digest == vote.box_digest
    assert sorted(s.name for s in parsed.certificate.signers) == sorted(c.name for c in u.committee)
    certified = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.certified")).one()
    assert parsed.certificate.certified_event is not None
    assert parsed.certificate.certified_event.seq == certified.seq
    assert parsed.certificate.certified_event.hash == certified.hash
    assert parsed.audit.head.seq == len(parsed.audit.events)
    # No member number, name or contact detail, nor any staff email (rule 5).
    text = record.dumps(exported)
    for member in u.members:
        assert f'"{member.member_number}"' not in text
        assert member.last_name not in text
    for staff in [u.staff, u.admin, *u.committee]:
        assert staff.email not in text
    report = verify.verify(text)
    assert report.ok, report.text()


def test_there_is_no_record_before_the_count(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _voted_and_closed(db, u, settings)
    with pytest.raises(Conflict, match="not been counted yet"):
        record.export(db, u.org, vote, settings.secret_key)


def test_who_downloads_the_record_and_when(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _voted_and_closed(db, u, settings)
    url = f"/o/{u.org.slug}/votes/{vote.id}/record.json"
    observer = make_user(db, u.org, Role.OBSERVER)
    login(client, u.committee[0].email)
    assert client.get(url).status_code == 409  # closed, not counted
    results.count(db, u.org, vote, actor=u.committee[0], secret_key=settings.secret_key)
    db.flush()
    page = client.get(f"/o/{u.org.slug}/votes/{vote.id}/result").text
    assert url in page
    downloaded = client.get(url)
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "application/json"
    assert "attachment" in downloaded.headers["content-disposition"]
    report = verify.verify(downloaded.content)
    assert report.ok and report.check("certificate").ok is None  # counted, not certified
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.record_downloaded"))
    (event,) = events.all()
    assert event.actor_id == u.committee[0].id and event.data == {"via": "page"}
    # The record holds its own download.
    assert json.loads(downloaded.content)["audit"]["events"][-1]["seq"] == event.seq
    client.cookies.clear()
    login(client, observer.email)
    assert client.get(url).status_code == 403  # observers: once certified
    for member in u.committee:
        certify.sign(
            db, settings, password_hasher(settings), u.org, votes.get_vote(db, u.org, vote.id),
            user=member, password=PASSWORD, client_address="10.0.0.1",
        )  # fmt: skip
    db.flush()
    assert client.get(url).status_code == 200
    other = make_union(db)
    client.cookies.clear()
    login(client, other.committee[0].email)
    assert client.get(url).status_code == 404  # another organization's vote
    assert client.get(f"/o/{u.org.slug}/votes/{uuid.uuid4()}/record.json").status_code == 404


def test_the_cli_exports_a_record_that_verifies(
    live_sessions, database_urls, tmp_path, base_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = base_settings
    with live_sessions.begin() as db:
        u = make_union(db)
        vote = certified_vote(db, u, settings)
        slug, vote_id = u.org.slug, str(vote.id)
    env = {
        "RATIFY_DATABASE_URL": database_urls["live"],
        "RATIFY_VAR_DIR": str(tmp_path),
        "RATIFY_SECRET_KEY": settings.secret_key,
    }
    runner = CliRunner()
    exported = runner.invoke(main, ["export-record", "--org", slug, vote_id], env=env)
    assert exported.exit_code == 0, exported.output
    path = tmp_path / "record.json"
    path.write_text(exported.stdout, encoding="utf-8")
    checked = runner.invoke(main, ["verify", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "Everything matches." in checked.stdout
    with live_sessions() as db:
        event = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "vote.record_downloaded")
        ).one()
        assert event.actor_label == "cli" and event.data == {"via": "cli"}
    missing = runner.invoke(main, ["export-record", "--org", slug, str(uuid.uuid4())], env=env)
    assert missing.exit_code == 1 and "no vote" in missing.output
    assert "Traceback" not in missing.output


def test_every_field_of_the_format_is_documented() -> None:
    """docs/record.md names every key of every object of the format (datasette's way)."""
    from typing import get_args

    from pydantic import BaseModel

    from ratify.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "docs" / "record.md").read_text(encoding="utf-8")

    def models(annotation: object) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in get_args(annotation) for m in models(arg)]

    seen: set[type[BaseModel]] = set()
    queue = [record.ElectionRecord]
    missing = []
    while queue:
        model = queue.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            if f"`{name}`" not in text:
                missing.append(f"{model.__name__}.{name}")
            queue += models(info.annotation)
    assert len(seen) > 10 and not missing, missing
