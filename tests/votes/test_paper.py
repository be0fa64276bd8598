"""Paper and in-person voting: the strike-off while the vote is open (one vote per member
across channels, under concurrency too) and the paper batches after the close (entered by
one committee member, counted once a second confirms)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts.models import StaffUser
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.errors import Conflict
from ratify.orgs.models import Organization
from ratify.votes import casting, paper, voters
from ratify.votes import services as votes
from ratify.votes.models import (
    Ballot,
    BatchStatus,
    Channel,
    Envelope,
    EnvelopeStatus,
    PaperBatch,
    Receipt,
    SecondFactor,
    Vote,
    Voter,
    VoterStatus,
    VoteStatus,
)
from tests.factories import make_user
from tests.helpers import csrf_from, login, run_together
from tests.votes.support import Union, make_union
from tests.votes.test_casting import (
    link_of,
    needs_postgres,
    open_vote,
    sign_in,
    vote_through_pages,
    voter,
)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _base(u: Union, vote: Vote) -> str:
    return f"/o/{u.org.slug}/votes/{vote.id}"


def _open(db: Session, settings, **changes: object) -> tuple[Union, Vote]:  # type: ignore[no-untyped-def]
    u = make_union(db)
    return u, open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE, **changes)


def _strike(client, u: Union, vote: Vote, number: str, channel: str = "paper"):  # type: ignore[no-untyped-def]
    path = _base(u, vote) + "/strike-off"
    token = csrf_from(client, path)
    return client.post(
        path, data={"csrf_token": token, "member_number": number, "channel": channel}
    )


def _member(client):  # type: ignore[no-untyped-def]
    """A second browser, for a member beside the signed-in worker."""
    member = client.__class__(client.app, base_url="http://testserver", follow_redirects=False)
    member.ledger = client.ledger
    return member


def _close(db: Session, u: Union, vote: Vote) -> Vote:
    now = datetime.now(UTC)
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(opens_at=now - timedelta(hours=2), closes_at=now - timedelta(minutes=1))
    )
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    votes.advance(db, u.org, vote)
    assert vote.status == VoteStatus.CLOSED
    db.flush()
    return vote


def _struck_off_events(db: Session) -> list[dict[str, object]]:
    return [
        e.data
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        if e.action == "voter.struck_off"
    ]


def _written(db: Session) -> tuple[int, int, int, int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(Voter).where(Voter.has_voted)) or 0,
        db.scalar(select(func.count()).select_from(Envelope)) or 0,
        db.scalar(select(func.count()).select_from(PaperBatch)) or 0,
        db.scalar(select(func.count()).select_from(Ballot)) or 0,
        len(_struck_off_events(db)),
    )


# -- strike-off -----------------------------------------------------------------------------------


def test_a_worker_finds_voters_by_number_or_name_with_their_state(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db, rn_members=12)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    path = _base(u, vote) + "/strike-off"
    login(client, u.staff.email)
    empty = client.get(path)
    assert empty.status_code == 200 and "voters-found" not in empty.text  # nothing listed
    by_number = client.get(path, params={"q": "1003"}).text
    assert "Last1003, First1003" in by_number and "1 found." in by_number
    assert "Not yet voted" in by_number and "Mark voted on paper" in by_number
    # The start of a name, paged ten at a time: 12 RN and 3 TECH members are called Last…
    first = client.get(path, params={"q": "last"}).text
    assert "15 found." in first and first.count('class="voter-name"') == 10
    assert "Page 1 of 2" in first and "?q=last&amp;page=2" in first
    second = client.get(path, params={"q": "last", "page": "2"}).text
    assert second.count('class="voter-name"') == 5 and "Last2003, First2003" in second
    # The fee payer is on the list, excluded by the rule: no buttons for them.
    excluded = client.get(path, params={"q": "9001"}).text
    assert "Excluded" in excluded and "Mark voted on paper" not in excluded
    nobody = client.get(path, params={"q": "Nobody"}).text
    assert "0 found." in nobody


def test_strike_off_spends_the_members_link_and_is_audited_with_number_and_channel(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    login(client, u.staff.email)
    done = _strike(client, u, vote, "1002", "paper")
    assert done.status_code == 303
    assert done.headers["location"].endswith("/strike-off?q=1002&marked=1002")
    shown = client.get(done.headers["location"]).text
    assert "Done: marked voted on paper." in shown and "Voted on paper" in shown
    assert "Mark voted on paper" not in shown
    db.expire_all()
    v = voter(db, vote, "1002")
    assert v.has_voted and v.channel == Channel.PAPER
    assert v.voted_hour is not None and v.voted_hour.minute == v.voted_hour.second == 0
    assert _struck_off_events(db) == [{"member_number": "1002", "channel": "paper"}]
    assert db.scalar(select(func.count()).select_from(Ballot)) == 0  # paper is counted later
    assert db.scalar(select(func.count()).select_from(Receipt)) == 0
    # The member's link now says they have voted.
    member = _member(client)
    assert sign_in(member, link_of(settings.secret_key, v), "").status_code == 303
    ballot = member.get("/v/ballot")
    assert ballot.status_code == 200 and "You have voted" in ballot.text
    assert 'name="choice"' not in ballot.text


def test_a_ballot_open_on_a_phone_cannot_be_cast_once_struck_off(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    member = _member(client)
    assert (
        sign_in(member, link_of(settings.secret_key, voter(db, vote, "1003")), "").status_code
        == 303
    )
    token = csrf_from(member, "/v/ballot")  # the ballot is on the member's screen
    login(client, u.staff.email)
    assert _strike(client, u, vote, "1003", "in_person").status_code == 303
    cast = member.post("/v/cast", data={"csrf_token": token, "choice": "01"})
    assert cast.status_code == 409 and "You have already voted" in cast.text
    db.expire_all()
    assert voter(db, vote, "1003").channel == Channel.IN_PERSON
    assert db.scalar(select(func.count()).select_from(Ballot)) == 0


def test_a_member_who_voted_online_cannot_be_struck_off(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    vote_through_pages(_member(client), link_of(settings.secret_key, voter(db, vote, "1001")), "")
    login(client, u.staff.email)
    refused = _strike(client, u, vote, "1001", "paper")
    assert refused.status_code == 409
    assert "Member 1001 has already voted online" in refused.text
    assert "Voted online" in refused.text and "Mark voted on paper" not in refused.text
    db.expire_all()
    assert voter(db, vote, "1001").channel == Channel.ONLINE
    assert _struck_off_events(db) == []


def test_a_voter_struck_off_once_is_refused_the_second_time(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    login(client, u.staff.email)
    assert _strike(client, u, vote, "1004", "in_person").status_code == 303
    again = _strike(client, u, vote, "1004", "paper")
    assert again.status_code == 409 and "already marked voted in person" in again.text
    db.expire_all()
    assert voter(db, vote, "1004").channel == Channel.IN_PERSON
    assert len(_struck_off_events(db)) == 1


def test_an_excluded_voter_or_a_stranger_cannot_be_struck_off(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    login(client, u.staff.email)
    before = _written(db)
    excluded = _strike(client, u, vote, "9001")  # the fee payer, excluded by the rule
    assert excluded.status_code == 409 and "Member 9001 is excluded" in excluded.text
    stranger = _strike(client, u, vote, "5555")
    assert stranger.status_code == 404 and "Nobody with this member number" in stranger.text
    assert _written(db) == before


def test_a_challenged_voter_struck_off_gets_a_sealed_envelope_for_the_committee(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    voters.challenge(
        db, u.org, vote, actor=u.staff, member_number="9001", reason="Says she joined in May",
        group="RN", secret_key=settings.secret_key,
    )  # fmt: skip
    db.flush()
    login(client, u.staff.email)
    page = client.get(_base(u, vote) + "/strike-off", params={"q": "9001"}).text
    assert "Challenged: a paper ballot goes in a sealed envelope" in page
    assert _strike(client, u, vote, "9001", "paper").status_code == 303
    db.expire_all()
    v = voter(db, vote, "9001")
    assert v.has_voted and v.channel == Channel.PAPER and v.status == VoterStatus.CHALLENGED
    envelope = db.scalars(select(Envelope)).one()
    assert (envelope.voter_id, envelope.vote_id, envelope.channel) == (v.id, vote.id, Channel.PAPER)
    assert envelope.sealed is None and envelope.status == EnvelopeStatus.SEALED
    assert _struck_off_events(db) == [{"member_number": "9001", "channel": "paper"}]
    # An eligible voter struck off gets no envelope.
    assert _strike(client, u, vote, "1001", "in_person").status_code == 303
    assert db.scalar(select(func.count()).select_from(Envelope)) == 1


def test_no_strike_off_once_the_vote_has_closed(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    login(client, u.staff.email)
    token = csrf_from(client, _base(u, vote) + "/strike-off")
    vote = _close(db, u, vote)
    before = _written(db)
    refused = client.post(
        _base(u, vote) + "/strike-off",
        data={"csrf_token": token, "member_number": "1001", "channel": "paper"},
    )
    assert refused.status_code == 409
    assert "only while the vote is open" in refused.text
    assert (
        "Mark voted on paper"
        not in client.get(_base(u, vote) + "/strike-off", params={"q": "1001"}).text
    )
    assert _written(db) == before


def test_forged_strike_off_forms_are_refused_and_write_nothing(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    path = _base(u, vote) + "/strike-off"
    login(client, u.staff.email)
    token = csrf_from(client, path)
    before = _written(db)
    forged = [
        {"member_number": "1001", "channel": "paper"},  # no CSRF token
        {"csrf_token": "x" * 40, "member_number": "1001", "channel": "paper"},
        {"csrf_token": token, "member_number": "1001", "channel": "online"},
        {"csrf_token": token, "member_number": "1001", "channel": "by-pigeon"},
        {"csrf_token": token, "member_number": "1001"},
        {"csrf_token": token, "member_number": "", "channel": "paper"},
        {"csrf_token": token, "member_number": "1001%", "channel": "paper"},
    ]
    statuses = [client.post(path, data=data).status_code for data in forged]
    assert statuses == [403, 403, 400, 400, 400, 404, 404]
    assert client.get(path).status_code == 200  # still usable
    assert _written(db) == before


def test_only_staff_strike_off_and_only_in_their_own_organization(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    other = make_union(db)
    path = _base(u, vote) + "/strike-off"
    observer = make_user(db, u.org, Role.OBSERVER)
    for user, status in ((observer, 403), (u.committee[0], 403), (other.staff, 404)):
        client.cookies.clear()
        login(client, user.email)
        assert client.get(path).status_code == status, user.email
    # Another organization's vote under one's own organization's address: not found.
    assert client.get(f"/o/{other.org.slug}/votes/{vote.id}/strike-off").status_code == 404
    client.cookies.clear()
    login(client, u.admin.email)
    assert client.get(path).status_code == 200


def test_the_vote_page_links_to_strike_off_while_open_and_to_paper_ballots_after(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    base = _base(u, vote)
    login(client, u.staff.email)
    assert f'href="{base}/strike-off"' in client.get(base).text
    vote = _close(db, u, vote)
    assert f'href="{base}/paper"' not in client.get(base).text  # staff count no ballots
    client.cookies.clear()
    login(client, u.committee[0].email)
    page = client.get(base).text
    assert f'href="{base}/paper"' in page and f'href="{base}/strike-off"' not in page


@needs_postgres
@pytest.mark.postgres_only
def test_a_strike_off_and_an_online_cast_at_once_give_one_vote(
    live_sessions: sessionmaker[Session], settings
) -> None:  # type: ignore[no-untyped-def]
    count = 60
    with live_sessions.begin() as db:
        u = make_union(db, rn_members=count, tech_members=0)
        vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
        ids = {
            v.member_number: v.id
            for v in db.scalars(
                select(Voter).where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
            )
        }
        org_id, vote_id, staff_id = u.org.id, vote.id, u.staff.id
    numbers = sorted(ids)

    def attempt(n: int) -> str:
        number = numbers[n // 2]
        with live_sessions.begin() as db:
            try:
                if n % 2:
                    casting.cast(db, casting.Seat(ids[number], 1, vote_id), "yes")
                    return "online"
                org = db.get_one(Organization, org_id)
                paper.strike_off(
                    db, org, votes.get_vote(db, org, vote_id),
                    actor=db.get_one(StaffUser, staff_id), member_number=number,
                    channel=Channel.PAPER,
                )  # fmt: skip
                return "paper"
            except Conflict as exc:  # the cast's AlreadyVoted, or the strike-off's refusal
                return exc.message % exc.params

    results = run_together(attempt, 2 * count, timeout=120)
    assert not [r for r in results if isinstance(r, BaseException)], results
    refusals = {
        "paper": casting.AlreadyVoted.default_message,
        "online": "has already voted online: they cannot vote again on paper or in person.",
    }
    for struck, cast in (results[2 * i : 2 * i + 2] for i in range(count)):
        assert "paper" in (struck, cast) or "online" in (struck, cast), (struck, cast)
        winner, refusal = (struck, cast) if struck == "paper" else (cast, struck)
        assert isinstance(refusal, str) and refusals[str(winner)] in refusal, (struck, cast)
    online = results.count("online")
    with live_sessions() as db:
        assert db.scalar(select(func.count()).select_from(Ballot)) == online
        assert db.scalar(select(func.count()).select_from(Receipt)) == online
        channels = dict(
            db.execute(
                select(Voter.channel, func.count())
                .where(Voter.vote_id == vote_id, Voter.has_voted)
                .group_by(Voter.channel)
            ).all()
        )
        assert channels == {
            **({Channel.ONLINE: online} if online else {}),
            **({Channel.PAPER: count - online} if online < count else {}),
        }
        assert len(_struck_off_events(db)) == count - online


# -- paper batches --------------------------------------------------------------------------------


def _closed_with_paper(db: Session, client, settings, **changes: object):  # type: ignore[no-untyped-def]
    """RN: 1001 and 1003 on paper, 1002 in person, 1004 online; TECH: 2001 on paper. Closed."""
    u, vote = _open(db, settings, **changes)
    vote_through_pages(_member(client), link_of(settings.secret_key, voter(db, vote, "1004")), "")
    login(client, u.staff.email)
    for number, channel in (("1001", "paper"), ("1002", "in_person"), ("1003", "paper")):
        assert _strike(client, u, vote, number, channel).status_code == 303
    assert _strike(client, u, vote, "2001", "paper").status_code == 303
    client.cookies.clear()
    return u, _close(db, u, vote)


def _enter(
    client, u: Union, vote: Vote, group: str = "RN", label: str = "Site 4 box", **counts: str
):  # type: ignore[no-untyped-def]
    path = _base(u, vote) + "/paper"
    token = csrf_from(client, path)
    data = {"csrf_token": token, "group": group, "label": label}
    data.update({f"count_{key}": value for key, value in counts.items()})
    return client.post(path + "/batches", data=data)


def _batch_post(client, u: Union, vote: Vote, batch: PaperBatch, action: str):  # type: ignore[no-untyped-def]
    path = _base(u, vote) + "/paper"
    token = csrf_from(client, path)
    return client.post(f"{path}/batches/{batch.id}/{action}", data={"csrf_token": token})


def _batches(db: Session) -> list[PaperBatch]:
    db.expire_all()
    return list(db.scalars(select(PaperBatch).order_by(PaperBatch.entered_at)))


def test_paper_batches_are_refused_before_the_close(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    login(client, u.committee[0].email)
    path = _base(u, vote) + "/paper"
    page = client.get(path)
    assert page.status_code == 409 and "only after the vote closes" in page.text
    token = csrf_from(client, _base(u, vote))
    entered = client.post(
        path + "/batches",
        data={"csrf_token": token, "group": "RN", "label": "x", "count_yes": "1", "count_no": "0"},
    )
    assert entered.status_code == 409
    assert _batches(db) == []


def test_a_batch_counts_once_a_second_committee_member_confirms_it(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    first, second = u.committee
    login(client, first.email)
    page = client.get(_base(u, vote) + "/paper").text
    assert "Struck off on paper or in person: 3 · in batches: 0 · not yet in a batch: 3" in page
    assert "Struck off on paper or in person: 1 · in batches: 0 · not yet in a batch: 1" in page
    entered = _enter(client, u, vote, yes="2", no="1")
    assert entered.status_code == 303
    (batch,) = _batches(db)
    assert (batch.tally_group, batch.label, batch.counts) == (
        "RN",
        "Site 4 box",
        {"yes": 2, "no": 1},
    )
    assert batch.status == BatchStatus.ENTERED and batch.entered_by_id == first.id
    page = client.get(_base(u, vote) + "/paper").text
    assert "Entered, waiting for a second committee member" in page
    assert "Confirm this batch" not in page and "Withdraw this batch" in page
    # The member who entered it cannot confirm it.
    own = _batch_post(client, u, vote, batch, "confirm")
    assert own.status_code == 403 and "a second committee member has to confirm it" in own.text
    assert _batches(db)[0].status == BatchStatus.ENTERED
    client.cookies.clear()
    login(client, second.email)
    page = client.get(_base(u, vote) + "/paper").text
    assert "Confirm this batch" in page and "Withdraw this batch" not in page
    assert _batch_post(client, u, vote, batch, "confirm").status_code == 303
    (batch,) = _batches(db)
    assert batch.status == BatchStatus.CONFIRMED and batch.confirmed_by_id == second.id
    assert batch.confirmed_at is not None
    assert "Confirmed: counted" in client.get(_base(u, vote) + "/paper").text
    again = _batch_post(client, u, vote, batch, "confirm")
    assert again.status_code == 409 and "already confirmed" in again.text
    events = [
        (e.action, e.actor_id, e.data)
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        if e.action.startswith("paper_batch.")
    ]
    data = {
        "batch": str(batch.id),
        "group": "RN",
        "label": "Site 4 box",
        "counts": {"yes": 2, "no": 1},
    }
    assert events == [
        ("paper_batch.entered", first.id, data),
        ("paper_batch.confirmed", second.id, data),
    ]
    groups = {g.group: g for g in paper.paper_groups(db, vote)}
    assert groups["RN"].counted == {"yes": 2, "no": 1} and groups["TECH"].counted == {}


def test_batch_counts_are_checked_against_the_voters_struck_off(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    login(client, u.committee[0].email)
    too_many = _enter(client, u, vote, yes="3", no="1")
    assert too_many.status_code == 400
    assert (
        "This batch holds 4 ballots, but only 3 voters struck off on paper or in person in RN "
        "are not yet in a batch."
    ) in too_many.text
    assert 'value="Site 4 box"' in too_many.text  # what was typed is kept
    refused = {
        "negative": _enter(client, u, vote, yes="-1", no="1"),
        "not a number": _enter(client, u, vote, yes="two", no="1"),
        "a fraction": _enter(client, u, vote, yes="1.5", no="0"),
        "missing": _enter(client, u, vote, yes="1"),
        "unknown option": _enter(client, u, vote, yes="1", no="0", maybe="1"),
        "unknown group": _enter(client, u, vote, group="NOPE", yes="1", no="0"),
        "the aggregate": _enter(client, u, vote, group="all", yes="1", no="0"),
        "no label": _enter(client, u, vote, label=" ", yes="1", no="0"),
        "empty": _enter(client, u, vote, yes="0", no="0"),
        "TECH's one voter": _enter(client, u, vote, group="TECH", yes="1", no="1"),
    }
    assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 400)
    assert "Enter a whole number of ballots, 0 or more." in refused["negative"].text
    assert "Count only the options on this vote&#39;s ballot." in refused["unknown option"].text
    assert _batches(db) == []
    # Batches already entered count against the limit; withdrawn ones do not.
    assert _enter(client, u, vote, yes="1", no="1").status_code == 303
    over = _enter(client, u, vote, label="Site 5 box", yes="2", no="0")
    assert over.status_code == 400 and "only 1 voters" in over.text
    assert _batch_post(client, u, vote, _batches(db)[0], "withdraw").status_code == 303
    assert _enter(client, u, vote, label="Site 5 box", yes="2", no="1").status_code == 303
    assert _enter(client, u, vote, group="TECH", label="Mail", yes="0", no="1").status_code == 303
    assert [(b.label, b.status) for b in _batches(db)] == [
        ("Site 4 box", BatchStatus.WITHDRAWN),
        ("Site 5 box", BatchStatus.ENTERED),
        ("Mail", BatchStatus.ENTERED),
    ]


def test_a_duplicated_count_field_is_refused(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    login(client, u.committee[0].email)
    path = _base(u, vote) + "/paper"
    token = csrf_from(client, path)
    body = f"csrf_token={token}&group=RN&label=Box&count_yes=1&count_yes=2&count_no=0"
    sent = client.post(
        path + "/batches",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert sent.status_code == 400
    assert _batches(db) == []


def test_only_the_member_who_entered_a_batch_withdraws_it_and_only_before_confirmation(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    first, second = u.committee
    login(client, first.email)
    assert _enter(client, u, vote, yes="1", no="0").status_code == 303
    assert _enter(client, u, vote, label="Site 5 box", yes="1", no="0").status_code == 303
    one, two = _batches(db)
    client.cookies.clear()
    login(client, second.email)
    theirs = _batch_post(client, u, vote, one, "withdraw")
    assert theirs.status_code == 403 and "Only the committee member who entered" in theirs.text
    assert _batch_post(client, u, vote, two, "confirm").status_code == 303
    client.cookies.clear()
    login(client, first.email)
    confirmed = _batch_post(client, u, vote, two, "withdraw")
    assert confirmed.status_code == 409 and "already confirmed" in confirmed.text
    assert _batch_post(client, u, vote, one, "withdraw").status_code == 303
    client.cookies.clear()
    login(client, second.email)
    withdrawn = _batch_post(client, u, vote, one, "confirm")
    assert withdrawn.status_code == 409 and "This batch was withdrawn." in withdrawn.text
    assert [b.status for b in _batches(db)] == [BatchStatus.WITHDRAWN, BatchStatus.CONFIRMED]
    assert [
        e.action
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        if e.action.startswith("paper_batch.")
    ] == [
        "paper_batch.entered",
        "paper_batch.entered",
        "paper_batch.confirmed",
        "paper_batch.withdrawn",
    ]


def test_paper_entry_closes_once_the_vote_is_tallied(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    first, second = u.committee
    login(client, first.email)
    assert _enter(client, u, vote, yes="1", no="0").status_code == 303
    (batch,) = _batches(db)
    token = csrf_from(client, _base(u, vote) + "/paper")
    db.execute(update(Vote).where(Vote.id == vote.id).values(status=VoteStatus.TALLIED))
    db.flush()
    page = client.get(_base(u, vote) + "/paper")
    assert page.status_code == 200 and "can no longer change" in page.text
    assert "Enter the batch" not in page.text and "Withdraw this batch" not in page.text
    path = _base(u, vote) + "/paper/batches"
    form = {"csrf_token": token, "group": "RN", "label": "x", "count_yes": "1", "count_no": "0"}
    late = client.post(path, data=form)
    assert late.status_code == 409
    assert client.post(f"{path}/{batch.id}/withdraw", data={"csrf_token": token}).status_code == 409
    client.cookies.clear()
    login(client, second.email)
    assert (
        client.post(
            f"{path}/{batch.id}/confirm",
            data={"csrf_token": csrf_from(client, _base(u, vote) + "/paper")},
        ).status_code
        == 409
    )
    assert [b.status for b in _batches(db)] == [BatchStatus.ENTERED]


def test_a_blank_count_where_the_vote_allows_blank_ballots(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    db.execute(update(Vote).where(Vote.id == vote.id).values(allow_blank=True))
    db.flush()
    login(client, u.committee[0].email)
    assert 'name="count_blank"' in client.get(_base(u, vote) + "/paper").text
    assert _enter(client, u, vote, yes="1", no="0").status_code == 400  # blank is asked for
    assert _enter(client, u, vote, yes="1", no="0", blank="2").status_code == 303
    assert _batches(db)[0].counts == {"yes": 1, "no": 0, "blank": 2}


def test_a_challenged_paper_ballot_counts_toward_the_limit_once_accepted(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _open(db, settings)
    voters.challenge(
        db, u.org, vote, actor=u.staff, member_number="9001", reason="Says she joined in May",
        group="RN", secret_key=settings.secret_key,
    )  # fmt: skip
    db.flush()
    login(client, u.staff.email)
    assert _strike(client, u, vote, "9001", "paper").status_code == 303
    assert _strike(client, u, vote, "1001", "paper").status_code == 303
    client.cookies.clear()
    vote = _close(db, u, vote)
    login(client, u.committee[0].email)
    page = client.get(_base(u, vote) + "/paper").text
    assert "Struck off on paper or in person: 1 · in batches: 0 · not yet in a batch: 1" in page
    assert "Sealed envelopes waiting for the committee's decision: 1." in page
    assert _enter(client, u, vote, yes="2", no="0").status_code == 400
    # The committee accepts the envelope (issue 6's decisions; written here directly).
    db.execute(update(Envelope).values(status=EnvelopeStatus.ACCEPTED))
    db.flush()
    assert _enter(client, u, vote, yes="2", no="0").status_code == 303


def test_paper_pages_are_the_committees_in_their_own_organization(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = _closed_with_paper(db, client, settings)
    other = make_union(db)
    path = _base(u, vote) + "/paper"
    observer = make_user(db, u.org, Role.OBSERVER)
    for user, status in (
        (observer, 403),
        (u.staff, 403),
        (other.committee[0], 404),
        (u.committee[0], 200),
        (u.admin, 200),
    ):
        client.cookies.clear()
        login(client, user.email)
        assert client.get(path).status_code == status, user.email
    client.cookies.clear()
    login(client, other.committee[0].email)
    token = csrf_from(client, f"/o/{other.org.slug}/")
    foreign = client.post(
        f"/o/{other.org.slug}/votes/{vote.id}/paper/batches",
        data={"csrf_token": token, "group": "RN", "label": "x", "count_yes": "1", "count_no": "0"},
    )
    assert foreign.status_code == 404
    client.cookies.clear()
    login(client, observer.email)
    token = csrf_from(client, f"/o/{u.org.slug}/")
    assert (
        client.post(
            path + "/batches",
            data={
                "csrf_token": token,
                "group": "RN",
                "label": "x",
                "count_yes": "1",
                "count_no": "0",
            },
        ).status_code
        == 403
    )
    assert _batches(db) == []
    # An unknown batch id is simply not found.
    client.cookies.clear()
    login(client, u.committee[0].email)
    token = csrf_from(client, path)
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        client.post(f"{path}/batches/{missing}/confirm", data={"csrf_token": token}).status_code
        == 404
    )
    assert (
        client.post(f"{path}/batches/nonsense/withdraw", data={"csrf_token": token}).status_code
        == 404
    )
