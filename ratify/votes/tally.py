"""The count: per tally group and in aggregate, from the ballot box and the confirmed paper
batches, with the vote's threshold applied, the outcome and the reason for it.

``compute`` is a pure function of the counts (``Box``) and the rule (``services.Threshold``);
``count_box`` reads the counts (one GROUP BY over the ballots, the confirmed paper batches,
the eligible voters per group); ``box_digest`` fingerprints the box; ``recount`` counts again
and compares with the result fixed at tallying. Nothing here runs before the close: every
reader refuses (409) a vote that is not closed, tallied or certified (DESIGN.md §4 rule 3).

The rules, as applied to one group's figures (and the same to the aggregate's):

- **Votes cast** (the base) are the ballots for the options; blank ballots (key ``blank``,
  where the ballot offers one) are reported, and join the base only when the threshold says
  ``blank_counts`` (they then weigh like a vote against). Ballots cast, for turnout and
  quorum, are all ballots, blank ones included.
- **Quorum** (optional): met when ballots cast are at least ``quorum_percent`` of the eligible
  voters (``ballots * 100 >= quorum_percent * eligible``). Eligible voters are those on the
  frozen list as eligible, and challenged voters whose envelope was accepted. Without quorum
  the group fails, whatever the votes say.
- **Majority** (1/2): the option measured needs *more than* half of the votes cast, so exactly
  half fails. **A fraction** (3/5, 2/3, 3/4): *at least* that share (exactly 2/3 passes with
  2/3). This is what the set-up and vote pages say ("more than half", "at least 2/3").
- **A tie fails**: Yes = No, or two options sharing the most votes.
- A **ratification** measures Yes. A **question** measures the option with the most votes
  (plurality), which must also reach the threshold's share: with the default "more than
  half" a question of three options or more can end with no winner; a tie at the top always
  does. Blank never wins.
- **Per unit**: with ``units = aggregate`` the aggregate decides and each unit's own result
  is shown beside it; with ``every_unit`` every unit shown must pass (for a question: with the
  aggregate's winner) and so must the aggregate (which follows when no unit is merged).
- **Small groups** (rule 6): a group, or one channel (online, paper) of a group, with 1 to 4
  ballots is flagged ``small``. With ``merge_small_groups`` such groups are counted in the
  aggregate only: their figures are shown once, summed, as the ``merged`` line; while that
  sum itself has 1 to 4 ballots, the shown group with the fewest ballots joins it (else
  subtracting the shown groups from the aggregate would give the small group back). Merged
  groups do not decide on their own under ``every_unit``. And the split of a figure set's
  counts by channel is withheld (``null``) where one of its channels is small, and then the
  aggregate's split too.

The explanation (``Result.explanation``, and each figure set's ``decision``) is made for the
result page to say the rule and the reason in words::

    {"rule": "fraction", "numerator": 2, "denominator": 3, "comparison": "at_least",
     "quorum_percent": 50, "blank_counts": false, "decided_by": "every_unit",
     "reason": "unit_failed", "failed_groups": ["TECH"], "merged_groups": [],
     "small_groups": []}

``reason`` is one of ``passed``, ``no_quorum``, ``no_votes`` (no vote for any option),
``tie``, ``below_threshold`` and (overall, under ``every_unit``) ``unit_failed``. A decision
names the option measured, its votes (``votes_for``), the base, the votes it ``needed``, the
options ``tied``, and the quorum's ``quorum_needed`` ballots and ``quorum_met``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from ratify.errors import N_, Conflict
from ratify.votes.models import (
    Ballot,
    BatchStatus,
    Envelope,
    EnvelopeStatus,
    PaperBatch,
    Receipt,
    TallyGrouping,
    Vote,
    VoteKind,
    VoteOption,
    Voter,
    VoterStatus,
    VoteStatus,
)
from ratify.votes.services import BLANK, YES_NO_KINDS, Threshold, threshold_of
from ratify.votes.voters import AGGREGATE_GROUP, SMALL_GROUP

RESULT_VERSION = 1
COUNTED = (VoteStatus.CLOSED, VoteStatus.TALLIED, VoteStatus.CERTIFIED)
ONLINE, PAPER = "online", "paper"
MERGED = "merged"  # the group name of the merged small groups' line

PASSED = "passed"
NO_QUORUM = "no_quorum"
NO_VOTES = "no_votes"
TIE = "tie"
BELOW_THRESHOLD = "below_threshold"
UNIT_FAILED = "unit_failed"

NOT_YET = N_("Nothing is counted before the vote closes.")
NOT_TALLIED = N_("This vote has not been tallied yet: there is no result to recount.")
FOREIGN_CHOICE = N_(
    "The ballot box or a paper batch holds a count for an option that is not on the ballot. "
    "Nothing was counted."
)


# -- what the count starts from ----------------------------------------------------------------


@dataclass(frozen=True)
class GroupCounts:
    """One tally group's ballots per option: in the box (online, and challenged envelopes once
    accepted) and in its confirmed paper batches (paper and in person); its eligible voters."""

    group: str
    eligible: int
    online: Mapping[str, int] = field(default_factory=dict)
    paper: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Box:
    kind: VoteKind
    options: tuple[str, ...]  # the ballot's option keys in order, ``blank`` last if offered
    per_unit: bool
    groups: tuple[GroupCounts, ...]


# -- what it gives -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionCount:
    option: str
    total: int
    online: int | None  # None: withheld, as it would show a small channel's choices
    paper: int | None


@dataclass(frozen=True)
class Decision:
    passed: bool
    reason: str
    option: str | None  # what was measured: Yes, or the question's leading option
    votes_for: int
    base: int  # the votes cast, as the rule counts them
    needed: int  # the fewest ``votes_for`` that pass, given the base
    tied: tuple[str, ...]
    quorum_met: bool | None  # None: no quorum rule
    quorum_needed: int | None  # ballots


@dataclass(frozen=True)
class Figures:
    """One tally group's figures (or the aggregate's, or the merged small groups')."""

    group: str
    eligible: int
    ballots: int  # all ballots cast, blank ones included
    online_ballots: int
    paper_ballots: int
    blanks: int
    turnout_percent: float
    counts: tuple[OptionCount, ...]  # per option, in ballot order
    small: bool
    small_channels: tuple[str, ...]
    decision: Decision
    groups: tuple[str, ...] = ()  # the merged line's groups


@dataclass(frozen=True)
class Result:
    kind: str
    options: tuple[str, ...]
    tally_grouping: str
    threshold: dict[str, Any]
    passed: bool
    # ratified | rejected (a ratification); accepted | rejected (an offer decision);
    # decided | no_winner (a question)
    outcome: str
    winner: str | None  # a question's winning option
    explanation: dict[str, Any]
    aggregate: Figures
    groups: tuple[Figures, ...]  # each unit's figures, for a per-unit vote (merged ones not)
    merged: Figures | None

    def stored(self) -> dict[str, Any]:
        """As ``Vote.result`` keeps it (JSON: lists, not tuples), with its format's version."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return {"version": RESULT_VERSION, **data}


# -- the rules ---------------------------------------------------------------------------------


def _small(ballots: int) -> bool:
    """Rule 6: 1 to 4 ballots tell how those few voted (none tells nothing)."""
    return 0 < ballots < SMALL_GROUP


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _needed(threshold: Threshold, base: int) -> int:
    """The fewest votes that pass out of ``base``: more than half, or at least n/d."""
    if threshold.numerator * 2 == threshold.denominator:
        return base // 2 + 1
    return _ceil_div(threshold.numerator * base, threshold.denominator)


def decide(
    kind: VoteKind,
    options: Sequence[str],
    counts: Mapping[str, int],
    ballots: int,
    eligible: int,
    threshold: Threshold,
) -> Decision:
    """One figure set's decision under the rule (see the module's docstring)."""
    real = [key for key in options if key != BLANK]
    cast = sum(counts.get(key, 0) for key in real)
    base = cast + (counts.get(BLANK, 0) if threshold.blank_counts else 0)
    quorum_needed = quorum_met = None
    if threshold.quorum_percent is not None:
        quorum_needed = _ceil_div(threshold.quorum_percent * eligible, 100)
        quorum_met = ballots >= quorum_needed
    option: str | None
    tied: tuple[str, ...]
    if kind in YES_NO_KINDS:
        option, against = real[0], real[1]
        votes_for = counts.get(option, 0)
        tied = (option, against) if votes_for == counts.get(against, 0) else ()
    else:
        votes_for = max((counts.get(key, 0) for key in real), default=0)
        leaders = tuple(key for key in real if counts.get(key, 0) == votes_for)
        option = leaders[0] if len(leaders) == 1 else None
        tied = leaders if len(leaders) > 1 else ()
    needed = _needed(threshold, base)
    if quorum_met is False:
        reason = NO_QUORUM
    elif cast == 0:
        reason = NO_VOTES
    elif tied:
        reason = TIE
    elif votes_for >= needed:
        reason = PASSED
    else:
        reason = BELOW_THRESHOLD
    return Decision(
        passed=reason == PASSED,
        reason=reason,
        option=option,
        votes_for=votes_for,
        base=base,
        needed=needed,
        tied=tied,
        quorum_met=quorum_met,
        quorum_needed=quorum_needed,
    )


@dataclass
class _Sum:
    eligible: int = 0
    online: Counter[str] = field(default_factory=Counter)
    paper: Counter[str] = field(default_factory=Counter)

    def add(self, other: GroupCounts | _Sum) -> _Sum:
        self.eligible += other.eligible
        self.online.update(other.online)
        self.paper.update(other.paper)
        return self

    @property
    def ballots(self) -> int:
        return sum(self.online.values()) + sum(self.paper.values())


def _figures(
    name: str, summed: _Sum, box: Box, threshold: Threshold, groups: tuple[str, ...] = ()
) -> Figures:
    total = summed.online + summed.paper
    online_ballots, paper_ballots = sum(summed.online.values()), sum(summed.paper.values())
    ballots = online_ballots + paper_ballots
    return Figures(
        group=name,
        eligible=summed.eligible,
        ballots=ballots,
        online_ballots=online_ballots,
        paper_ballots=paper_ballots,
        blanks=total.get(BLANK, 0),
        turnout_percent=round(100 * ballots / summed.eligible, 2) if summed.eligible else 0.0,
        counts=tuple(
            OptionCount(key, total.get(key, 0), summed.online.get(key, 0), summed.paper.get(key, 0))
            for key in box.options
        ),
        small=_small(ballots),
        small_channels=tuple(
            channel
            for channel, n in ((ONLINE, online_ballots), (PAPER, paper_ballots))
            if _small(n)
        ),
        decision=decide(box.kind, box.options, total, ballots, summed.eligible, threshold),
        groups=groups,
    )


def _withheld(figures: Figures) -> Figures:
    """The figures without their split by channel."""
    counts = tuple(OptionCount(c.option, c.total, None, None) for c in figures.counts)
    return replace(figures, counts=counts)


def _merge(shown: dict[str, _Sum]) -> list[str]:
    """The groups to count in the aggregate only: the small ones, and then the smallest others
    while their sum would still be small."""
    merged = [g for g, s in shown.items() if _small(s.ballots)]
    if not merged:
        return []
    while _small(sum(shown[g].ballots for g in merged)):
        others = [(s.ballots, g) for g, s in shown.items() if g not in merged and s.ballots]
        if not others:
            break
        merged.append(min(others)[1])
    return sorted(merged)


def compute(box: Box, threshold: Threshold) -> Result:
    """The result of a vote from its counts (see the module's docstring for the rules)."""
    per_group: dict[str, _Sum] = {}
    for counts in box.groups:
        per_group.setdefault(counts.group, _Sum()).add(counts)
    per_group = dict(sorted(per_group.items()))
    everyone = _Sum()
    for summed in per_group.values():
        everyone.add(summed)
    aggregate = _figures(AGGREGATE_GROUP, everyone, box, threshold)
    merged_names = _merge(per_group) if box.per_unit and threshold.merge_small_groups else []
    groups = (
        [_figures(g, s, box, threshold) for g, s in per_group.items() if g not in merged_names]
        if box.per_unit
        else []
    )
    merged: Figures | None = None
    if merged_names:
        merged_sum = _Sum()
        for name in merged_names:
            merged_sum.add(per_group[name])
        merged = _figures(MERGED, merged_sum, box, threshold, groups=tuple(merged_names))
    if threshold.merge_small_groups:
        shown = [*groups, *([merged] if merged else []), aggregate]
        if any(f.small_channels for f in shown):
            groups = [_withheld(f) if f.small_channels else f for f in groups]
            if merged is not None and merged.small_channels:
                merged = _withheld(merged)
            aggregate = _withheld(aggregate)  # else it gives back a withheld split

    every_unit = box.per_unit and threshold.units == "every_unit"
    winner = aggregate.decision.option if aggregate.decision.passed else None
    failed: list[str] = []
    if every_unit:
        # A unit fails on its own, or (a question) by passing for another option.
        failed = [
            f.group
            for f in groups
            if not f.decision.passed
            or (box.kind == VoteKind.QUESTION and winner and f.decision.option != winner)
        ]
    passed = aggregate.decision.passed and not failed
    if not aggregate.decision.passed:
        reason = aggregate.decision.reason
    else:
        reason = UNIT_FAILED if failed else PASSED
    if box.kind == VoteKind.RATIFICATION:
        outcome, winner = ("ratified" if passed else "rejected"), None
    elif box.kind == VoteKind.OFFER_DECISION:
        outcome, winner = ("accepted" if passed else "rejected"), None
    else:
        outcome, winner = ("decided", winner) if passed else ("no_winner", None)
    majority = threshold.numerator * 2 == threshold.denominator
    shown_small = [f.group for f in groups if f.small]
    explanation: dict[str, Any] = {
        "rule": "majority" if majority else "fraction",
        "numerator": threshold.numerator,
        "denominator": threshold.denominator,
        "comparison": "more_than" if majority else "at_least",
        "quorum_percent": threshold.quorum_percent,
        "blank_counts": threshold.blank_counts,
        "decided_by": "every_unit" if every_unit else "aggregate",
        "reason": reason,
        "failed_groups": failed,
        "merged_groups": merged_names,
        "small_groups": shown_small,
    }
    return Result(
        kind=box.kind.value,
        options=box.options,
        tally_grouping=(TallyGrouping.PER_UNIT if box.per_unit else TallyGrouping.AGGREGATE).value,
        threshold=threshold.stored(),
        passed=passed,
        outcome=outcome,
        winner=winner,
        explanation=explanation,
        aggregate=aggregate,
        groups=tuple(groups),
        merged=merged,
    )


# -- reading the box ---------------------------------------------------------------------------


def require_closed(vote: Vote) -> None:
    """Rule 3: no count of choices, by anyone, before the close."""
    if vote.status not in COUNTED:
        raise Conflict(NOT_YET)


def count_box(db: Session, vote: Vote) -> Box:
    """The vote's counts: its ballots per group and option (one GROUP BY), its confirmed
    paper batches, and its eligible voters per group (eligible, and challenged with their
    envelope accepted). A count for an option not on the ballot stops the tally (409)."""
    require_closed(vote)
    options = tuple(
        db.scalars(
            select(VoteOption.key)
            .where(VoteOption.vote_id == vote.id)
            .order_by(VoteOption.position)
        )
    )
    known = frozenset(options)
    online: dict[str, dict[str, int]] = {}
    rows = db.execute(
        select(Ballot.tally_group, Ballot.choice, func.count())
        .where(Ballot.vote_id == vote.id)
        .group_by(Ballot.tally_group, Ballot.choice)
    )
    for group, choice, n in rows:
        if choice not in known:
            raise Conflict(FOREIGN_CHOICE)
        online.setdefault(group, {})[choice] = int(n)  # (a group's choice appears once)
    paper: dict[str, Counter[str]] = {}
    batches = db.execute(
        select(PaperBatch.tally_group, PaperBatch.counts).where(
            PaperBatch.vote_id == vote.id, PaperBatch.status == BatchStatus.CONFIRMED
        )
    )
    for group, counts in batches:
        for key, n in counts.items():
            if key not in known or not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise Conflict(FOREIGN_CHOICE)
            paper.setdefault(group, Counter())[key] += n
    eligible: Counter[str] = Counter()
    if vote.eligible_counts is not None:  # fixed at opening (``Vote.eligible_counts``)
        eligible.update({group: int(n) for group, n in vote.eligible_counts.items()})
    else:  # a vote opened before they were kept
        for group, n in db.execute(
            select(Voter.tally_group, func.count())
            .where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
            .group_by(Voter.tally_group)
        ):
            eligible[group] += int(n)
    for group, n in db.execute(
        select(Voter.tally_group, func.count())
        .join(Envelope, Envelope.voter_id == Voter.id)
        .where(
            Envelope.vote_id == vote.id,
            Envelope.status == EnvelopeStatus.ACCEPTED,
            Voter.status == VoterStatus.CHALLENGED,
        )
        .group_by(Voter.tally_group)
    ):
        eligible[group] += int(n)
    names = sorted(set(eligible) | set(online) | set(paper))
    return Box(
        kind=vote.kind,
        options=options,
        per_unit=vote.tally_grouping == TallyGrouping.PER_UNIT,
        groups=tuple(
            GroupCounts(g, eligible.get(g, 0), online.get(g, {}), +paper.get(g, Counter()))
            for g in names
        ),
    )


def tally(db: Session, vote: Vote) -> Result:
    """The vote's result as its box stands now. (Fixing it, with ``box_digest``, in
    ``Vote.result`` is the tallying step's job: ``result.stored()``.)"""
    return compute(count_box(db, vote), threshold_of(vote))


def digest_ballots(ballots: Iterable[tuple[str, str, str]]) -> str:
    """SHA-256 of the ballot box, for the certificate and for ``ratify verify``: over the
    ballots sorted by id, one line each, ``id TAB tally_group TAB choice LF`` in UTF-8, the id
    written as 36 lowercase hex digits and hyphens (``str(uuid.UUID)``). A box of no ballots
    is the digest of nothing. ``ballots`` are (id, group, choice) in any order."""
    digest = hashlib.sha256()
    for ballot_id, group, choice in sorted(ballots):
        digest.update(f"{ballot_id}\t{group}\t{choice}\n".encode())
    return digest.hexdigest()


def digest_receipts(receipts: Iterable[tuple[str, str]]) -> str:
    """SHA-256 of the published receipts, quoted by the audit log's ``vote.tallied`` so that
    ``ratify verify`` finds a receipt changed for another: over the receipts sorted by code,
    one line each, ``code TAB tally_group LF`` in UTF-8. ``receipts`` are (code, group)."""
    digest = hashlib.sha256()
    for code, group in sorted(receipts):
        digest.update(f"{code}\t{group}\n".encode())
    return digest.hexdigest()


def receipts_digest(db: Session, vote: Vote) -> str:
    require_closed(vote)
    rows = db.execute(select(Receipt.code, Receipt.tally_group).where(Receipt.vote_id == vote.id))
    return digest_receipts((code, group) for code, group in rows)


def box_digest(db: Session, vote: Vote) -> str:
    """``digest_ballots`` of the vote's ballot box, read in id order (never insertion order:
    rule 1) and streamed, not held whole; the ids read as text, which is several times
    faster than making a ``uuid.UUID`` of each (a million ballots in a few seconds)."""
    require_closed(vote)
    stmt = (
        select(cast(Ballot.id, String), Ballot.tally_group, Ballot.choice)
        .where(Ballot.vote_id == vote.id)
        .order_by(Ballot.id)
        .execution_options(yield_per=20_000)
    )
    db.flush()  # what the session holds is in the box too (a Core read does not autoflush)
    rows = db.connection().execute(stmt)
    return digest_ballots((_canonical(i), g, c) for i, g, c in rows)


def _canonical(ballot_id: str) -> str:
    """A UUID as ``str(uuid.UUID)`` writes it, from PostgreSQL's text or SQLite's 32 digits."""
    if len(ballot_id) == 32:
        h = ballot_id.lower()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return ballot_id.lower()


@dataclass(frozen=True)
class Recount:
    result: Result
    digest: str
    differences: tuple[str, ...]  # where the recount differs from what was fixed ("" = none)

    @property
    def matches(self) -> bool:
        return not self.differences


def recount(db: Session, vote: Vote) -> Recount:
    """Count the box again and compare with the result and digest fixed at tallying: the
    differences are named by their place in the result (``aggregate.counts[yes].total``)."""
    require_closed(vote)
    if vote.result is None:
        raise Conflict(NOT_TALLIED)
    result = tally(db, vote)
    digest = box_digest(db, vote)
    differences = differ(vote.result, result.stored())
    if digest != vote.box_digest:
        differences.append("box_digest")
    return Recount(result=result, digest=digest, differences=tuple(differences))


def differ(before: Any, after: Any, path: str = "", limit: int = 50) -> list[str]:
    """The places where two stored results differ (lists of figures named by their group or
    option, not by position), at most ``limit``."""
    found: list[str] = []
    _differ(before, after, path, found, limit)
    return found


def _differ(before: Any, after: Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}.{key}" if path and not str(key).startswith("[") else f"{path}{key}"
            if key not in before or key not in after:
                found.append(where)
            else:
                _differ(before[key], after[key], where, found, limit)
        return
    if isinstance(before, list) and isinstance(after, list):
        named_before, named_after = _named(before), _named(after)
        if named_before is not None and named_after is not None:
            _differ(named_before, named_after, path, found, limit)
            return
        if len(before) != len(after):
            found.append(path)
            return
        for index, (b, a) in enumerate(zip(before, after, strict=True)):
            _differ(b, a, f"{path}[{index}]", found, limit)
        return
    if before != after or type(before) is not type(after):
        found.append(path)


def _named(items: list[Any]) -> dict[str, Any] | None:
    """Figures by group, or option counts by option: lists as the result stores them."""
    for key in ("group", "option"):
        if items and all(isinstance(i, dict) and key in i for i in items):
            names = [str(i[key]) for i in items]
            if len(set(names)) == len(names):
                return {f"[{name}]": i for name, i in zip(names, items, strict=True)}
    return None
