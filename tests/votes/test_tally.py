"""The tally: the counting rules against a deliberately simple reference, their boundaries
(exactly half, exactly 2/3, quorum just met and one ballot short), small groups and merging;
the box read from the database (ballots, confirmed paper batches, accepted envelopes), its
digest and the recount, never before the close; the blank option from set-up to ballot."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ratify.db import utcnow
from ratify.errors import Conflict
from ratify.votes import casting, tally, voters
from ratify.votes import services as votes
from ratify.votes.models import (
    Ballot,
    BatchStatus,
    Channel,
    Envelope,
    EnvelopeStatus,
    PaperBatch,
    SecondFactor,
    TallyGrouping,
    Vote,
    VoteKind,
    VoteStatus,
)
from ratify.votes.services import BLANK, FRACTIONS, Threshold
from ratify.votes.tally import Box, GroupCounts, compute
from tests.helpers import csrf_from, login
from tests.votes.support import Union, fields_for, make_union, ready_vote
from tests.votes.test_casting import link_of, open_vote, sign_in, vote_through_pages, voter

# -- a deliberately simple reference -------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    reason: str
    option: str | None


def reference_verdict(
    kind: VoteKind,
    options: tuple[str, ...],
    counts: dict[str, int],
    ballots: int,
    eligible: int,
    t: Threshold,
) -> Verdict:
    real = [k for k in options if k != BLANK]
    votes_for_options = sum(counts.get(k, 0) for k in real)
    base = votes_for_options + (counts.get(BLANK, 0) if t.blank_counts else 0)
    if (
        t.quorum_percent is not None
        and Fraction(ballots) < Fraction(t.quorum_percent, 100) * eligible
    ):
        return Verdict("no_quorum", None)
    if votes_for_options == 0:
        return Verdict("no_votes", None)
    if kind in YES_NO:
        if counts.get("yes", 0) == counts.get("no", 0):
            return Verdict("tie", None)
        measured = "yes"
    else:
        most = max(counts.get(k, 0) for k in real)
        leaders = [k for k in real if counts.get(k, 0) == most]
        if len(leaders) > 1:
            return Verdict("tie", None)
        measured = leaders[0]
    share = Fraction(counts.get(measured, 0), base)
    needed = Fraction(t.numerator, t.denominator)
    # More than half; at least any other share.
    ok = share > needed if needed == Fraction(1, 2) else share >= needed
    return Verdict("passed", measured) if ok else Verdict("below_threshold", measured)


def total_of(groups: list[GroupCounts]) -> tuple[dict[str, int], int]:
    """Ballots per option, both channels together, and eligible voters."""
    both: dict[str, int] = {}
    eligible = 0
    for g in groups:
        eligible += g.eligible
        for channel in (g.online, g.paper):
            for k, n in channel.items():
                both[k] = both.get(k, 0) + n
    return both, eligible


def is_small(n: int) -> bool:
    return 1 <= n <= 4


def reference(box: Box, t: Threshold) -> dict[str, Any]:
    """The outcome and what is shown, worked out the long way."""
    by_name = {g.group: g for g in box.groups}
    ballots = {name: sum(g.online.values()) + sum(g.paper.values()) for name, g in by_name.items()}
    merged: list[str] = []
    if box.per_unit and t.merge_small_groups:
        merged = [name for name in by_name if is_small(ballots[name])]
        while merged and is_small(sum(ballots[m] for m in merged)):
            rest = sorted((ballots[n], n) for n in by_name if n not in merged and ballots[n] > 0)
            if not rest:
                break
            merged.append(rest[0][1])
    shown = sorted(n for n in by_name if n not in merged) if box.per_unit else []
    verdicts = {}
    for name in shown:
        counts, eligible = total_of([by_name[name]])
        verdicts[name] = reference_verdict(
            box.kind, box.options, counts, ballots[name], eligible, t
        )
    counts, eligible = total_of(list(box.groups))
    overall = reference_verdict(box.kind, box.options, counts, sum(ballots.values()), eligible, t)
    passed = overall.reason == "passed"
    failed: list[str] = []
    if box.per_unit and t.units == "every_unit":
        for name in shown:
            if verdicts[name].reason != "passed":
                failed.append(name)
            elif box.kind == VoteKind.QUESTION and passed and verdicts[name] != overall:
                failed.append(name)  # passed, but for another option
        passed = passed and not failed
    return {
        "passed": passed,
        "winner": overall.option if passed and box.kind == VoteKind.QUESTION else None,
        "overall": overall,
        "verdicts": verdicts,
        "failed": failed,
        "merged": sorted(merged),
        "totals": {k: counts.get(k, 0) for k in box.options},
        "ballots": sum(ballots.values()),
        "eligible": eligible,
    }


# -- random boxes ----------------------------------------------------------------------------------

counts_st = st.one_of(st.integers(0, 6), st.integers(0, 400))


# A ratification and an offer decision are both yes (the first option) or no.
YES_NO = (VoteKind.RATIFICATION, VoteKind.OFFER_DECISION)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[Box, Threshold]:
    kind = draw(st.sampled_from(list(VoteKind)))
    if kind in YES_NO:
        keys = ["yes", "no"]
    else:
        keys = [str(n) for n in range(1, draw(st.integers(2, 10)) + 1)]
    blank = draw(st.booleans())
    options = tuple(keys + ([BLANK] if blank else []))
    per_unit = draw(st.booleans())
    names = [f"U{n:02d}" for n in range(draw(st.integers(1, 40)))] if per_unit else ["all"]
    groups = []
    for name in names:
        online = {k: draw(counts_st) for k in options}
        # Units that lean to one option, not always the same: they pass for different ones.
        leaning = draw(st.none() | st.sampled_from(keys))
        if leaning is not None:
            online[leaning] += draw(st.integers(0, 400))
        paper = {k: draw(st.integers(0, 6)) for k in options} if draw(st.booleans()) else {}
        cast = sum(online.values()) + sum(paper.values())
        eligible = cast + draw(st.integers(0, 300))
        groups.append(GroupCounts(name, eligible, online, paper))
    threshold = Threshold(
        *draw(st.sampled_from(list(FRACTIONS.values()))),
        quorum_percent=draw(st.none() | st.integers(1, 100)),
        units=draw(st.sampled_from(["aggregate", "every_unit"])),
        blank_counts=blank and draw(st.booleans()),
        merge_small_groups=draw(st.booleans()),
    )
    return Box(kind, options, per_unit, tuple(groups)), threshold


@given(boxes())
def test_the_tally_agrees_with_a_simple_reference(case: tuple[Box, Threshold]) -> None:
    box, threshold = case
    result = compute(box, threshold)
    expected = reference(box, threshold)
    assert result.passed == expected["passed"]
    assert result.winner == expected["winner"]
    if box.kind == VoteKind.RATIFICATION:
        assert result.outcome == ("ratified" if expected["passed"] else "rejected")
    elif box.kind == VoteKind.OFFER_DECISION:
        assert result.outcome == ("accepted" if expected["passed"] else "rejected")
    else:
        assert result.outcome == ("decided" if expected["passed"] else "no_winner")
    assert result.aggregate.decision.reason == expected["overall"].reason
    assert {f.group: f.decision.reason for f in result.groups} == {
        name: v.reason for name, v in expected["verdicts"].items()
    }
    assert result.explanation["failed_groups"] == expected["failed"]
    assert result.explanation["merged_groups"] == expected["merged"]
    assert {c.option: c.total for c in result.aggregate.counts} == expected["totals"]
    assert (result.aggregate.ballots, result.aggregate.eligible) == (
        expected["ballots"],
        expected["eligible"],
    )
    if not result.passed:
        reasons = {expected["overall"].reason}
        if expected["failed"] and expected["overall"].reason == "passed":
            reasons = {"unit_failed"}
        assert result.explanation["reason"] in reasons
    # What is shown adds up: the shown groups and the merged line make the aggregate.
    if box.per_unit:
        parts = [*result.groups, *([result.merged] if result.merged else [])]
        assert sum(p.ballots for p in parts) == result.aggregate.ballots
        assert sum(p.eligible for p in parts) == result.aggregate.eligible
        for option in box.options:
            assert sum(c.total for p in parts for c in p.counts if c.option == option) == next(
                c.total for c in result.aggregate.counts if c.option == option
            )
    # Stored as JSON, and the same again when read back.
    stored = result.stored()
    assert json.loads(json.dumps(stored)) == stored


@given(boxes())
def test_merging_shows_no_small_group_and_no_small_channels_split(
    case: tuple[Box, Threshold],
) -> None:
    box, threshold = case
    result = compute(box, replace(threshold, merge_small_groups=True))
    for figures in result.groups:
        assert not figures.small
    if result.merged is not None and result.merged.small:
        # Only when every group with a ballot went into it: it is then the whole aggregate.
        assert all(f.ballots == 0 for f in result.groups)
    every = [*result.groups, *([result.merged] if result.merged else []), result.aggregate]
    for figures in every:
        split_shown = all(c.online is not None for c in figures.counts)
        if figures.small_channels:
            assert not split_shown
    if any(f.small_channels for f in every):
        assert all(c.online is None for c in result.aggregate.counts)
    # Without merging everything is shown, and flagged where small.
    plain = compute(box, replace(threshold, merge_small_groups=False))
    assert plain.merged is None and plain.explanation["merged_groups"] == []
    assert all(c.online is not None for f in plain.groups for c in f.counts)
    for f in plain.groups:
        assert f.small == (1 <= f.ballots <= 4)
        assert (f.group in plain.explanation["small_groups"]) == f.small


# -- boundaries, as documented ---------------------------------------------------------------------


def ratify(
    yes: int,
    no: int,
    blank: int = 0,
    *,
    eligible: int = 1000,
    paper: dict[str, int] | None = None,
    **rule: Any,
) -> tally.Result:
    online = {"yes": yes, "no": no, BLANK: blank}
    box = Box(
        VoteKind.RATIFICATION,
        ("yes", "no", BLANK),
        False,
        (GroupCounts("all", eligible, online, paper or {}),),
    )
    return compute(box, Threshold(**rule))


def test_a_majority_is_more_than_half_so_exactly_half_fails() -> None:
    assert ratify(51, 49).outcome == "ratified"
    assert ratify(6, 5).passed
    exactly_half = ratify(50, 50)
    assert exactly_half.outcome == "rejected" and exactly_half.explanation["reason"] == "tie"
    assert exactly_half.aggregate.decision.needed == 51
    # Blank ballots counted in the base: 5 yes of 10 is exactly half, and fails.
    assert ratify(5, 4, 1).passed
    counted = ratify(5, 4, 1, blank_counts=True)
    assert not counted.passed and counted.explanation["reason"] == "below_threshold"
    assert counted.aggregate.decision.base == 10 and counted.aggregate.blanks == 1


def test_a_fraction_is_at_least_that_share_so_exactly_two_thirds_passes() -> None:
    exactly = ratify(6, 3, numerator=2, denominator=3)
    assert exactly.passed and exactly.aggregate.decision.needed == 6
    assert (
        exactly.explanation | {"rule": "fraction", "comparison": "at_least"} == exactly.explanation
    )
    one_short = ratify(5, 3, numerator=2, denominator=3)
    assert not one_short.passed and one_short.explanation["reason"] == "below_threshold"
    assert one_short.aggregate.decision.needed == 6  # ceil(2/3 of 8)
    assert ratify(3, 1, numerator=3, denominator=4).passed
    assert not ratify(3, 2, numerator=3, denominator=4).passed
    assert ratify(3, 2, numerator=3, denominator=5).passed
    assert not ratify(4, 4, numerator=2, denominator=3).passed


def test_quorum_exactly_met_passes_and_one_ballot_short_fails() -> None:
    met = ratify(20, 10, eligible=100, quorum_percent=30)
    assert met.passed and met.aggregate.decision.quorum_met
    assert met.aggregate.decision.quorum_needed == 30
    short = ratify(20, 9, eligible=100, quorum_percent=30)
    assert not short.passed and short.explanation["reason"] == "no_quorum"
    assert short.aggregate.decision.quorum_met is False
    # A share that is not a whole number of voters rounds up: half of 7 needs 4 ballots.
    assert ratify(3, 0, eligible=7, quorum_percent=50).explanation["reason"] == "no_quorum"
    assert ratify(3, 0, 1, eligible=7, quorum_percent=50).passed  # a blank ballot is turnout
    # Paper ballots are turnout too.
    assert ratify(3, 0, eligible=7, quorum_percent=50, paper={"no": 1}).passed
    assert ratify(1, 0, eligible=0, quorum_percent=50).passed  # nothing to fall short of
    assert ratify(20, 10, eligible=100).aggregate.decision.quorum_met is None


def test_no_votes_for_an_option_is_rejected() -> None:
    empty = ratify(0, 0)
    assert not empty.passed and empty.explanation["reason"] == "no_votes"
    only_blanks = ratify(0, 0, 7, blank_counts=True)
    assert only_blanks.explanation["reason"] == "no_votes" and only_blanks.aggregate.blanks == 7


def question(*groups: tuple[str, dict[str, int]], n: int = 3, **rule: Any) -> tally.Result:
    options = (*(str(k) for k in range(1, n + 1)), BLANK)
    per_unit = len(groups) > 1 or groups[0][0] != "all"
    box = Box(
        VoteKind.QUESTION,
        options,
        per_unit,
        tuple(GroupCounts(name, 1000, online) for name, online in groups),
    )
    return compute(box, Threshold(**rule))


def test_a_question_is_won_by_the_most_votes_if_they_reach_the_threshold() -> None:
    clear = question(("all", {"1": 60, "2": 30, "3": 10}))
    assert (clear.outcome, clear.winner) == ("decided", "1")
    # Most votes, but not more than half of them: no winner under the default rule.
    plurality = question(("all", {"1": 40, "2": 35, "3": 25}))
    assert (plurality.outcome, plurality.winner) == ("no_winner", None)
    assert plurality.aggregate.decision.option == "1"
    assert plurality.explanation["reason"] == "below_threshold"
    tie = question(("all", {"1": 40, "2": 40, "3": 20}))
    assert tie.winner is None and tie.explanation["reason"] == "tie"
    assert tie.aggregate.decision.tied == ("1", "2")
    # Blank never wins; uncounted, it leaves the one vote for option 2 as all the votes cast.
    blank = question(("all", {"2": 1, BLANK: 100}))
    assert blank.winner == "2"
    assert question(("all", {"2": 1, BLANK: 100}), blank_counts=True).winner is None


def test_per_unit_every_unit_must_pass_or_the_aggregate_decides() -> None:
    def box(rn: tuple[int, int], tech: tuple[int, int]) -> Box:
        return Box(
            VoteKind.RATIFICATION,
            ("yes", "no"),
            True,
            (
                GroupCounts("RN", 200, {"yes": rn[0], "no": rn[1]}),
                GroupCounts("TECH", 100, {"yes": tech[0], "no": tech[1]}),
            ),
        )

    split = box((150, 10), (20, 40))
    total = compute(split, Threshold(units="aggregate"))
    assert total.outcome == "ratified" and total.explanation["decided_by"] == "aggregate"
    assert [(f.group, f.decision.passed) for f in total.groups] == [("RN", True), ("TECH", False)]
    every = compute(split, Threshold(units="every_unit"))
    assert every.outcome == "rejected"
    assert (
        every.explanation | {"reason": "unit_failed", "failed_groups": ["TECH"]}
        == every.explanation
    )
    assert compute(box((150, 10), (60, 40)), Threshold(units="every_unit")).passed
    # Counted in aggregate (not per unit), a stored every_unit changes nothing.
    one = Box(VoteKind.RATIFICATION, ("yes", "no"), False, (GroupCounts("all", 9, {"yes": 5}),))
    assert compute(one, Threshold(units="every_unit")).passed
    assert compute(one, Threshold(units="every_unit")).groups == ()


def test_every_unit_question_needs_the_same_winner_everywhere() -> None:
    same = question(("A", {"1": 9, "2": 1}), ("B", {"1": 8, "2": 2}), units="every_unit")
    assert same.winner == "1"
    other = question(("A", {"1": 20, "2": 1}), ("B", {"1": 2, "2": 8}), units="every_unit")
    assert other.winner is None and other.explanation["failed_groups"] == ["B"]
    assert question(("A", {"1": 20, "2": 1}), ("B", {"1": 2, "2": 8})).winner == "1"


def test_small_groups_are_flagged_and_merged_into_the_aggregate_only() -> None:
    def box() -> Box:
        return Box(
            VoteKind.RATIFICATION,
            ("yes", "no"),
            True,
            (
                GroupCounts("RN", 300, {"yes": 150, "no": 50}, {"yes": 2, "no": 1}),
                GroupCounts("LAB", 9, {"yes": 1, "no": 1}),
                GroupCounts("TECH", 40, {"yes": 4, "no": 3}),
                GroupCounts("OPS", 20, {}),
            ),
        )

    flagged = compute(box(), Threshold())
    assert flagged.explanation["small_groups"] == ["LAB"]
    by_group = {f.group: f for f in flagged.groups}
    assert by_group["LAB"].small and not by_group["TECH"].small and not by_group["OPS"].small
    assert by_group["RN"].small_channels == ("paper",) and not by_group["RN"].small
    assert flagged.aggregate.small_channels == ("paper",)
    merged = compute(box(), Threshold(merge_small_groups=True, units="every_unit"))
    # LAB alone (2 ballots) would be given back by subtraction: TECH, the next smallest, joins.
    assert merged.explanation["merged_groups"] == ["LAB", "TECH"]
    assert [f.group for f in merged.groups] == ["OPS", "RN"]
    assert merged.merged is not None and merged.merged.groups == ("LAB", "TECH")
    assert (merged.merged.ballots, merged.merged.eligible) == (9, 49)
    # RN's paper (3 ballots) is not split out, nor the aggregate's.
    rn = next(f for f in merged.groups if f.group == "RN")
    assert [(c.option, c.total, c.online, c.paper) for c in rn.counts] == [
        ("yes", 152, None, None),
        ("no", 51, None, None),
    ]
    assert all(c.online is None for c in merged.aggregate.counts)
    assert rn.paper_ballots == 3  # turnout by channel stays: it is not a count of choices
    # Merged units do not decide on their own: only OPS (no ballots) fails every_unit.
    assert merged.explanation["failed_groups"] == ["OPS"]


def test_the_explanation_names_the_rule_and_the_reason() -> None:
    result = ratify(10, 20, numerator=2, denominator=3, quorum_percent=1)
    assert result.explanation == {
        "rule": "fraction",
        "numerator": 2,
        "denominator": 3,
        "comparison": "at_least",
        "quorum_percent": 1,
        "blank_counts": False,
        "decided_by": "aggregate",
        "reason": "below_threshold",
        "failed_groups": [],
        "merged_groups": [],
        "small_groups": [],
    }
    decision = result.stored()["aggregate"]["decision"]
    assert decision == {
        "passed": False,
        "reason": "below_threshold",
        "option": "yes",
        "votes_for": 10,
        "base": 30,
        "needed": 20,
        "tied": [],
        "quorum_met": True,
        "quorum_needed": 10,
    }
    assert result.stored()["version"] == 1
    assert ratify(2, 1).explanation["rule"] == "majority"
    assert ratify(2, 1).explanation["comparison"] == "more_than"


@given(
    st.lists(
        st.tuples(
            st.uuids(), st.sampled_from(["RN", "TECH"]), st.sampled_from(["yes", "no", BLANK])
        ),
        max_size=30,
    )
)
@example([])
def test_the_digest_is_of_the_ballots_sorted_by_id_whatever_their_order(
    ballots: list[tuple[uuid.UUID, str, str]],
) -> None:
    rows = [(str(i), g, c) for i, g, c in ballots]
    lines = "".join(f"{i}\t{g}\t{c}\n" for i, g, c in sorted(rows))
    assert tally.digest_ballots(rows) == hashlib.sha256(lines.encode()).hexdigest()
    assert tally.digest_ballots(reversed(rows)) == tally.digest_ballots(rows)


# -- the database side -------------------------------------------------------------------------


def close(db: Session, u: Union, vote: Vote) -> Vote:
    db.execute(
        update(Vote).where(Vote.id == vote.id).values(closes_at=utcnow() - timedelta(seconds=1))
    )
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    votes.advance(db, u.org, vote)
    assert vote.status == VoteStatus.CLOSED
    return vote


def cast(db: Session, vote: Vote, number: str, choice: str) -> None:
    access = casting.find_by_session(db, voter(db, vote, number).id, 1)
    assert access is not None
    casting.cast(db, access.seat, choice)


def batch(
    db: Session,
    u: Union,
    vote: Vote,
    group: str,
    counts: dict[str, int],
    status: BatchStatus = BatchStatus.CONFIRMED,
) -> None:
    db.add(
        PaperBatch(
            vote_id=vote.id,
            tally_group=group,
            counts=counts,
            status=status,
            entered_by_id=u.committee[0].id,
        )
    )
    db.flush()


def test_nothing_is_counted_before_the_close(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    draft = ready_vote(db, u)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    cast(db, vote, "1001", "yes")
    for v in (draft, vote):
        for read in (tally.count_box, tally.tally, tally.box_digest, tally.recount):
            with pytest.raises(Conflict):
                read(db, v)
    draft = votes.get_vote(db, u.org, draft.id)
    votes.schedule(db, u.org, draft, actor=u.staff, secret_key=settings.secret_key)
    with pytest.raises(Conflict):
        tally.count_box(db, draft)


def test_the_box_paper_batches_and_eligible_voters_are_counted_per_group(
    db: Session, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number, choice in [("1001", "yes"), ("1002", "yes"), ("1003", "no"), ("2001", "no")]:
        cast(db, vote, number, choice)
    # The fee payer, challenged into RN: eligible once the envelope is accepted, and its
    # ballot goes into the box like any other. Another challenge, rejected, counts for nothing.
    accepted = voters.challenge(
        db,
        u.org,
        vote,
        actor=u.staff,
        member_number="9001",
        reason="Dues paid late",
        group="RN",
        secret_key=settings.secret_key,
    )
    u.members.append(make_member(db, u, "9002"))
    rejected = voters.challenge(
        db,
        u.org,
        vote,
        actor=u.staff,
        member_number="9002",
        reason="Not in the unit",
        group="TECH",
        secret_key=settings.secret_key,
    )
    db.add_all(
        [
            Envelope(
                vote_id=vote.id,
                voter_id=accepted.id,
                channel=Channel.ONLINE,
                status=EnvelopeStatus.ACCEPTED,
            ),
            Envelope(
                vote_id=vote.id,
                voter_id=rejected.id,
                channel=Channel.ONLINE,
                status=EnvelopeStatus.REJECTED,
            ),
        ]
    )
    db.add(Ballot(id=uuid.uuid4(), vote_id=vote.id, tally_group="RN", choice="yes"))
    vote = close(db, u, vote)
    batch(db, u, vote, "TECH", {"yes": 2, "no": 0})
    batch(db, u, vote, "TECH", {"yes": 1})
    batch(db, u, vote, "RN", {"yes": 40}, BatchStatus.ENTERED)  # not confirmed: not counted
    batch(db, u, vote, "RN", {"no": 40}, BatchStatus.WITHDRAWN)
    box = tally.count_box(db, vote)
    assert box == Box(
        kind=VoteKind.RATIFICATION,
        options=("yes", "no"),
        per_unit=True,
        groups=(
            GroupCounts("RN", 7, {"yes": 3, "no": 1}, {}),  # 6 members and the accepted one
            GroupCounts("TECH", 3, {"no": 1}, {"yes": 3}),
        ),
    )
    result = tally.tally(db, vote)
    assert result.groups[1].online_ballots == 1 and result.groups[1].paper_ballots == 3
    assert result.aggregate.ballots == 8 and result.outcome == "ratified"
    assert result.explanation["small_groups"] == ["RN", "TECH"]


def make_member(db: Session, u: Union, number: str):  # type: ignore[no-untyped-def]
    from datetime import date

    from ratify.rosters import services as rosters
    from ratify.rosters.models import EmploymentStatus, MembershipStatus
    from ratify.rosters.services import MemberFields

    return rosters.add_member(
        db,
        u.org,
        MemberFields(number, "Late", "Joiner"),
        phone_region="US",
        effective=date(2025, 1, 1),
        membership=MembershipStatus.FEE_PAYER,
        employment=EmploymentStatus.ACTIVE,
        units=[u.tech],
    )


def test_a_choice_not_on_the_ballot_stops_the_tally(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = close(db, u, open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE))
    db.add(Ballot(id=uuid.uuid4(), vote_id=vote.id, tally_group="RN", choice="maybe"))
    db.flush()
    with pytest.raises(Conflict):
        tally.count_box(db, vote)
    db.rollback()


def test_a_paper_count_not_on_the_ballot_stops_the_tally(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = close(db, u, open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE))
    batch(db, u, vote, "RN", {"yes": 1, BLANK: 2})  # no blank option on this ballot
    with pytest.raises(Conflict):
        tally.count_box(db, vote)


def test_the_digest_and_the_recount_find_any_change_to_the_box(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number, choice in [("1001", "yes"), ("1002", "no"), ("1003", "yes"), ("2001", "yes")]:
        cast(db, vote, number, choice)
    vote = close(db, u, vote)
    batch(db, u, vote, "TECH", {"yes": 3, "no": 2})
    rows = db.execute(select(Ballot.id, Ballot.tally_group, Ballot.choice)).all()
    lines = sorted(f"{i}\t{g}\t{c}\n" for i, g, c in rows)
    digest = tally.box_digest(db, vote)
    assert digest == hashlib.sha256("".join(lines).encode()).hexdigest()
    with pytest.raises(Conflict):
        tally.recount(db, vote)  # not tallied yet: nothing to compare with
    result = tally.tally(db, vote)
    vote.result, vote.box_digest = result.stored(), digest
    db.flush()
    again = tally.recount(db, vote)
    assert again.matches and again.differences == () and again.digest == digest
    assert again.result == result
    # One ballot changes its choice: the counts and the digest say so, by name.
    changed = next(i for i, g, c in rows if g == "RN" and c == "yes")
    db.execute(update(Ballot).where(Ballot.id == changed).values(choice="no"))
    found = tally.recount(db, vote)
    assert not found.matches
    assert "box_digest" in found.differences
    assert "aggregate.counts[yes].total" in found.differences
    assert "groups[RN].counts[no].online" in found.differences
    # Two ballots of a group swap choices: the same counts, but not the same box.
    db.execute(update(Ballot).where(Ballot.id == changed).values(choice="yes"))
    other = next(i for i, g, c in rows if g == "RN" and c == "no")
    db.execute(update(Ballot).where(Ballot.id == other).values(choice="yes"))
    db.execute(update(Ballot).where(Ballot.id == changed).values(choice="no"))
    assert tally.recount(db, vote).differences == ("box_digest",)


def test_blank_ballots_from_set_up_to_ballot_box(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(
        db,
        u,
        settings.secret_key,
        second_factor=SecondFactor.MEMBER_LAST4,
        allow_blank=True,
        threshold=Threshold(blank_counts=True),
    )
    assert [(o.key, o.position) for o in vote.options] == [("yes", 0), ("no", 1), (BLANK, 2)]
    assert vote.options[2].labels == {"en": "Blank (I abstain)", "es": "En blanco (me abstengo)"}
    assert votes.option_marks(vote)["03"] == BLANK
    # The member's ballot shows it as the third option, and it is cast like any other.
    link = link_of(settings.secret_key, voter(db, vote, "1001"))
    assert sign_in(client, link, "1001").status_code == 303
    ballot = client.get("/v/ballot").text
    assert (
        '<input type="radio" name="choice" value="03" required> <span>Blank (I abstain)</span>'
        in ballot
    )
    vote_through_pages(client, link, "1001", choice="03")
    assert db.scalars(select(Ballot.choice).where(Ballot.vote_id == vote.id)).all() == [BLANK]
    cast(db, vote, "1002", "yes")
    vote = close(db, u, vote)
    result = tally.tally(db, vote)
    assert result.options == ("yes", "no", BLANK)
    assert result.aggregate.blanks == 1 and result.aggregate.decision.base == 2
    assert result.outcome == "rejected"  # 1 yes of 2 votes cast, the blank among them


def test_the_blank_option_follows_the_set_up_while_a_draft(db: Session) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, allow_blank=True)
    assert [o.key for o in vote.options] == ["yes", "no", BLANK]
    worded = [
        {"en": "Yes, I accept the agreement", "es": "Sí, acepto el acuerdo"},
        {"en": "No, I reject the agreement", "es": "No, rechazo el acuerdo"},
    ]
    assert votes.saved_fields(vote, []).options == worded
    assert votes.saved_fields(vote, []).allow_blank
    votes.update_vote(db, u.org, vote, actor=u.staff, fields=fields_for(u, vote, options=worded))
    assert [o.key for o in votes.get_vote(db, u.org, vote.id).options] == ["yes", "no"]
    # A question of ten options has room for the blank one after them.
    ten = [{"en": f"Option {n}", "es": f"Opción {n}"} for n in range(10)]
    question = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.QUESTION, title="Q", languages=["en", "es"]
    )
    votes.update_vote(
        db,
        u.org,
        question,
        actor=u.staff,
        fields=fields_for(u, question, options=ten, allow_blank=True),
    )
    question = votes.get_vote(db, u.org, question.id)
    assert [o.key for o in question.options] == [str(n) for n in range(1, 11)] + [BLANK]
    assert "A question needs between 2 and 10 options." not in votes.missing_for_scheduling(
        db, question
    )
    votes.update_vote(
        db,
        u.org,
        question,
        actor=u.staff,
        fields=fields_for(u, question, options=ten[:3], allow_blank=True),
    )
    assert [o.key for o in votes.get_vote(db, u.org, question.id).options] == ["1", "2", "3", BLANK]
    # Blanks can count only where the ballot offers them.
    with pytest.raises(votes.VoteInvalid) as refused:
        votes.update_vote(
            db,
            u.org,
            question,
            actor=u.staff,
            fields=fields_for(u, question, options=ten[:3], threshold=Threshold(blank_counts=True)),
        )
    assert set(refused.value.errors) == {"blank_counts"}


def test_the_set_up_form_saves_and_shows_the_counting_options(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    edit = f"/o/{u.org.slug}/votes/{vote.id}/edit"
    page = client.get(edit).text
    for name in ("allow_blank", "blank_counts", "merge_small_groups"):
        assert f'name="{name}" value="1">' in page  # offered, unchecked
    form = {
        "title": "2027 contract",
        "question_en": "Accept?",
        "question_es": "¿Acepta?",
        "option_0_en": "Yes",
        "option_1_en": "No",
        "option_0_es": "Sí",
        "option_1_es": "No",
        "opens": "2027-03-01T09:00",
        "closes": "2027-03-08T17:30",
        "cutoff": "2026-11-15",
        "units": [str(u.rn.id), str(u.tech.id)],
        "membership": ["member"],
        "employment": ["active"],
        "tally_grouping": "per_unit",
        "threshold_fraction": "1/2",
        "threshold_units": "aggregate",
        "committee": [str(c.id) for c in u.committee],
        "signatures_required": "2",
        "second_factor": "birth_year",
        "blank_counts": "1",
        "merge_small_groups": "1",
    }
    refused = client.post(edit, data={**form, "csrf_token": csrf_from(client, edit)})
    assert refused.status_code == 400
    assert "Blank ballots can count only when the ballot offers them." in refused.text
    assert 'name="merge_small_groups" value="1" checked>' in refused.text  # kept as typed
    saved = client.post(
        edit, data={**form, "allow_blank": "1", "csrf_token": csrf_from(client, edit)}
    )
    assert saved.status_code == 303, saved.text
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    assert vote.allow_blank and [o.key for o in vote.options] == ["yes", "no", BLANK]
    assert votes.threshold_of(vote) == Threshold(blank_counts=True, merge_small_groups=True)
    assert vote.threshold["blank_counts"] is True and vote.threshold["merge_small_groups"] is True
    page = client.get(edit).text
    for name in ("allow_blank", "blank_counts", "merge_small_groups"):
        assert f'name="{name}" value="1" checked>' in page


def test_the_api_sets_up_blank_ballots_and_the_counting_options(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    from tests.api.support import bearer, make_token

    u = make_union(db)
    vote = ready_vote(db, u)
    headers = bearer(make_token(db, u.org, client=client))
    address = f"/api/v1/orgs/{u.org.slug}/votes/{vote.id}"
    refused = client.patch(address, headers=headers, json={"threshold": {"blank_counts": True}})
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["threshold.blank_counts"]
    body = {"allow_blank": True, "threshold": {"blank_counts": True, "merge_small_groups": True}}
    changed = client.patch(address, headers=headers, json=body)
    assert changed.status_code == 200, changed.text
    detail = changed.json()
    assert detail["allow_blank"] is True
    assert [o["key"] for o in detail["options"]] == ["yes", "no"]  # the worded ones
    assert detail["threshold"] == {
        "numerator": 1,
        "denominator": 2,
        "quorum_percent": None,
        "units": "aggregate",
        "blank_counts": True,
        "merge_small_groups": True,
    }
    # What was read can be sent back as it is: the blank option is not a worded one.
    options = [{"labels": o["labels"]} for o in detail["options"]]
    again = client.patch(address, headers=headers, json={"options": options})
    assert again.status_code == 200, again.text
    db.expire_all()
    assert [o.key for o in votes.get_vote(db, u.org, vote.id).options] == ["yes", "no", BLANK]


def test_an_aggregate_vote_is_counted_in_one_group(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(
        db,
        u,
        settings.secret_key,
        second_factor=SecondFactor.NONE,
        tally_grouping=TallyGrouping.AGGREGATE,
    )
    for number in ("1001", "1002", "2001", "2002", "2003"):
        cast(db, vote, number, "yes")
    vote = close(db, u, vote)
    result = tally.tally(db, vote)
    assert result.groups == () and result.tally_grouping == "aggregate"
    assert (result.aggregate.eligible, result.aggregate.ballots) == (9, 5)
    assert not result.aggregate.small and result.outcome == "ratified"


def test_the_eligible_voters_per_group_are_fixed_as_the_vote_opens(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    """Counted once at opening (nobody becomes or stops being eligible after), and what the
    tally uses: a challenged voter added later does not change them."""
    from sqlalchemy import update as sql_update

    from ratify.votes import tally, voters
    from ratify.votes.models import Vote, VoteStatus
    from tests.votes.support import make_union
    from tests.votes.test_casting import open_vote
    from tests.votes.test_published import _close

    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key)
    assert vote.eligible_counts == voters.eligible_by_group(db, vote) == {"RN": 6, "TECH": 3}
    voters.challenge(db, u.org, vote, actor=u.staff, member_number="9001", reason="new hire",
                     group="TECH", secret_key=settings.secret_key)  # fmt: skip
    _close(db, vote)
    closed = db.get_one(Vote, vote.id)
    assert closed.status == VoteStatus.CLOSED and closed.eligible_counts == {"RN": 6, "TECH": 3}
    # The tally reads the fixed figures, not the list.
    db.execute(
        sql_update(Vote).where(Vote.id == vote.id).values(eligible_counts={"RN": 60, "TECH": 30})
    )
    db.expire_all()
    box = tally.count_box(db, db.get_one(Vote, vote.id))
    assert {g.group: g.eligible for g in box.groups} == {"RN": 60, "TECH": 30}
