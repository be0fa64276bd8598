"""Personal links, the second factor, casting, receipts and mixing (DESIGN.md §4)."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Boolean, DateTime, func, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.audit.models import AuditEvent
from ratify.jobs.registry import ticks
from ratify.jobs.worker import Worker
from ratify.throttle.models import ThrottleHit
from ratify.votes import casting, credentials, factors, sheets
from ratify.votes import services as votes
from ratify.votes.models import (
    Ballot,
    Channel,
    Receipt,
    SecondFactor,
    Vote,
    Voter,
    VoterStatus,
    VoteStatus,
)
from tests.helpers import csrf_from, run_together
from tests.votes.support import Union, make_union, ready_vote

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ON_POSTGRES = os.environ.get("RATIFY_TEST_DB", "sqlite") == "postgresql"
needs_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="xmin, ctid and row locks")


def open_vote(db: Session, u: Union, secret_key: str, **changes: object) -> Vote:
    """A scheduled vote whose window is open now, opened as the first page would."""
    vote = ready_vote(db, u, **changes)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=secret_key)
    now = datetime.now(UTC)
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=1))
    )
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    votes.advance(db, u.org, vote)
    assert vote.status == VoteStatus.OPEN
    db.flush()
    return vote


def voter(db: Session, vote: Vote, member_number: str) -> Voter:
    return db.execute(
        select(Voter).where(Voter.vote_id == vote.id, Voter.member_number == member_number)
    ).scalar_one()


def link_of(secret_key: str, v: Voter) -> str:
    return "/v/" + credentials.Minter(secret_key, v.vote_id).credential(v.id, v.credential_issue)


def counts(db: Session) -> tuple[int, int, int, int]:
    return (
        db.scalar(select(func.count()).select_from(Ballot)) or 0,
        db.scalar(select(func.count()).select_from(Receipt)) or 0,
        db.scalar(select(func.count()).select_from(Voter).where(Voter.has_voted)) or 0,
        db.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


def sign_in(client, link: str, answer: str):  # type: ignore[no-untyped-def]
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post(link, data={"csrf_token": token, "answer": answer, "lang": "en"})


def vote_through_pages(client, link: str, answer: str, choice: str = "yes") -> str:  # type: ignore[no-untyped-def]
    """Link → second factor → ballot → review → cast; the receipt page's text."""
    signed_in = sign_in(client, link, answer)
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/v/ballot"  # the credential is left behind
    token = csrf_from(client, "/v/ballot")
    mark = MARKS.get(choice, choice)
    review = client.post("/v/review", data={"csrf_token": token, "choice": mark})
    assert review.status_code == 200 and "You are voting" in review.text
    cast = client.post("/v/cast", data={"csrf_token": token, "choice": mark})
    assert cast.status_code == 200, cast.text
    return cast.text


MARKS = {"yes": "01", "no": "02"}  # what the ballot form sends: each option's position
ANSWERS = {
    SecondFactor.MEMBER_LAST4: "1001",
    SecondFactor.BIRTH_YEAR: "1981",  # 1980 + 1001 % 20
    SecondFactor.POSTAL_CODE: "94110",
    SecondFactor.NONE: "",
}


@pytest.mark.parametrize("factor", list(ANSWERS))
def test_a_member_votes_once_through_their_link_with_each_second_factor(
    db: Session, client, settings, secret_ledger, factor: SecondFactor
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=factor)
    v = voter(db, vote, "1001")
    link = link_of(settings.secret_key, v)
    secret_ledger.add(link.rpartition("/")[2])  # no log line may hold it
    before = counts(db)
    for _ in range(3):  # mail scanners open links: opening changes nothing
        assert client.get(link).status_code == 200
    assert counts(db) == before
    if factor != SecondFactor.NONE:
        wrong = sign_in(client, link, "0000" if factor != SecondFactor.POSTAL_CODE else "10001")
        assert wrong.status_code == 400 and "does not match" in wrong.text
        assert "set-cookie" not in {k.lower() for k in wrong.headers} or "ratify_voter" not in (
            wrong.headers.get("set-cookie", "")
        )
    receipt_page = vote_through_pages(client, link, ANSWERS[factor])
    code = re.search(r"<code>([A-Z0-9-]+)</code>", receipt_page).group(1)  # type: ignore[union-attr]
    secret_ledger.add(code)
    db.expire_all()
    ballots = db.scalars(select(Ballot)).all()
    assert [(b.vote_id, b.tally_group, b.choice) for b in ballots] == [(vote.id, "RN", "yes")]
    receipts = db.scalars(select(Receipt)).all()
    assert [(r.code, r.tally_group) for r in receipts] == [(code.replace("-", ""), "RN")]
    v = voter(db, vote, "1001")
    assert (v.has_voted, v.channel) == (True, Channel.ONLINE)
    assert v.voted_hour is not None and (v.voted_hour.minute, v.voted_hour.second) == (0, 0)
    # Casting wrote no audit event (rule 2), and nothing anywhere holds the choice.
    assert counts(db)[3] == before[3]
    # The link still works: it now leads to "you have voted", and a second cast is refused.
    assert sign_in(client, link, ANSWERS[factor]).status_code == 303
    assert "You have voted" in client.get("/v/ballot").text
    again = client.post("/v/cast", data={"csrf_token": csrf_from(client, link), "choice": "no"})
    assert again.status_code == 409 and "already voted" in again.text
    db.expire_all()
    assert counts(db)[:3] == (1, 1, 1)


def test_bad_links_are_the_same_clear_404(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key)
    v = voter(db, vote, "1002")
    link = link_of(settings.secret_key, v)
    for bad in ("/v/short", "/v/" + "a" * 26, "/v/" + "%00" * 26, link[:-1] + "8"):
        response = client.get(bad)
        assert response.status_code == 404, bad
        assert "not valid" in response.text
    # A reissued credential: the old link stops working at once, and so does its session.
    assert sign_in(client, link, "1982").status_code == 303
    casting.reissue(db, u.org, vote, v, actor=u.staff, secret_key=settings.secret_key)
    db.flush()
    assert client.get(link).status_code == 404
    assert client.get("/v/ballot").status_code == 401
    db.expire_all()
    assert client.get(link_of(settings.secret_key, voter(db, vote, "1002"))).status_code == 200
    reissued = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.credential_reissued"))
    assert [e.data["member_number"] for e in reissued] == ["1002"]


def test_tampered_forms_and_refused_voters_write_nothing(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4)
    link = link_of(settings.secret_key, voter(db, vote, "1003"))
    assert sign_in(client, link, "1003").status_code == 303
    token = csrf_from(client, "/v/ballot")
    before = counts(db)
    unknown = client.post("/v/cast", data={"csrf_token": token, "choice": "maybe"})
    assert unknown.status_code == 400 and "Choose one of the options" in unknown.text
    review = client.post("/v/review", data={"csrf_token": token, "choice": "maybe"})
    assert review.status_code == 400
    assert client.post("/v/cast", data={"choice": "yes"}).status_code == 403  # no CSRF token
    assert client.post("/v/cast", data={"csrf_token": "forged", "choice": "yes"}).status_code == 403
    client.cookies.delete("ratify_voter")
    client.cookies.set("ratify_voter", "forged.value")
    assert client.post("/v/cast", data={"csrf_token": token, "choice": "yes"}).status_code == 401
    db.expire_all()
    assert counts(db) == before
    # A challenged voter's tampered choice is refused too; their vote goes into a sealed
    # envelope (tests/votes/test_envelopes.py), never straight into the box.
    db.execute(update(Voter).where(Voter.id == voter(db, vote, "2001").id)
               .values(status=VoterStatus.CHALLENGED))  # fmt: skip
    client.cookies.clear()
    challenged = link_of(settings.secret_key, voter(db, vote, "2001"))
    assert sign_in(client, challenged, "2001").status_code == 303
    assert "sealed in an envelope" in client.get("/v/ballot").text
    token = csrf_from(client, challenged)
    unknown = client.post("/v/cast", data={"csrf_token": token, "choice": "maybe"})
    assert unknown.status_code == 400 and "Choose one of the options" in unknown.text
    db.expire_all()
    assert counts(db) == before
    sealed = client.post("/v/cast", data={"csrf_token": token, "choice": MARKS["yes"]})
    assert sealed.status_code == 200 and "Your vote is sealed" in sealed.text
    db.expire_all()
    assert counts(db) == (before[0], before[1], before[2] + 1, before[3])  # no ballot, no receipt


def test_wrong_second_factors_are_throttled_per_link_and_per_address(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key)
    link = link_of(settings.secret_key, voter(db, vote, "1001"))
    for _ in range(casting.FACTOR_TRIES_PER_CREDENTIAL):
        assert sign_in(client, link, "1900").status_code == 400
    refused = sign_in(client, link, "1981")  # even the right answer, for a while
    assert refused.status_code == 429 and "Too many wrong answers" in refused.text
    # From one address, guesses spread over many links are stopped too.
    db.execute(
        update(ThrottleHit).values(at=datetime.now(UTC) - timedelta(hours=1))
    )  # the first link's window has passed
    eligible = select(Voter).where(
        Voter.vote_id == vote.id, Voter.factor == SecondFactor.BIRTH_YEAR
    )
    others = [link_of(settings.secret_key, v) for v in db.scalars(eligible)]
    tries = 0
    while tries < casting.FACTOR_TRIES_PER_ADDRESS:
        for other in others:
            for _ in range(casting.FACTOR_TRIES_PER_CREDENTIAL - 1):
                if tries < casting.FACTOR_TRIES_PER_ADDRESS:
                    assert sign_in(client, other, "1900").status_code == 400
                    tries += 1
    assert sign_in(client, others[-1], "1900").status_code == 429


def test_the_ballot_box_holds_nothing_that_points_at_a_voter(engine) -> None:  # type: ignore[no-untyped-def]
    """Rule 1: no column of the ballot or the receipt refers to a member, a voter or each
    other, and none holds a time; the voter row has nothing of either."""
    inspector = inspect(engine)
    for table, expected in (
        ("ballots", {"id", "vote_id", "tally_group", "choice", "mixed"}),
        ("receipts", {"code", "vote_id", "tally_group", "mixed"}),
    ):
        columns = {c["name"]: c for c in inspector.get_columns(table)}
        assert set(columns) == expected
        assert not any(isinstance(c["type"], DateTime) for c in columns.values())
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys(table)] == ["votes"]
    voter_columns = {c["name"] for c in inspector.get_columns("voters")}
    assert not voter_columns & {"ballot_id", "receipt", "receipt_code", "choice"}
    assert isinstance(
        next(c for c in inspector.get_columns("ballots") if c["name"] == "mixed")["type"], Boolean
    )
    if engine.dialect.name == "sqlite":  # physical order follows the random key, not time
        with engine.connect() as conn:
            for table in ("ballots", "receipts"):
                sql = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}
                ).scalar_one()
                assert "WITHOUT ROWID" in sql


def _cast_committed(live_sessions: sessionmaker[Session], secret_key: str, count: int):  # type: ignore[no-untyped-def]
    from tests.votes.support import make_union as union_of

    with live_sessions.begin() as db:
        u = union_of(db, rn_members=count, tech_members=0)
        vote = open_vote(db, u, secret_key, second_factor=SecondFactor.NONE)
        vote_id = vote.id
        ids = [v.id for v in db.scalars(select(Voter).where(
            Voter.vote_id == vote_id, Voter.status == VoterStatus.ELIGIBLE))]  # fmt: skip
    return vote_id, ids


@needs_postgres
@pytest.mark.postgres_only
def test_after_a_mix_no_join_on_xmin_or_position_links_voters_to_ballots(
    live_sessions: sessionmaker[Session], settings
) -> None:  # type: ignore[no-untyped-def]
    vote_id, ids = _cast_committed(live_sessions, settings.secret_key, 60)
    for voter_id in ids:  # one transaction each, as the page does
        with live_sessions.begin() as db:
            seat = casting.Seat(voter_id, 1, vote_id)
            casting.cast(db, seat, "yes" if voter_id.int % 2 else "no")

    def linked(db: Session) -> tuple[int, int, int]:
        on_xmin = db.execute(text(
            "SELECT count(*) FROM voters v JOIN ballots b ON b.xmin = v.xmin"
            " UNION ALL SELECT count(*) FROM voters v JOIN receipts r ON r.xmin = v.xmin"
        )).scalars().all()  # fmt: skip
        # Position: the n-th voter updated and the n-th ballot stored, in physical order.
        in_order = db.execute(text(
            "WITH v AS (SELECT row_number() OVER (ORDER BY ctid) n, id FROM voters"
            "           WHERE has_voted),"
            " b AS (SELECT row_number() OVER (ORDER BY ctid) n, choice FROM ballots)"
            " SELECT count(*) FROM v JOIN b USING (n)"
            " JOIN voters x ON x.id = v.id"
            " WHERE b.choice = CASE WHEN ('x' || right(x.id::text, 8))::bit(32)::int % 2 <> 0"
            "                       THEN 'yes' ELSE 'no' END"
        )).scalar_one()  # fmt: skip
        return on_xmin[0], on_xmin[1], in_order

    with live_sessions() as db:
        before = linked(db)
    assert before[:2] == (60, 60)  # before the mix, each cast's three rows share an xmin
    with live_sessions.begin() as db:
        assert casting.mix(db, vote_id) == 60
    with live_sessions() as db:
        after = linked(db)
        assert after[:2] == (0, 0)
        # The choices by position now agree with the voters' only by chance (about half).
        assert after[2] < 45
        assert db.scalar(select(func.count()).select_from(Ballot)) == 60
        assert db.scalar(select(func.count()).where(Ballot.mixed.is_(False))) == 0
        assert casting.votes_to_mix(db) == []


def test_the_worker_mixes_what_was_cast_since_the_last_mix(db: Session, sessions, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number in ("1001", "1002"):
        access = casting.find_by_session(db, voter(db, vote, number).id, 1)
        assert access is not None
        casting.cast(db, access.seat, "yes")
    db.commit()
    codes = set(db.scalars(select(Receipt.code)))
    worker = Worker(
        sessions, handlers={}, ticks=[t for t in ticks(settings) if t.name == "votes.mix"]
    )
    assert worker.run_due_ticks() == ["votes.mix"]
    db.expire_all()
    assert db.scalar(select(func.count()).where(Ballot.mixed.is_(False))) == 0
    assert db.scalar(select(func.count()).select_from(Ballot)) == 2
    assert set(db.scalars(select(Receipt.code))) == codes  # members keep their codes


@needs_postgres
@pytest.mark.postgres_only
def test_one_credential_cast_many_times_at_once_gives_one_ballot(
    live_sessions: sessionmaker[Session], settings
) -> None:  # type: ignore[no-untyped-def]
    vote_id, ids = _cast_committed(live_sessions, settings.secret_key, 200)

    def attempt(n: int) -> str:
        voter_id = ids[n % len(ids)]
        with live_sessions.begin() as db:
            try:
                return casting.cast(db, casting.Seat(voter_id, 1, vote_id), "yes")
            except casting.AlreadyVoted:
                return "refused"

    results = []
    for start in range(0, 200 * 20, 400):  # 400 threads at a time: 2 attempts per voter
        results += run_together(lambda n, s=start: attempt(s + n), 400, timeout=120)
    assert not [r for r in results if isinstance(r, BaseException)]
    with live_sessions() as db:
        assert db.scalar(select(func.count()).select_from(Ballot)) == 200
        assert db.scalar(select(func.count()).select_from(Receipt)) == 200
        assert db.scalar(select(func.count()).select_from(Voter).where(Voter.has_voted)) == 200
    assert len([r for r in results if r != "refused"]) == 200


def test_audit_events_hold_no_choice_and_no_credential(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    v = voter(db, vote, "1004")
    link = link_of(settings.secret_key, v)
    set_up = set(db.scalars(select(AuditEvent.id)))
    receipt = vote_through_pages(client, link, "", choice="no")
    code = re.search(r"<code>([A-Z0-9-]+)</code>", receipt).group(1)  # type: ignore[union-attr]
    casting.reissue(db, u.org, vote, v, actor=u.staff, secret_key=settings.secret_key)
    db.flush()
    since = [e for e in db.scalars(select(AuditEvent)) if e.id not in set_up]
    assert [e.action for e in since] == ["vote.credential_reissued"]  # casting wrote none
    assert since[0].data == {"member_number": "1004", "issue": 2}
    everything = json.dumps([e.data for e in db.scalars(select(AuditEvent))], default=str)
    for secret in (link.rpartition("/")[2], code, code.replace("-", "")):
        assert secret not in everything


def test_the_ballot_keeps_the_language_the_member_chose(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1005")), "").status_code
        == 303
    )
    ballot = client.get("/v/ballot?lang=es")
    assert 'lang="es"' in ballot.text and "Question in es?" in ballot.text
    token = _CSRF.search(ballot.text).group(1)  # type: ignore[union-attr]
    review = client.post("/v/review", data={"csrf_token": token, "choice": "02", "lang": "es"})
    assert "Question in es?" in review.text and 'name="lang" value="es"' in review.text
    cast = client.post("/v/cast", data={"csrf_token": token, "choice": "02", "lang": "es"})
    assert cast.status_code == 200 and '<html lang="es">' in cast.text


def test_members_download_the_agreement_in_their_session_only(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    from tests.votes.support import PDF

    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    assert client.get("/v/full-text/en").status_code == 401
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    assert 'href="/v/full-text/en"' in client.get("/v/ballot").text
    pdf = client.get("/v/full-text/en")
    assert (pdf.status_code, pdf.content) == (200, PDF)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-disposition"] == 'attachment; filename="agreement-en.pdf"'
    assert client.get("/v/full-text/fr").status_code == 404


@needs_postgres
@pytest.mark.postgres_only
def test_mixing_after_every_cast_still_leaves_no_order_to_read(
    live_sessions: sessionmaker[Session], settings
) -> None:  # type: ignore[no-untyped-def]
    """A mix rewrites the whole box: were only newcomers rewritten, each mix's batch (one
    ballot, in a quiet hour) would keep its own xmin and place, in casting order."""
    vote_id, ids = _cast_committed(live_sessions, settings.secret_key, 30)
    cast_order = []
    for n, voter_id in enumerate(ids):
        choice = "yes" if n % 2 else "no"
        with live_sessions.begin() as db:
            casting.cast(db, casting.Seat(voter_id, 1, vote_id), choice)
        cast_order.append(choice)
        with live_sessions.begin() as db:
            casting.mix(db, vote_id)
    with live_sessions() as db:
        for table in ("ballots", "receipts"):
            xmins = db.execute(text(f"SELECT count(DISTINCT xmin::text) FROM {table}")).scalar_one()
            assert xmins == 1, table  # all rewritten by the last mix
        by_place = list(db.scalars(text("SELECT choice FROM ballots ORDER BY ctid")))
        assert sorted(by_place) == sorted(cast_order)
        assert by_place != cast_order  # 1 chance in C(30, 15) of agreeing at random


def test_one_voters_typos_do_not_lock_out_others_behind_the_same_address(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4)
    mine = link_of(settings.secret_key, voter(db, vote, "1001"))
    for _ in range(8):  # 32 wrong answers from this address in all, each round then right
        for _ in range(casting.FACTOR_TRIES_PER_CREDENTIAL - 1):
            assert sign_in(client, mine, "0000").status_code == 400
        assert sign_in(client, mine, "1001").status_code == 303
    colleague = link_of(settings.secret_key, voter(db, vote, "1002"))
    assert sign_in(client, colleague, "1002").status_code == 303


def test_a_link_is_locked_after_too_many_wrong_answers_until_reissued(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key)  # year of birth: one of about 80
    link = link_of(settings.secret_key, voter(db, vote, "1001"))
    for n in range(casting.FACTOR_LOCK_AFTER):
        if n % casting.FACTOR_TRIES_PER_CREDENTIAL == 0:  # the sliding window has passed
            db.execute(update(ThrottleHit).values(at=datetime.now(UTC) - timedelta(hours=1)))
        assert sign_in(client, link, str(1900 + n)).status_code == 400
    db.execute(update(ThrottleHit).values(at=datetime.now(UTC) - timedelta(hours=1)))
    locked = sign_in(client, link, "1981")
    assert locked.status_code == 403 and "locked" in locked.text
    casting.reissue(db, u.org, vote, voter(db, vote, "1001"), actor=u.staff,
                    secret_key=settings.secret_key)  # fmt: skip
    db.expire_all()
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "1981").status_code
        == 303
    )


def test_a_session_older_than_a_reissue_casts_nothing(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    v = voter(db, vote, "1001")
    access = casting.find_by_session(db, v.id, 1)
    assert access is not None
    casting.reissue(db, u.org, vote, v, actor=u.staff, secret_key=settings.secret_key)
    with pytest.raises(casting.LinkReplaced):
        casting.cast(db, access.seat, "yes")
    assert counts(db)[:3] == (0, 0, 0)


def test_full_width_digits_are_the_digits_they_show(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4)
    link = link_of(settings.secret_key, voter(db, vote, "1001"))
    assert sign_in(client, link, "１００１").status_code == 303
    assert factors.normalize(SecondFactor.BIRTH_YEAR, "١٩٨٤") == "1984"


def test_the_choice_does_not_show_in_the_size_of_a_request_or_a_page(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    """An onlooker on the network (an employer's Wi-Fi) sees sizes even through TLS: every
    option's form sends as many bytes, and every option's review page is as long."""
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    ballot = client.get("/v/ballot").text
    marks = re.findall(r'name="choice" value="([^"]+)"', ballot)
    assert marks == ["01", "02"]
    token = _CSRF.search(ballot).group(1)  # type: ignore[union-attr]
    pages = [
        client.post("/v/review", data={"csrf_token": token, "choice": mark, "lang": "en"})
        for mark in marks
    ]
    assert "Yes, I accept" in pages[0].text and "No, I reject" in pages[1].text
    assert len(pages[0].content) == len(pages[1].content)
    assert counts(db)[:3] == (0, 0, 0)


def test_past_its_closing_time_a_vote_takes_no_ballot_whatever_its_status(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    """The cast moves no status (rule 2), so a vote whose window has just passed may still
    say open: the review and the cast refuse it all the same, and write nothing."""
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    token = csrf_from(client, "/v/ballot")
    db.execute(
        update(Vote).where(Vote.id == vote.id)
        .values(closes_at=datetime.now(UTC) - timedelta(seconds=1))
    )  # fmt: skip
    before = counts(db)
    for step in ("/v/review", "/v/cast"):
        refused = client.post(step, data={"csrf_token": token, "choice": "01"})
        assert refused.status_code == 409 and "Voting is not open" in refused.text
    db.expire_all()
    assert counts(db) == before
    assert db.get_one(Vote, vote.id).status == VoteStatus.OPEN  # the cast moved nothing


def test_an_open_votes_sheet_is_kept_and_its_closing_time_read_afresh(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    """Once open, a vote's sheet is read once per process; an extension still shows at once
    on the ballot, and a vote not yet open is read afresh (staff may still change it)."""
    u = make_union(db)
    draft = ready_vote(db, u)
    assert sheets.sheet(db, draft.id).title == draft.title
    assert sheets.kept(draft.id) is None
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    assert client.get("/v/ballot").status_code == 200
    kept = sheets.kept(vote.id)
    assert kept is not None and kept.title == vote.title and kept.keys == {"yes", "no"}
    assert closes_shown(client.get("/v/ballot").text) == closes_shown_for(vote.closes_at, u)
    later = (vote.closes_at or datetime.now(UTC)) + timedelta(days=2)
    votes.extend(db, u.org, vote, actor=u.admin, closes_at=later, reason="outage")
    db.flush()
    assert closes_shown(client.get("/v/ballot").text) == closes_shown_for(later, u)
    assert sheets.kept(vote.id) is kept


def closes_shown(page: str) -> str:
    found = re.search(r"Voting closes ([^<]+)\.</p>", page)
    assert found is not None, page
    return found.group(1)


def closes_shown_for(when: datetime | None, u: Union) -> str:
    from ratify.web.i18n import Formatter

    assert when is not None
    return Formatter("en").datetime(when, "long", u.org.timezone)


def test_a_cast_runs_its_three_writes_and_no_other_statement(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    """Rule 2, and the cast's speed: the conditional update, the ballot, the receipt; no
    read before them (the session cookie names the seat, the sheet is kept)."""
    from sqlalchemy import event

    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    token = csrf_from(client, "/v/ballot")
    statements: list[str] = []
    engine = db.get_bind().engine

    def seen(_conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        cast = client.post("/v/cast", data={"csrf_token": token, "choice": MARKS["yes"]})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert cast.status_code == 200
    # (The test client's requests run in savepoints of the test's transaction.)
    statements = [s.replace('"', "") for s in statements if "SAVEPOINT" not in s]
    if db.get_bind().dialect.name == "postgresql":
        # One statement, one round trip: the update, then both inserts from what it returned.
        assert len(statements) == 1, statements
        (one,) = statements
        assert one.startswith("WITH marked AS (UPDATE voters SET"), one
        assert [w for w in ("UPDATE", "INSERT", "DELETE") for _ in range(one.count(w + " "))] == [
            "UPDATE",
            "INSERT",
            "INSERT",
        ], one
        assert "INSERT INTO ballots" in one and "INSERT INTO receipts" in one
    else:
        verbs = [" ".join(s.split()[:3]) for s in statements]
        assert verbs == [
            "UPDATE voters SET",
            "INSERT INTO ballots",
            "INSERT INTO receipts",
        ], statements
    for box in (Ballot, Receipt):
        assert db.scalar(select(func.count()).select_from(box).where(box.vote_id == vote.id)) == 1


@needs_postgres
@pytest.mark.postgres_only
def test_a_members_pages_on_postgresql_run_one_statement_alone_in_autocommit(
    live_sessions: sessionmaker[Session], live_engine, live_settings, secret_ledger
) -> None:  # type: ignore[no-untyped-def]
    """As the app runs (sessions on the engine, not a test's transaction), the link, the
    ballot, the review and the cast each run one statement, alone on a connection in
    autocommit (no BEGIN or COMMIT round trip): the cast's statement is then its whole
    transaction. What must be one transaction of several statements still is: the second
    factor (locks, counts, writes) and a challenged voter's envelope (two writes)."""
    from sqlalchemy import event

    from ratify.app import create_app
    from ratify.db import make_sessionmaker
    from ratify.votes import voters as voter_lists
    from ratify.votes.models import Envelope
    from tests.conftest import make_client

    key = live_settings.secret_key
    with live_sessions.begin() as db:
        u = make_union(db)
        vote = open_vote(db, u, key, second_factor=SecondFactor.NONE)
        voter_lists.challenge(
            db, u.org, vote, actor=u.staff, member_number="9001", reason="not on the list",
            group="TECH", secret_key=key,
        )  # fmt: skip
        db.flush()
        links = {n: link_of(key, voter(db, vote, n)) for n in ("1001", "9001")}
        vote_id = vote.id
    with live_sessions() as db:
        sheets.sheet(db, vote_id)  # kept, as once the first member has opened the ballot
    seen: list[tuple[str, bool]] = []

    def record(conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        seen.append((" ".join(statement.split()), conn.connection.dbapi_connection.autocommit))

    def ran(response) -> tuple[object, list[tuple[str, bool]]]:  # type: ignore[no-untyped-def]
        statements = list(seen)
        seen.clear()
        return response, statements

    app = create_app(live_settings, sessions=make_sessionmaker(live_engine))
    event.listen(live_engine, "before_cursor_execute", record)
    try:
        with make_client(app, secret_ledger, follow_redirects=False) as member:
            link, on_link = ran(member.get(links["1001"]))
            token = _CSRF.search(link.text).group(1)  # type: ignore[attr-defined,union-attr]
            form = {"csrf_token": token, "answer": "", "lang": "en"}
            signed_in, on_sign_in = ran(member.post(links["1001"], data=form))
            ballot, on_ballot = ran(member.get("/v/ballot"))
            chosen = {"csrf_token": token, "choice": MARKS["yes"]}
            review, on_review = ran(member.post("/v/review", data=chosen))
            cast, on_cast = ran(member.post("/v/cast", data=chosen))
            again, on_again = ran(member.post("/v/cast", data={**chosen, "choice": MARKS["no"]}))
        with make_client(app, secret_ledger, follow_redirects=False) as challenged:
            assert sign_in(challenged, links["9001"], "").status_code == 303
            token = csrf_from(challenged, "/v/ballot")
            seen.clear()
            sealed, on_seal = ran(
                challenged.post("/v/cast", data={"csrf_token": token, "choice": MARKS["no"]})
            )
    finally:
        event.remove(live_engine, "before_cursor_execute", record)
    statuses = [r.status_code for r in (link, signed_in, ballot, review, cast, again, sealed)]  # type: ignore[attr-defined]
    assert statuses == [200, 303, 200, 200, 200, 409, 200]
    assert "Your vote was counted" in cast.text and "already voted" in again.text  # type: ignore[attr-defined]
    assert "Your vote is sealed" in sealed.text  # type: ignore[attr-defined]
    for statements in (on_link, on_ballot, on_review, on_cast):
        assert [alone for _, alone in statements] == [True], statements
    assert on_cast[0][0].startswith("WITH marked AS (UPDATE voters SET"), on_cast
    # The second factor: the lookup, the throttle's locks and counts, in one transaction.
    assert len(on_sign_in) >= 3 and not any(alone for _, alone in on_sign_in), on_sign_in
    # A refused cast wrote nothing, then read why: every statement alone.
    assert [alone for _, alone in on_again] == [True, True, True], on_again
    # The challenged voter's: the refused cast and its read alone, then the seal's two
    # writes in one transaction.
    assert [alone for _, alone in on_seal] == [True, True, False, False], on_seal
    writes = [sql.split()[:3] for sql, _ in on_seal[2:]]
    assert writes == [["UPDATE", "voters", "SET"], ["INSERT", "INTO", "envelopes"]], on_seal
    with live_sessions() as db:
        assert [(b.tally_group, b.choice) for b in db.scalars(select(Ballot))] == [("RN", "yes")]
        assert db.scalar(select(func.count()).select_from(Receipt)) == 1
        assert db.scalar(select(func.count()).where(Voter.has_voted)) == 2
        (envelope,) = db.scalars(select(Envelope).where(Envelope.vote_id == vote_id))
        assert envelope.sealed is not None


def test_receipt_codes_are_16_letters_of_the_receipt_alphabet_at_random() -> None:
    codes = [casting.new_receipt_code() for _ in range(20_000)]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == casting.RECEIPT_LENGTH for c in codes)
    letters = Counter("".join(codes))
    assert set(letters) == set(casting.RECEIPT_ALPHABET)  # no 0, O, 1 or I; every other one
    expected = len(codes) * casting.RECEIPT_LENGTH / len(casting.RECEIPT_ALPHABET)
    # Uniform: chi-squared over the 32 letters (31 degrees of freedom, mean 31) under 100,
    # which a fair alphabet passes but once in about a billion runs; one letter 10% off
    # the others (11,000 against 10,000 each) alone adds 100. (A bound of 10% on each
    # letter's count from 4,000 codes, 4.5 standard deviations, failed about once in
    # 2,000 runs.)
    chi_squared = sum((n - expected) ** 2 / expected for n in letters.values())
    assert chi_squared < 100, chi_squared
    assert casting.show_receipt(codes[0]).count("-") == 3


def test_a_counted_or_certified_votes_sheet_is_kept_too(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    made = {}
    for status in (VoteStatus.TALLIED, VoteStatus.CERTIFIED):
        vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
        made[vote.id] = vote.title
        db.execute(update(Vote).where(Vote.id == vote.id).values(status=status))
    db.flush()
    db.expunge_all()  # as a request starts: nothing of the votes loaded yet
    for vote_id, title in made.items():
        assert sheets.kept(vote_id) is None
        assert sheets.sheet(db, vote_id).title == title
        assert sheets.kept(vote_id) is not None


def test_member_pages_offer_the_votes_languages_not_the_sites_language_form(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    """The footer's site-language form would send a member from the review or the receipt
    (pages a POST answered) back to an address that takes only a POST: member pages leave
    it out (the link and ballot pages link to the vote's own languages instead)."""
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    link = link_of(settings.secret_key, voter(db, vote, "1001"))
    opened = client.get(link)
    assert opened.status_code == 200 and 'action="/language"' not in opened.text
    assert sign_in(client, link, "").status_code == 303
    token = csrf_from(client, "/v/ballot")
    form = {"csrf_token": token, "choice": MARKS["yes"]}
    for path in ("/v/review", "/v/cast"):
        page = client.post(path, data=form)
        assert page.status_code == 200, path
        assert 'action="/language"' not in page.text, path
    assert "receipt" in page.text
    # Where that form would have led: read as a (bad) voting link.
    assert client.get("/v/cast").status_code == 404


RECEIPT_SHOWN = re.compile(r'<p class="receipt"><code>([^<]+)</code>')


def test_the_receipt_page_is_made_once_a_language_and_shows_each_members_own_code(
    db: Session, client, app, settings
) -> None:  # type: ignore[no-untyped-def]
    """The receipt page, kept with the vote's sheet for each language, is byte for byte the
    page its template renders for a member's request, with that member's own code."""
    from starlette.requests import Request

    from ratify.votes.voting import member_page
    from ratify.web.routing import ViewContext

    u = make_union(db)
    title = 'Pay & "steps" <2027>'
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE, title=title)
    pages: dict[str, list[str]] = {"en": [], "es": []}
    for number, language in (("1001", "en"), ("1002", "en"), ("1003", "es")):
        link = link_of(settings.secret_key, voter(db, vote, number))
        client.cookies.clear()
        assert sign_in(client, link, "").status_code == 303
        token = csrf_from(client, "/v/ballot")
        form = {"csrf_token": token, "choice": MARKS["yes"], "lang": language}
        cast = client.post("/v/cast", data=form)
        assert cast.status_code == 200
        pages[language].append(cast.text)
    kept = sheets.kept(vote.id)
    assert kept is not None and set(kept.receipt_pages) == {"en", "es"}
    shown = [RECEIPT_SHOWN.search(p).group(1) for p in pages["en"] + pages["es"]]  # type: ignore[union-attr]
    stored = set(db.scalars(select(Receipt.code)))
    assert len(set(shown)) == 3 and {code.replace("-", "") for code in shown} == stored
    state = app.state.ratify
    for language, made in pages.items():
        for page_, code in zip(made, shown[:2] if language == "en" else shown[2:], strict=True):
            scope = {"type": "http", "method": "POST", "path": "/v/cast", "headers": [], "app": app}
            request = Request(scope)
            ctx = ViewContext(request, db, state, None, None, None, None, language, "c" * 43)
            rendered = member_page(ctx, "votes/voting/receipt.html", vote=kept, receipt=code)
            assert page_ == rendered.body.decode()
    assert '<html lang="es">' in pages["es"][0] and '<html lang="en">' in pages["en"][1]
    assert (
        "Pay &amp; &#34;steps&#34; &lt;2027&gt;" in pages["en"][0] and title not in pages["en"][0]
    )
