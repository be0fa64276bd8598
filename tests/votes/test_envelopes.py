"""Challenged ballots in sealed envelopes: sealed online by the voter, unreadable by any page
or the API, decided by the committee after the close and before the count; accepted ones
join the box with no link back, rejected ones are destroyed unopened (issue 6)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts.models import StaffUser
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.errors import Conflict
from ratify.orgs.models import Organization
from ratify.votes import casting, credentials, envelopes, results, voters
from ratify.votes import services as votes
from ratify.votes.models import (
    Ballot,
    Channel,
    Envelope,
    EnvelopeStatus,
    Receipt,
    SecondFactor,
    Vote,
    Voter,
    VoterStatus,
    VoteStatus,
)
from tests.api.support import bearer, make_token
from tests.factories import make_user
from tests.helpers import csrf_from, login, run_together
from tests.votes.support import Union, make_union
from tests.votes.test_casting import (
    MARKS,
    counts,
    link_of,
    needs_postgres,
    open_vote,
    sign_in,
    voter,
)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_RECEIPT = re.compile(r"<code>([A-Z0-9-]+)</code>")
LABELS = {"yes": "Yes, I accept the agreement", "no": "No, I reject the agreement"}
WHY = "Says they were moved into the unit in March"


def challenged_vote(db: Session, u: Union, secret_key: str) -> Vote:
    """An open vote (no second factor) where the fee payer 9001 is added as challenged, to
    vote in TECH."""
    vote = open_vote(db, u, secret_key, second_factor=SecondFactor.NONE)
    voters.challenge(
        db,
        u.org,
        vote,
        actor=u.staff,
        member_number="9001",
        reason=WHY,
        group="TECH",
        secret_key=secret_key,
    )
    db.flush()
    return vote


def member_client(client):  # type: ignore[no-untyped-def]
    member = client.__class__(client.app, base_url="http://testserver", follow_redirects=False)
    member.ledger = client.ledger
    return member


def seal_through_pages(client, link: str, choice: str = "no") -> str:  # type: ignore[no-untyped-def]
    """Link → ballot → review → cast, for a challenged voter; the receipt code shown."""
    assert sign_in(client, link, "").status_code == 303
    ballot = client.get("/v/ballot")
    assert ballot.status_code == 200 and "Your vote is challenged" in ballot.text
    token = _CSRF.search(ballot.text).group(1)  # type: ignore[union-attr]
    review = client.post("/v/review", data={"csrf_token": token, "choice": MARKS[choice]})
    assert review.status_code == 200, review.text
    assert "You are voting" in review.text and "sealed in an envelope" in review.text
    sealed = client.post("/v/cast", data={"csrf_token": token, "choice": MARKS[choice]})
    assert sealed.status_code == 200, sealed.text
    assert "Your vote is sealed" in sealed.text
    code = _RECEIPT.search(sealed.text).group(1)  # type: ignore[union-attr]
    client.ledger.add(code)
    return code


def close(db: Session, u: Union, vote: Vote) -> Vote:
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(closes_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    votes.advance(db, u.org, vote)
    assert vote.status == VoteStatus.CLOSED
    db.flush()
    return vote


def envelope_of(db: Session, vote: Vote, member_number: str) -> Envelope:
    db.expire_all()
    return db.execute(
        select(Envelope).where(Envelope.voter_id == voter(db, vote, member_number).id)
    ).scalar_one()


def decide_url(u: Union, vote: Vote, envelope: Envelope) -> str:
    return f"/o/{u.org.slug}/votes/{vote.id}/challenges/{envelope.id}"


def box(db: Session) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    db.expire_all()
    ballots = {(str(b.id), b.tally_group, b.choice, b.mixed) for b in db.scalars(select(Ballot))}
    receipts = {(r.code, r.tally_group, r.mixed) for r in db.scalars(select(Receipt))}
    return ballots, receipts  # type: ignore[return-value]


def events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- sealing -------------------------------------------------------------------------------------


def test_a_challenged_voter_seals_their_vote_online_and_only_once(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    link = link_of(settings.secret_key, voter(db, vote, "9001"))
    before = counts(db)
    code = seal_through_pages(client, link, "no")
    db.expire_all()
    ballots, receipts, voted, audited = counts(db)
    # No ballot and no receipt yet, no audit event (like a cast, rule 2); the voter voted.
    assert (ballots, receipts, voted, audited) == (before[0], before[1], before[2] + 1, before[3])
    v = voter(db, vote, "9001")
    assert (v.has_voted, v.channel, v.status) == (True, Channel.ONLINE, VoterStatus.CHALLENGED)
    assert v.voted_hour is not None and (v.voted_hour.minute, v.voted_hour.second) == (0, 0)
    envelope = envelope_of(db, vote, "9001")
    assert (envelope.channel, envelope.status, envelope.reason) == (
        Channel.ONLINE,
        EnvelopeStatus.SEALED,
        "",
    )
    assert envelope.sealed is not None and len(envelope.sealed) == envelopes.SEALED_BYTES
    # Sealed under the vote's envelope key, with the receipt shown and nowhere else.
    assert envelopes.open_payload(settings.secret_key, vote.id, envelope.id, envelope.sealed) == (
        "no",
        code.replace("-", ""),
    )
    assert envelopes.pending(db, vote) == 1
    # A second attempt is "already voted"; the ballot page now says the vote is sealed.
    token = csrf_from(client, link)
    again = client.post("/v/cast", data={"csrf_token": token, "choice": MARKS["yes"]})
    assert again.status_code == 409 and "already voted" in again.text
    assert "sealed in an envelope" in again.text
    page = client.get("/v/ballot")
    assert page.status_code == 200 and "Your vote is sealed" in page.text
    assert code not in page.text and "<code>" not in page.text  # shown once only
    review = client.post("/v/review", data={"csrf_token": token, "choice": MARKS["yes"]})
    assert review.status_code == 409
    db.expire_all()
    assert counts(db) == (before[0], before[1], before[2] + 1, before[3])
    assert db.scalar(select(func.count()).select_from(Envelope)) == 1


def test_a_challenged_voters_tampered_choice_or_late_cast_seals_nothing(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "9001")), "").status_code
        == 303
    )
    token = csrf_from(client, "/v/ballot")
    before = counts(db)
    unknown = client.post("/v/cast", data={"csrf_token": token, "choice": "yes"})  # not a mark
    assert unknown.status_code == 400 and "Choose one of the options" in unknown.text
    assert client.post("/v/cast", data={"csrf_token": "forged", "choice": "01"}).status_code == 403
    db.execute(
        update(Vote).where(Vote.id == vote.id)
        .values(closes_at=datetime.now(UTC) - timedelta(seconds=1))
    )  # fmt: skip
    late = client.post("/v/cast", data={"csrf_token": token, "choice": "01"})
    assert late.status_code == 409 and "Voting is not open" in late.text
    db.expire_all()
    assert counts(db) == before
    assert db.scalar(select(func.count()).select_from(Envelope)) == 0


def test_the_seal_is_the_votes_own_fixed_in_size_and_bound_to_its_envelope() -> None:
    secret = "s" * 40
    vote_a, vote_b, env_a, env_b = (uuid.uuid4() for _ in range(4))
    key = envelopes.envelope_key(secret, vote_a)
    assert len(key) == 32 and key == envelopes.envelope_key(secret, vote_a)
    assert key != envelopes.envelope_key(secret, vote_b)
    assert key != envelopes.envelope_key("t" * 40, vote_a)
    # Not the credential key, nor its lookup key: deriving links opens no envelope.
    minter = credentials.Minter(secret, vote_a)
    assert key not in (minter._vote_key, minter._lookup_key)
    receipt = casting.new_receipt_code()
    sealed = {
        choice: envelopes.seal_payload(secret, vote_a, env_a, choice, receipt)
        for choice in ("yes", "no", "1", "10", "x" * 20)
    }
    assert {len(s) for s in sealed.values()} == {envelopes.SEALED_BYTES}  # sizes tell nothing
    assert envelopes.open_payload(secret, vote_a, env_a, sealed["no"]) == ("no", receipt)
    again = envelopes.seal_payload(secret, vote_a, env_a, "no", receipt)
    assert again != sealed["no"]  # a fresh nonce each time
    for wrong in (
        (secret, vote_a, env_b, sealed["no"]),  # moved into another envelope
        (secret, vote_b, env_a, sealed["no"]),  # or another vote
        ("t" * 40, vote_a, env_a, sealed["no"]),  # another secret key
        (secret, vote_a, env_a, sealed["no"][:-1] + bytes([sealed["no"][-1] ^ 1])),
        (secret, vote_a, env_a, sealed["no"][:20]),
        (secret, vote_a, env_a, None),
    ):
        with pytest.raises(envelopes.BrokenSeal):
            envelopes.open_payload(*wrong)


# -- deciding ------------------------------------------------------------------------------------


def test_challenges_are_decided_after_the_close_and_before_the_count(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    seal_through_pages(member_client(client), link_of(settings.secret_key, voter(db, vote, "9001")))
    envelope = envelope_of(db, vote, "9001")
    login(client, u.committee[0].email)
    base = f"/o/{u.org.slug}/votes/{vote.id}/challenges"
    listed = client.get(base)
    assert listed.status_code == 200
    assert "9001" in listed.text and "Payer, Fee" in listed.text and WHY in listed.text
    assert "Sealed, waiting for a decision" in listed.text
    assert "Accept: count this ballot" not in listed.text  # no forms while open
    token = csrf_from(client, base)
    before = counts(db)
    early = client.post(
        decide_url(u, vote, envelope), data={"csrf_token": token, "decision": "accept"}
    )
    assert early.status_code == 409 and "after the close" in early.text
    with pytest.raises(envelopes.NotDecidable):
        envelopes.decide(
            db, u.org, vote, envelope, accept=True, reason="", actor=u.committee[0],
            secret_key=settings.secret_key,
        )  # fmt: skip
    vote = close(db, u, vote)
    assert "Accept: count this ballot" in client.get(base).text
    db.execute(update(Vote).where(Vote.id == vote.id).values(status=VoteStatus.TALLIED))
    late = client.post(
        decide_url(u, vote, envelope), data={"csrf_token": token, "decision": "accept"}
    )
    assert late.status_code == 409
    db.expire_all()
    assert counts(db)[:3] == before[:3]  # (the close wrote its own audit event)
    assert not events(db, "vote.challenge_accepted")
    assert envelope_of(db, vote, "9001").status == EnvelopeStatus.SEALED


def test_an_accepted_envelope_becomes_one_ballot_with_no_link_back(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    """Accepted, an envelope stays sealed until the count opens every accepted one together
    and mixes the whole box in the same transaction: a ballot added at the decision would
    share the transaction (xmin) and the place of the envelope's update, which names the
    voter, and a copy of the table before and after would show its choice."""
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    for number in ("1001", "2001"):
        casting.cast(db, casting.Seat(voter(db, vote, number).id, 1, vote.id), "yes")
    code = seal_through_pages(
        member_client(client), link_of(settings.secret_key, voter(db, vote, "9001")), "no"
    )
    casting.mix(db, vote.id)
    vote = close(db, u, vote)
    ballots_before, receipts_before = box(db)
    envelope = envelope_of(db, vote, "9001")
    envelope_id, v = envelope.id, voter(db, vote, "9001")
    login(client, u.committee[0].email)
    token = csrf_from(client, f"/o/{u.org.slug}/votes/{vote.id}/challenges")
    accepted = client.post(
        decide_url(u, vote, envelope), data={"csrf_token": token, "decision": "accept"}
    )
    assert accepted.status_code == 303, accepted.text
    # Decided, not yet opened: the box is as it was, the envelope still sealed.
    assert box(db) == (ballots_before, receipts_before)
    envelope = envelope_of(db, vote, "9001")
    assert envelope.status == EnvelopeStatus.ACCEPTED and envelope.sealed is not None
    assert envelope.decided_by_id == u.committee[0].id and envelope.decided_at is not None
    assert envelopes.pending(db, vote) == 0
    (event,) = events(db, "vote.challenge_accepted")
    assert event.data == {
        "member_number": "9001",
        "channel": "online",
        "decision": "accepted",
        "reason": "",
    }
    assert event.member_id == v.member_id
    page = client.get(f"/o/{u.org.slug}/votes/{vote.id}/challenges").text
    assert "Accepted: its ballot joins the box at the count" in page
    assert "Accept: count this ballot" not in page
    # Decided once: a second decision, either way, is refused and writes nothing.
    for decision in ("accept", "reject"):
        again = client.post(
            decide_url(u, vote, envelope),
            data={"csrf_token": token, "decision": decision, "reason": "again"},
        )
        assert again.status_code == 409 and "already decided" in again.text
    assert box(db) == (ballots_before, receipts_before)

    # The count opens it into the box and mixes everything: new ids for every ballot.
    results.count(
        db, u.org, votes.get_vote(db, u.org, vote.id), actor=u.committee[0],
        secret_key=settings.secret_key,
    )  # fmt: skip
    ballots, receipts = box(db)
    assert all(b[3] for b in ballots) and all(r[2] for r in receipts)
    assert sorted(b[1:3] for b in ballots) == [("RN", "yes"), ("TECH", "no"), ("TECH", "yes")]
    assert not {b[0] for b in ballots} & {b[0] for b in ballots_before}
    assert (code.replace("-", ""), "TECH", True) in receipts  # the receipt the voter was shown
    assert envelope_of(db, vote, "9001").sealed is None
    # Nothing in any ballot names the voter, the member or the envelope.
    for ballot_id, *_rest in ballots:
        row = db.get_one(Ballot, uuid.UUID(ballot_id))
        held = {str(getattr(row, c.key)) for c in inspect(Ballot).columns}
        assert not held & {str(envelope_id), str(v.id), str(v.member_id), "9001"}
    envelope_columns = {c["name"] for c in inspect(db.get_bind()).get_columns("envelopes")}
    assert not envelope_columns & {"ballot_id", "receipt", "receipt_code", "choice"}


def test_a_rejected_envelope_is_destroyed_unopened_with_its_reason_kept(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    seal_through_pages(member_client(client), link_of(settings.secret_key, voter(db, vote, "9001")))
    vote = close(db, u, vote)
    envelope = envelope_of(db, vote, "9001")
    login(client, u.committee[1].email)
    token = csrf_from(client, f"/o/{u.org.slug}/votes/{vote.id}/challenges")
    before, before_box = counts(db), box(db)
    bare = client.post(
        decide_url(u, vote, envelope),
        data={"csrf_token": token, "decision": "reject", "reason": " "},
    )
    assert bare.status_code == 400 and "Give the reason" in bare.text
    assert envelope_of(db, vote, "9001").status == EnvelopeStatus.SEALED
    reason = "Not in the unit on the cutoff date"
    rejected = client.post(
        decide_url(u, vote, envelope),
        data={"csrf_token": token, "decision": "reject", "reason": reason},
    )
    assert rejected.status_code == 303, rejected.text
    assert box(db) == before_box  # no ballot, no receipt
    envelope = envelope_of(db, vote, "9001")
    assert (envelope.status, envelope.sealed, envelope.reason) == (
        EnvelopeStatus.REJECTED,
        None,
        reason,
    )
    assert envelope.decided_by_id == u.committee[1].id
    (event,) = events(db, "vote.challenge_rejected")
    assert event.data == {
        "member_number": "9001",
        "channel": "online",
        "decision": "rejected",
        "reason": reason,
    }
    assert counts(db)[3] == before[3] + 1  # that event only
    page = client.get(f"/o/{u.org.slug}/votes/{vote.id}/challenges").text
    assert "Rejected: destroyed unopened" in page and reason in page


def test_a_paper_envelope_is_decided_without_opening_anything(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    v = voter(db, vote, "9001")
    db.execute(update(Voter).where(Voter.id == v.id).values(has_voted=True, channel=Channel.PAPER))
    db.add(Envelope(vote_id=vote.id, voter_id=v.id, channel=Channel.PAPER, sealed=None))
    db.flush()
    vote = close(db, u, vote)
    before = box(db)
    envelope = envelope_of(db, vote, "9001")
    envelopes.decide(
        db, u.org, vote, envelope, accept=True, reason="", actor=u.committee[0],
        secret_key=settings.secret_key,
    )  # fmt: skip
    assert box(db) == before  # the physical envelope joins the paper count
    assert envelope_of(db, vote, "9001").status == EnvelopeStatus.ACCEPTED
    assert [e.data["channel"] for e in events(db, "vote.challenge_accepted")] == ["paper"]
    (row,) = envelopes.challenges(db, vote)
    assert (row.member_number, row.voted, row.envelope_status) == (
        "9001",
        Channel.PAPER,
        EnvelopeStatus.ACCEPTED,
    )


def test_a_tampered_envelope_fails_cleanly_and_writes_nothing(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    db.execute(update(Voter).where(Voter.id == voter(db, vote, "2001").id)
               .values(status=VoterStatus.CHALLENGED, reason=WHY))  # fmt: skip
    seal_through_pages(member_client(client), link_of(settings.secret_key, voter(db, vote, "9001")))
    seal_through_pages(member_client(client), link_of(settings.secret_key, voter(db, vote, "2001")))
    vote = close(db, u, vote)
    first, second = envelope_of(db, vote, "9001"), envelope_of(db, vote, "2001")
    assert first.sealed is not None and second.sealed is not None
    flipped = first.sealed[:-1] + bytes([first.sealed[-1] ^ 1])
    db.execute(update(Envelope).where(Envelope.id == first.id).values(sealed=flipped))
    # The second's payload copied from the first: it opens for no other envelope.
    db.execute(update(Envelope).where(Envelope.id == second.id).values(sealed=first.sealed))
    login(client, u.committee[0].email)
    token = csrf_from(client, f"/o/{u.org.slug}/votes/{vote.id}/challenges")
    before, before_box = counts(db), box(db)
    for number, envelope in (("9001", first), ("2001", second)):
        refused = client.post(
            decide_url(u, vote, envelope), data={"csrf_token": token, "decision": "accept"}
        )
        assert refused.status_code == 409 and "cannot be opened" in refused.text
        assert envelope_of(db, vote, number).status == EnvelopeStatus.SEALED
    db.expire_all()
    assert counts(db) == before and box(db) == before_box
    assert envelope_of(db, vote, "9001").sealed == flipped
    # The committee can still reject it, saying why.
    rejected = client.post(
        decide_url(u, vote, first),
        data={"csrf_token": token, "decision": "reject", "reason": "Its seal does not check"},
    )
    assert rejected.status_code == 303
    assert envelope_of(db, vote, "9001").status == EnvelopeStatus.REJECTED


# -- who may see and decide ----------------------------------------------------------------------


def test_other_organizations_observers_and_forged_forms_are_refused(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    seal_through_pages(member_client(client), link_of(settings.secret_key, voter(db, vote, "9001")))
    vote = close(db, u, vote)
    envelope = envelope_of(db, vote, "9001")
    base = f"/o/{u.org.slug}/votes/{vote.id}/challenges"
    before, before_box = counts(db), box(db)
    # Another organization's committee: this vote is not found under their organization,
    # and ours does not exist for them.
    other = make_union(db)
    login(client, other.committee[0].email)
    theirs = f"/o/{other.org.slug}/votes/{vote.id}/challenges"
    assert client.get(theirs).status_code == 404
    assert client.get(base).status_code == 404
    token = csrf_from(client, f"/o/{other.org.slug}/votes")
    assert (
        client.post(
            f"{theirs}/{envelope.id}", data={"csrf_token": token, "decision": "accept"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"{base}/{envelope.id}", data={"csrf_token": token, "decision": "accept"}
        ).status_code
        == 404
    )
    # An observer sees neither the list nor the forms; staff do not review the list.
    for role in (Role.OBSERVER, Role.STAFF):
        client.cookies.clear()
        login(client, make_user(db, u.org, role).email)
        assert client.get(base).status_code == 403
        token = csrf_from(client, f"/o/{u.org.slug}/votes/{vote.id}")
        refused = client.post(
            f"{base}/{envelope.id}", data={"csrf_token": token, "decision": "accept"}
        )
        assert refused.status_code == 403
    # The committee, with forged or broken forms.
    client.cookies.clear()
    login(client, u.committee[0].email)
    token = csrf_from(client, base)
    assert client.post(f"{base}/{envelope.id}", data={"decision": "accept"}).status_code == 403
    forged = {"csrf_token": "forged", "decision": "accept"}
    assert client.post(f"{base}/{envelope.id}", data=forged).status_code == 403
    maybe = client.post(f"{base}/{envelope.id}", data={"csrf_token": token, "decision": "maybe"})
    assert maybe.status_code == 400 and "accept or to reject" in maybe.text
    for wrong in (str(uuid.uuid4()), "not-an-envelope", str(voter(db, vote, "9001").id)):
        assert (
            client.post(
                f"{base}/{wrong}", data={"csrf_token": token, "decision": "accept"}
            ).status_code
            == 404
        )
    long = client.post(
        f"{base}/{envelope.id}",
        data={"csrf_token": token, "decision": "reject", "reason": "x" * 501},
    )
    assert long.status_code == 400
    db.expire_all()
    assert counts(db)[:3] == before[:3] and box(db) == before_box
    assert not events(db, "vote.challenge_accepted") + events(db, "vote.challenge_rejected")
    assert envelope_of(db, vote, "9001").status == EnvelopeStatus.SEALED


# -- no page shows a sealed choice ---------------------------------------------------------------


def _get_routes(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Every GET path of the vote pages, the challenges page, the audit log, the member's
    pages and the API, with its parameters filled in (routes needing others are left out)."""
    paths = []
    for route in app.routes:
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or set()
        if "GET" not in methods:
            continue
        if not path.startswith(("/o/{slug}/votes", "/o/{slug}/audit", "/api/", "/v/")):
            continue
        params = set(getattr(route, "param_convertors", {}))
        if params - {"slug", "vote_id", "language"}:
            continue
        paths.append(path)
    return paths


def test_no_page_or_api_response_shows_a_sealed_choice(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    """Before acceptance, every page and API response is the same byte for byte whatever the
    envelope holds, and names the sealed choice's label no more often than the other's."""
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    member = member_client(client)
    code = seal_through_pages(member, link_of(settings.secret_key, voter(db, vote, "9001")), "no")
    casting.cast(db, casting.Seat(voter(db, vote, "1001").id, 1, vote.id), "yes")
    vote = close(db, u, vote)
    envelope = envelope_of(db, vote, "9001")
    login(client, u.admin.email)  # every permission there is
    tokens = [bearer(make_token(db, u.org, role, client)) for role in (Role.STAFF, Role.COMMITTEE)]
    paths = _get_routes(client.app)
    assert "/o/{slug}/votes/{vote_id}/challenges" in paths and "/v/ballot" in paths
    assert any(p.startswith("/api/") for p in paths)

    def responses() -> dict[str, str]:
        seen = {}
        for path in paths:
            url = path.format(slug=u.org.slug, vote_id=vote.id, language="en")
            if path.startswith("/v/"):
                got = [member.get(url)]
            elif path.startswith("/api/"):
                got = [client.get(url, headers=headers) for headers in tokens]
            else:
                got = [client.get(url)]
            for n, response in enumerate(got):
                assert response.status_code < 500, (url, response.text)
                pdf = "pdf" in response.headers.get("content-type", "")
                text = str(response.content) if pdf else response.text
                # An error page names its request, different every time.
                request_id = response.headers.get("x-request-id")
                seen[f"{url} {n}"] = text.replace(request_id, "ID") if request_id else text
        return seen

    def holding(choice: str) -> dict[str, str]:
        """Every response with the envelope sealed again holding ``choice``; then all that
        the requests wrote (the API's export events, say) is rolled back."""
        savepoint = db.begin_nested()
        sealed = envelopes.seal_payload(
            settings.secret_key, vote.id, envelope.id, choice, code.replace("-", "")
        )
        db.execute(update(Envelope).where(Envelope.id == envelope.id).values(sealed=sealed))
        db.flush()
        seen = responses()
        savepoint.rollback()
        return seen

    holding_no, holding_yes = holding("no"), holding("yes")
    assert holding_no.keys() == holding_yes.keys()
    for url, text in holding_no.items():
        assert text == holding_yes[url], url
        for language_labels in (LABELS, {"yes": "Sí, acepto", "no": "No, rechazo"}):
            assert text.count(language_labels["no"]) == text.count(language_labels["yes"]), url
    challenges_page = holding_no[f"/o/{u.org.slug}/votes/{vote.id}/challenges 0"]
    assert "9001" in challenges_page and LABELS["no"] not in challenges_page


# -- at once ---------------------------------------------------------------------------------------


@needs_postgres
@pytest.mark.postgres_only
def test_many_seals_and_decisions_at_once_give_one_envelope_and_one_ballot(
    live_sessions: sessionmaker[Session], settings
) -> None:  # type: ignore[no-untyped-def]
    with live_sessions.begin() as db:
        u = make_union(db)
        vote = challenged_vote(db, u, settings.secret_key)
        org_id, vote_id = u.org.id, vote.id
        seat = casting.Seat(voter(db, vote, "9001").id, 1, vote.id)
        committee_ids = [c.id for c in u.committee]

    def seal_once(n: int) -> str:
        with live_sessions.begin() as db:
            try:
                return envelopes.seal(db, settings.secret_key, seat, "no" if n % 2 else "yes")
            except casting.AlreadyVoted:
                return "refused"

    sealed = run_together(seal_once, 20)
    assert not [r for r in sealed if isinstance(r, BaseException)], sealed
    assert len([r for r in sealed if r != "refused"]) == 1
    with live_sessions.begin() as db:
        close(db, u, db.get_one(Vote, vote_id))

    def decide_once(n: int) -> str:
        with live_sessions.begin() as db:
            org = db.get_one(Organization, org_id)
            vote = votes.get_vote(db, org, vote_id)
            (envelope,) = db.scalars(select(Envelope).where(Envelope.vote_id == vote_id))
            try:
                envelopes.decide(
                    db, org, vote, envelope, accept=n % 3 != 0, reason="at once",
                    actor=db.get_one(StaffUser, committee_ids[n % 2]),
                    secret_key=settings.secret_key,
                )  # fmt: skip
            except Conflict:
                return "refused"
            return "decided"

    decided = run_together(decide_once, 12)
    assert not [r for r in decided if isinstance(r, BaseException)], decided
    assert decided.count("decided") == 1
    with live_sessions() as db:
        (envelope,) = db.scalars(select(Envelope).where(Envelope.vote_id == vote_id))
        accepted = envelope.status == EnvelopeStatus.ACCEPTED
        assert (envelope.sealed is not None) == accepted  # opened only by the count
        assert db.scalar(select(func.count()).select_from(Ballot)) == 0
        assert db.scalar(select(func.count()).select_from(Receipt)) == 0
        assert len(events(db, f"vote.challenge_{envelope.status.value}")) == 1


@pytest.mark.parametrize("accept", [True, False])
def test_the_challenged_voters_page_says_what_the_committee_decided(
    db: Session, client, settings, accept: bool
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = challenged_vote(db, u, settings.secret_key)
    member = member_client(client)
    link = link_of(settings.secret_key, voter(db, vote, "9001"))
    seal_through_pages(member, link, "yes")
    assert "decides your challenge" in member.get("/v/ballot").text  # not decided yet
    vote = close(db, u, vote)
    envelopes.decide(
        db, u.org, vote, envelope_of(db, vote, "9001"), accept=accept,
        reason="" if accept else "not employed in the unit on the cutoff date",
        actor=u.committee[0], secret_key=settings.secret_key,
    )  # fmt: skip
    db.flush()
    member.cookies.clear()
    assert sign_in(member, link, "").status_code == 303
    page = member.get("/v/ballot").text
    if accept:
        assert "accepted your place on the voter list" in page and "destroyed" not in page
    else:
        assert "did not accept your place on the voter list" in page
        assert "not employed in the unit on the cutoff date" in page
