"""What a review of the community slice found, each guarded: a second sign-up by a known
phone waits for a leader, merges keep people in, member ids stay pseudonymized for
observers, a decision vote freezes the criteria it applied (and its record verifies),
withdrawn offers and future cutoffs are refused, an event later on the cutoff day is not
counted as missed, check-in opens on the event's day, and shared phones are flagged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit import services as audit
from ratify.audit.models import AuditEvent
from ratify.community import campaigns, events, people
from ratify.community import constituencies as cons
from ratify.community.decision import create_decision_vote
from ratify.community.models import (
    EventKind,
    OfferStatus,
    PersonStatus,
)
from ratify.errors import BadRequest, Conflict
from ratify.rosters.models import Member
from ratify.security import password_hasher
from ratify.votes import casting, certify, record, results, verify, voters
from ratify.votes import services as votes
from ratify.votes.models import Voter, VoterStatus
from tests.community.support import make_community, make_constituency, make_leader
from tests.community.test_decision_vote import make_community_offer, open_decision_vote
from tests.factories import PASSWORD
from tests.helpers import login
from tests.votes.test_published import _close

TODAY = date(2026, 11, 1)


def _fields(first: str, **values: object) -> people.PersonFields:
    base = people.PersonFields(first_name=first, last_name="Resident", phone="+14155550177",
                               area="12 Elm St", relationship="tenant", consent=True)  # fmt: skip
    return replace(base, **values)  # type: ignore[arg-type]


def test_a_second_sign_up_with_a_known_phone_waits_for_a_leader(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org, approval_required=False)
    first = people.sign_up(db, org, c, _fields("Ana"), today=TODAY)
    assert first.status == PersonStatus.APPROVED
    again = people.sign_up(db, org, c, _fields("Anna"), today=TODAY)
    assert again.status == PersonStatus.PENDING and again.approved_on is None
    by_email = people.sign_up(db, org, c, _fields("Bo", phone="", email="bo@example.org"),
                              today=TODAY)  # fmt: skip
    assert by_email.status == PersonStatus.APPROVED
    twice = people.sign_up(db, org, c, _fields("Bob", phone="", email="BO@example.org"),
                           today=TODAY)  # fmt: skip
    assert twice.status == PersonStatus.PENDING
    assert cons.evaluate(db, org, c, TODAY).included == 2


def test_a_free_text_relationship_longer_than_its_column_is_refused(db: Session) -> None:
    org = make_community(db)
    c = make_constituency(db, org, relationship_choices=[], approval_required=False)
    before = db.scalar(select(func.count()).select_from(Member))
    with pytest.raises(people.PersonInvalid) as refused:
        people.sign_up(db, org, c, _fields("Ana", relationship="x" * 150), today=TODAY)
    assert "relationship" in refused.value.errors
    assert db.scalar(select(func.count()).select_from(Member)) == before
    ok = people.sign_up(db, org, c, _fields("Ana", relationship="x" * 100), today=TODAY)
    db.flush()
    assert len(ok.relationship) == 100


def test_merging_keeps_someone_who_left_and_signed_up_again_and_the_earlier_approval(
    db: Session,
) -> None:
    org = make_community(db)
    leader = make_leader(db, org)
    c = make_constituency(db, org)
    old = people.add_person(db, org, c, _fields("Ana"), actor=leader, today=date(2026, 1, 5))
    people.remove(db, org, old, actor=leader, reason="moved out", today=date(2026, 3, 1))
    back = people.sign_up(db, org, c, _fields("Ana", phone="+14155550178"), today=date(2026, 6, 1))
    kept_member = db.get_one(Member, old.member_id)
    kept = people.merge(db, org, back, into=kept_member, actor=leader)
    assert kept.status == PersonStatus.PENDING and kept.left_on is None
    assert kept.joined_on == date(2026, 6, 1)
    people.approve(db, org, kept, actor=leader, today=date(2026, 6, 2))
    on = {d.member_id: d.reasons for d in cons.evaluate(db, org, c, date(2026, 7, 1)).decisions}
    assert on == {kept_member.id: ()}

    # Both approved, the duplicate earlier: the kept place counts from the earlier approval.
    early = people.add_person(db, org, c, _fields("Cy", phone="+14155550179"), actor=leader,
                              today=date(2026, 1, 10))  # fmt: skip
    late = people.add_person(db, org, c, _fields("Cyrus", phone="+14155550180"), actor=leader,
                             today=date(2026, 6, 10))  # fmt: skip
    merged = people.merge(db, org, early, into=db.get_one(Member, late.member_id), actor=leader)
    assert merged.approved_on == date(2026, 1, 10) and merged.joined_on == date(2026, 1, 10)
    march = {d.member_id: d.eligible for d in cons.evaluate(db, org, c, date(2026, 3, 1)).decisions}
    assert march[late.member_id] is True


def test_member_ids_in_audit_data_are_pseudonymized_for_observers(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    org = make_community(db)
    leader = make_leader(db, org)
    c = make_constituency(db, org)
    person = people.add_person(db, org, c, _fields("Ana"), actor=leader, today=TODAY)
    event = events.create_event(
        db, org, actor=leader,
        fields=events.EventFields(kind=EventKind.MEETING, title="Meeting", held_on=TODAY,
                                  constituency_id=c.id),
    )  # fmt: skip
    events.record_attendance(db, org, event, [person.member_id], actor=leader)
    raw = str(person.member_id)
    stored = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "event.attendance_recorded")
    ).one()
    assert raw in str(stored.data)  # staff see who; observers and records must not
    shown = audit.list_events(db, org, pseudonymize=True, secret_key=settings.secret_key)
    text = " ".join(str(e) for e in shown)
    assert raw not in text
    exported = " ".join(
        str(e) for e in audit.exported_events(db, org, secret_key=settings.secret_key)
    )
    assert raw not in exported
    assert audit.verify_chain(db, org.id).ok  # the commitments hash as they are shown


def test_a_decision_vote_freezes_the_criteria_it_applied_and_its_record_verifies(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    org, leader, committee, constituency, _, _, offer = make_community_offer(db)
    vote = open_decision_vote(db, settings, org, leader, committee, offer)
    assert vote.eligibility == {
        "constituency": str(constituency.id),
        "constituency_name": constituency.name,
        "criteria": {"areas": ["12 Elm St"]},
        "approval_required": True,
    }
    frozen = voters.summarize(db, vote).eligible
    # The constituency changes afterwards: the vote's list and rule do not.
    constituency.criteria = {}
    constituency.approval_required = False
    db.flush()
    assert (
        voters.electorate(db, org, vote)
        and sum(1 for d in voters.electorate(db, org, vote) if d.eligible) == frozen
    )
    for v in db.scalars(select(Voter).where(Voter.vote_id == vote.id,
                                            Voter.status == VoterStatus.ELIGIBLE)):  # fmt: skip
        casting.cast(db, casting.Seat(v.id, 1, vote.id), "no")
    _close(db, vote)
    vote = votes.get_vote(db, org, vote.id)
    results.count(db, org, vote, actor=committee[0], secret_key=settings.secret_key)
    for member in committee:
        certify.sign(db, settings, password_hasher(settings), org, vote, user=member,
                     password=PASSWORD, client_address="10.0.0.1")  # fmt: skip
    exported = record.export(db, org, votes.get_vote(db, org, vote.id), settings.secret_key)
    assert exported["vote"]["eligibility"]["criteria"] == {"areas": ["12 Elm St"]}
    report = verify.verify(record.dumps(exported))
    assert report.ok, report.text()


def test_a_withdrawn_offer_and_a_cutoff_still_to_come_cannot_be_scheduled(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    org, leader, committee, _, _, _, offer = make_community_offer(db)
    vote = create_decision_vote(db, org, offer, actor=leader, title="Offer",
                                cutoff=datetime.now(UTC).date() + timedelta(days=5))  # fmt: skip
    fields = votes.saved_fields(vote, [c.id for c in committee])
    opens = datetime.now(UTC) + timedelta(hours=1)
    votes.update_vote(db, org, vote, actor=leader, fields=replace(
        fields, opens_at=opens, closes_at=opens + timedelta(days=1),
        committee_ids=frozenset(c.id for c in committee), signatures_required=2,
    ))  # fmt: skip
    with pytest.raises(BadRequest, match="cutoff date is still to come"):
        votes.schedule(db, org, vote, actor=leader, secret_key=settings.secret_key)
    # The draft is abandoned: the offer can still be withdrawn, and the draft not scheduled.
    assert campaigns.can_withdraw(db, org, offer)
    campaigns.set_offer_status(db, org, offer, actor=leader, status=OfferStatus.WITHDRAWN)
    vote.cutoff = datetime.now(UTC).date() - timedelta(days=1)
    with pytest.raises(Conflict, match="withdrawn or superseded"):
        votes.schedule(db, org, vote, actor=leader, secret_key=settings.secret_key)


def test_an_event_later_on_the_cutoff_day_is_not_counted_as_missed(db: Session) -> None:
    org = make_community(db)
    leader = make_leader(db, org)
    c = make_constituency(db, org, criteria={"attended": {"at_least": 1, "of_last": 1}},
                          approval_required=False)  # fmt: skip
    person = people.add_person(db, org, c, _fields("Ana"), actor=leader, today=TODAY)
    earlier = events.create_event(db, org, actor=leader, fields=events.EventFields(
        kind=EventKind.MEETING, title="Last month", held_on=TODAY - timedelta(days=30),
        constituency_id=c.id))  # fmt: skip
    events.record_attendance(db, org, earlier, [person.member_id], actor=leader)
    tonight = events.create_event(db, org, actor=leader, fields=events.EventFields(
        kind=EventKind.MEETING, title="Tonight", held_on=TODAY + timedelta(days=30),
        constituency_id=c.id))  # fmt: skip
    on = tonight.held_on
    # That morning nobody is recorded at tonight's meeting yet: last month's still counts.
    assert cons.evaluate(db, org, c, on).decisions[0].eligible
    other = people.add_person(db, org, c, _fields("Bo", phone="+14155550181"), actor=leader,
                              today=TODAY)  # fmt: skip
    events.record_attendance(db, org, tonight, [other.member_id], actor=leader)
    # Once it has happened, it is the last event: Ana missed it.
    evening = {d.member_id: d.eligible for d in cons.evaluate(db, org, c, on).decisions}
    assert evening == {person.member_id: False, other.member_id: True}


def test_check_in_opens_on_the_event_day(db: Session) -> None:
    org = make_community(db)
    leader = make_leader(db, org)
    c = make_constituency(db, org, approval_required=False)
    people.add_person(db, org, c, _fields("Ana"), actor=leader, today=TODAY)
    event = events.create_event(db, org, actor=leader, fields=events.EventFields(
        kind=EventKind.MEETING, title="Next week", held_on=date(2026, 11, 8),
        constituency_id=c.id))  # fmt: skip
    early = datetime(2026, 11, 1, 18, tzinfo=UTC)
    with pytest.raises(events.CheckinRefused, match="opens on the day"):
        events.check_in(db, org, code=event.checkin_code, contact="+14155550177", now=early,
                        phone_region="US")  # fmt: skip
    on_the_day = datetime(2026, 11, 8, 18, tzinfo=UTC)
    done = events.check_in(db, org, code=event.checkin_code, contact="+14155550177",
                           now=on_the_day, phone_region="US")  # fmt: skip
    assert done.event.id == event.id and not done.already


def test_shared_phones_are_flagged_before_the_vote_opens(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    org, leader, committee, _constituency, people_in, _, offer = make_community_offer(db)
    # Two approved tenants share one phone (a household, or one person twice).
    shared = db.get_one(Member, people_in[1].member_id)
    shared.phone = db.get_one(Member, people_in[0].member_id).phone
    vote = create_decision_vote(db, org, offer, actor=leader, title="Offer",
                                cutoff=date(2026, 11, 25))  # fmt: skip
    fields = votes.saved_fields(vote, [c.id for c in committee])
    opens = datetime.now(UTC) + timedelta(days=1)
    votes.update_vote(db, org, vote, actor=leader, fields=replace(
        fields, opens_at=opens, closes_at=opens + timedelta(days=1),
        committee_ids=frozenset(c.id for c in committee), signatures_required=2,
    ))  # fmt: skip
    votes.schedule(db, org, vote, actor=leader, secret_key=settings.secret_key)
    assert voters.sharing_contacts(db, vote) == 2
    db.commit()
    login(client, leader.email)
    page = client.get(f"/o/{org.slug}/votes/{vote.id}")
    assert "2 voters share a phone number or an email address" in page.text


def test_a_bad_imported_count_in_the_address_is_ignored(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    org = make_community(db)
    leader = make_leader(db, org)
    c = make_constituency(db, org)
    db.commit()
    login(client, leader.email)
    for value in ("²", "9" * 5000, "-1"):
        page = client.get(f"/o/{org.slug}/constituencies/{c.id}/people?imported={value}")
        assert page.status_code == 200
