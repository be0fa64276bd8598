"""The frozen voter list: evaluated once at scheduling, second factors kept as keyed hashes,
voters lacking data, exclusions and challenges by hand, the fingerprint, small groups and
the committee's review."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.errors import BadRequest, Conflict
from ratify.orgs.models import Organization
from ratify.rosters import services as rosters
from ratify.rosters.models import EmploymentStatus, MembershipStatus
from ratify.rosters.services import MemberFields
from ratify.votes import factors, voters
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor, TallyGrouping, Vote, Voter, VoterStatus, VoteStatus
from tests.factories import make_user
from tests.helpers import csrf_from, login
from tests.votes.support import make_union, ready_vote

SECRET = "s" * 40


def _voters(db: Session, vote: Vote) -> dict[str, Voter]:
    return {v.member_number: v for v in db.scalars(select(Voter).where(Voter.vote_id == vote.id))}


def _open(db: Session, vote: Vote) -> None:
    now = datetime.now(UTC)
    db.execute(
        update(Vote)
        .where(Vote.id == vote.id)
        .values(opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(hours=1))
    )
    db.expire_all()
    fresh = db.get_one(Vote, vote.id)
    votes.advance(db, db.get_one(Organization, fresh.organization_id), fresh)
    assert fresh.status == VoteStatus.OPEN


def test_scheduling_freezes_everyone_the_rule_considered(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    found = _voters(db, vote)
    assert len(found) == 10  # 6 RN + 3 TECH + the fee payer
    assert found["1001"].status == VoterStatus.ELIGIBLE and found["1001"].tally_group == "RN"
    assert found["2001"].tally_group == "TECH"
    assert found["9001"].status == VoterStatus.EXCLUDED and found["9001"].reason == "fee_payer"
    for voter in found.values():
        assert voter.credential_issue == 1 and voter.has_voted is False
        assert voter.voted_hour is None and voter.channel is None
    # The roster changing later does not move the frozen list.
    rosters.add_member(
        db, u.org, MemberFields("1999", "Late", "Joiner"), phone_region="US",
        effective=date(2025, 1, 1), membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE, units=[u.rn],
    )  # fmt: skip
    assert "1999" not in _voters(db, vote)


def test_the_second_factor_is_kept_only_as_a_keyed_hash(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, second_factor=SecondFactor.BIRTH_YEAR)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    found = _voters(db, vote)
    a, b = found["1001"], found["2001"]  # both born in 1981
    assert a.factor == SecondFactor.BIRTH_YEAR and a.factor_check is not None
    # The keyed hash of this voter's answer, not the year (a hex digest holds "1981" about
    # once in a thousand lists, so the year is looked for as the whole value).
    assert a.factor_check == factors.check_value(SECRET, a.id, "1981") != "1981"
    assert a.factor_check != b.factor_check
    assert factors.matches(SECRET, a.id, a.factor_check, " 1981 ", SecondFactor.BIRTH_YEAR)
    assert not factors.matches(SECRET, a.id, a.factor_check, "1982", SecondFactor.BIRTH_YEAR)
    assert not factors.matches("t" * 40, a.id, a.factor_check, "1981", SecondFactor.BIRTH_YEAR)
    assert found["9001"].factor_check is None  # excluded: nothing to check


def test_the_list_wide_checker_hashes_as_the_single_check_does() -> None:
    voter_id = uuid.uuid4()
    assert factors.checker(SECRET)(voter_id, "1981") == factors.check_value(
        SECRET, voter_id, "1981"
    )


def test_postal_codes_and_member_numbers_are_normalized() -> None:
    assert factors.normalize(SecondFactor.POSTAL_CODE, "94110-1234") == "94110"
    assert factors.normalize(SecondFactor.POSTAL_CODE, "sw1a 1aa") == "SW1A1AA"
    assert factors.normalize(SecondFactor.MEMBER_LAST4, "ab-10234") == "0234"
    assert factors.normalize(SecondFactor.MEMBER_LAST4, "12") == ""
    assert factors.normalize(SecondFactor.BIRTH_YEAR, "81") == ""


def test_voters_lacking_data_are_counted_listed_and_given_another_factor(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = ready_vote(db, u, second_factor=SecondFactor.POSTAL_CODE)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    assert voters.summarize(db, vote).missing_factor == 1  # member 1006 has no postal code
    assert _voters(db, vote)["1006"].factor is None
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    text = client.get(page).text
    assert "1 voters have no Postal code on the roster." in text and "#1006" in text
    token = csrf_from(client, page)
    # Birth year: 1006 lacks it too, so nothing changes and it is still counted.
    response = client.post(
        page + "/second-factor", data={"csrf_token": token, "factor": "birth_year"}
    )
    assert response.status_code == 303
    assert voters.summarize(db, vote).missing_factor == 1
    # Last 4 of the member number: everyone has one.
    client.post(page + "/second-factor", data={"csrf_token": token, "factor": "member_last4"})
    db.expire_all()
    voter = _voters(db, vote)["1006"]
    assert voter.factor == SecondFactor.MEMBER_LAST4
    assert voter.factor_check is not None
    # Hashed under the app's own secret key, which the pages use.
    key = settings.secret_key
    assert factors.matches(key, voter.id, voter.factor_check, "1006", SecondFactor.MEMBER_LAST4)
    assert _voters(db, vote)["1001"].factor == SecondFactor.POSTAL_CODE  # the others keep it
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "vote.second_factor_fallback")
    ).all()
    assert [(e.data["changed"], e.data["still_missing"]) for e in events] == [(0, 1), (1, 0)]
    bad = client.post(page + "/second-factor", data={"csrf_token": token, "factor": "retina"})
    assert bad.status_code == 400 and "Choose the second factor." in bad.text


def test_observers_see_how_many_lack_a_factor_but_not_who(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, second_factor=SecondFactor.POSTAL_CODE)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    login(client, make_user(db, u.org, Role.OBSERVER).email)
    text = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "1 voters have no Postal code on the roster." in text
    # As a word: random tokens on the page (CSRF) may hold the digits 1006.
    assert not re.search(r"\b1006\b", text) and "Last1006" not in text


def test_voters_still_lacking_a_factor_at_opening_have_none_and_are_counted(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, second_factor=SecondFactor.BIRTH_YEAR)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    voters.use_fallback_factor(db, u.org, vote, actor=u.staff, factor=SecondFactor.POSTAL_CODE,
                               secret_key=SECRET)  # fmt: skip
    _open(db, vote)
    assert _voters(db, vote)["1006"].factor == SecondFactor.NONE
    opened = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.opened")).one()
    assert opened.data["defaulted_to_none"] == 1 and opened.data["no_second_factor"] == 1
    assert opened.data["eligible"] == 9
    with pytest.raises(Conflict):
        voters.use_fallback_factor(db, u.org, vote, actor=u.staff, factor=SecondFactor.NONE,
                                   secret_key=SECRET)  # fmt: skip


def test_the_postal_code_is_no_fallback_when_letters_are_mailed(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, second_factor=SecondFactor.BIRTH_YEAR, mail_letters=True)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    with pytest.raises(BadRequest):
        voters.use_fallback_factor(db, u.org, vote, actor=u.staff, factor=SecondFactor.POSTAL_CODE,
                                   secret_key=SECRET)  # fmt: skip


def test_the_fingerprint_is_the_sha256_of_sorted_numbers_and_groups(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    lines = [f"{n}\tRN\n" for n in range(1001, 1007)] + [f"{n}\tTECH\n" for n in range(2001, 2004)]
    expected = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    assert vote.voter_fingerprint == expected


def test_staff_exclude_a_voter_with_a_reason_until_opening(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    before = vote.voter_fingerprint
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    token = csrf_from(client, page)
    no_reason = client.post(
        page + "/voters/exclude", data={"csrf_token": token, "member_number": "1002", "reason": ""}
    )
    assert no_reason.status_code == 400 and "Give the reason." in no_reason.text
    unknown = client.post(
        page + "/voters/exclude", data={"csrf_token": token, "member_number": "777", "reason": "x"}
    )
    assert (
        unknown.status_code == 400
        and "No voter on this list has that member number." in unknown.text
    )
    data = {"csrf_token": token, "member_number": "1002", "reason": "Promoted to supervisor"}
    done = client.post(page + "/voters/exclude", data=data)
    assert done.status_code == 303
    db.expire_all()
    voter = _voters(db, vote)["1002"]
    assert voter.status == VoterStatus.EXCLUDED and voter.reason == "Promoted to supervisor"
    vote = votes.get_vote(db, u.org, vote.id)
    assert vote.voter_fingerprint != before
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "voter.excluded")).one()
    assert event.member_id == voter.member_id and event.data["reason"] == "Promoted to supervisor"
    _open(db, vote)
    with pytest.raises(Conflict):
        voters.exclude(db, u.org, vote, actor=u.staff, member_number="1003", reason="late")


def test_a_challenged_voter_is_added_before_or_during_the_vote(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    token = csrf_from(client, page)

    def challenge(number: str, group: str = "RN"):  # type: ignore[no-untyped-def]
        data = {
            "csrf_token": token,
            "member_number": number,
            "reason": "Says she was hired in October",
            "group": group,
        }
        return client.post(page + "/voters/challenge", data=data)

    assert "already on the list" in challenge("1001").text
    assert "No member has these member numbers: 4242" in challenge("4242").text
    assert "Choose the bargaining unit" in challenge("9001", "NOPE").text
    assert challenge("9001").status_code == 303  # excluded by the rule: now challenged
    db.expire_all()
    voter = _voters(db, vote)["9001"]
    assert voter.status == VoterStatus.CHALLENGED and voter.tally_group == "RN"
    assert voter.factor is None  # the fee payer's roster row has no birth year
    _open(db, vote)
    rosters.add_member(
        db, u.org, MemberFields("3001", "New", "Hire", birth_date=date(1990, 1, 2)),
        phone_region="US", effective=date(2026, 12, 1), membership=MembershipStatus.MEMBER,
        employment=EmploymentStatus.ACTIVE, units=[],
    )  # fmt: skip
    assert challenge("3001", "TECH").status_code == 303
    db.expire_all()
    late = _voters(db, vote)["3001"]
    assert late.status == VoterStatus.CHALLENGED and late.factor == SecondFactor.BIRTH_YEAR
    assert voters.summarize(db, vote).challenged == 2
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "voter.challenged")).all()
    assert len(events) == 2 and all(e.member_id for e in events)


def test_small_groups_are_warned_about_before_opening(db: Session, client) -> None:
    u = make_union(db)  # TECH has 3 voters
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    assert voters.summarize(db, vote).small_groups == {"TECH": 3}
    login(client, u.staff.email)
    text = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "Warning: fewer than 5 voters in TECH." in text
    together = ready_vote(db, u, tally_grouping=TallyGrouping.AGGREGATE)
    votes.schedule(db, u.org, together, actor=u.staff, secret_key=SECRET)
    assert voters.summarize(db, together).groups == {"all": 9}
    assert "Warning: fewer than" not in client.get(f"/o/{u.org.slug}/votes/{together.id}").text


def test_the_committee_reviews_the_list_paged_and_searchable(db: Session, client) -> None:
    u = make_union(db, rn_members=60)
    vote = ready_vote(db, u)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    login(client, u.committee[0].email)
    base = f"/o/{u.org.slug}/votes/{vote.id}/voters"
    first = client.get(base)
    assert first.status_code == 200
    assert "64 found." in first.text and "Page 1 of 2" in first.text
    assert vote.voter_fingerprint is not None and vote.voter_fingerprint in first.text
    assert "1001" in first.text and not re.search(r"\b2003\b", first.text)
    second = client.get(base + "?page=2")
    assert "2003" in second.text and "Fee payer" in second.text
    assert "1 found." in client.get(base + "?q=2002").text
    assert "1 found." in client.get(base + "?q=last1007").text
    assert "1 found." in client.get(base + "?status=excluded").text
    assert "0 found." in client.get(base + "?q=%25").text  # a wildcard is only a character
    assert client.get(base + "?page=abc&status=nonsense").status_code == 200
    client.cookies.clear()
    login(client, make_user(db, u.org, Role.STAFF).email)
    assert client.get(base).status_code == 403  # reviewing the list is the committee's


def test_a_draft_has_no_voter_list(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.committee[0].email)
    assert client.get(f"/o/{u.org.slug}/votes/{vote.id}/voters").status_code == 404
    assert vote.status == VoteStatus.DRAFT


def test_every_voter_lacking_a_factor_can_be_found(db: Session, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ratify.rosters.models import Member
    from ratify.votes import views

    u = make_union(db, rn_members=60)
    db.execute(update(Member).where(Member.organization_id == u.org.id).values(postal_code=""))
    vote = ready_vote(db, u, second_factor=SecondFactor.POSTAL_CODE)
    votes.schedule(db, u.org, vote, actor=u.staff, secret_key=SECRET)
    monkeypatch.setattr(views, "MISSING_SHOWN", 10)
    login(client, u.admin.email)
    page = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "63 voters have no Postal code on the roster." in page and "and 53 more" in page
    assert f"/o/{u.org.slug}/votes/{vote.id}/voters?missing=1" in page
    listed = client.get(f"/o/{u.org.slug}/votes/{vote.id}/voters?missing=1").text
    assert "63 found." in listed and "missing=1&amp;page=2" in listed
    second = client.get(f"/o/{u.org.slug}/votes/{vote.id}/voters?missing=1&page=2").text
    assert "Page 2 of 2" in second and "Fee payer" not in second  # still only those lacking
