"""``ratify verify``: check an election record (``votes.record``, docs/record.md) from the
record alone, with no database and no secret key, and say what matches and what does not.

From the record's ballots and paper batches it counts again with the app's own rules
(``tally.compute``) and compares with the stored result; it recomputes the ballot box's
digest and compares with the certificate's and the audit log's; it checks the receipts
against the online ballots, group by group, and the reconciliation's figures against the
record's lists; it checks the audit chain, every link and every version-2 hash (version-1
events, written before hashes covered commitments, by their links only), and that the
events the certificate quotes are in it; and it compares the vote's definition and the voter
list's fingerprint with what the audit log recorded. The fingerprint itself is over member
numbers, which the record does not hold: it is quoted, not recomputed.

``verify`` answers a ``Report`` (exit code 0 when everything matches, 1 when something
differs); input that is not an election record of a version this code reads raises
``Unreadable`` (exit code 2), with a message and never a traceback.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ratify.audit import services as audit
from ratify.votes import record as records
from ratify.votes import tally
from ratify.votes.models import VoteKind
from ratify.votes.services import BLANK, Threshold

SHOWN = 20  # differences listed per check; the rest are counted


class Unreadable(Exception):
    """Not an election record this code reads: not JSON, another format or version, or a
    record missing what the format requires."""


@dataclass
class Check:
    name: str
    ok: bool | None  # None: could not be checked from the record (the summary says why)
    summary: str
    differences: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def text(self) -> str:
        lines = [self.title]
        for c in self.checks:
            mark = {True: "ok  ", False: "FAIL", None: "note"}[c.ok]
            lines.append(f"  {mark}  {c.name:<16} {c.summary}")
            lines += [f"          - {d}" for d in c.differences[:SHOWN]]
            if len(c.differences) > SHOWN:
                lines.append(f"          ... and {len(c.differences) - SHOWN} more")
        failed = [c.name for c in self.checks if c.ok is False]
        lines.append(
            "Everything matches."
            if not failed
            else f"Does not match: {', '.join(failed)} ({len(failed)} of {len(self.checks)})."
        )
        return "\n".join(lines) + "\n"


# -- reading ------------------------------------------------------------------------------------


def read(raw: bytes | str) -> records.ElectionRecord:
    try:
        data = json.loads(raw)
    except RecursionError:
        raise Unreadable("this is not an election record: its JSON is nested too deeply") from None
    except ValueError as exc:  # not JSON, or not text at all
        raise Unreadable(f"this is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Unreadable("this is not an election record: it is JSON, but not an object")
    if data.get("format") != records.FORMAT:
        found = f" (its format says {data['format']!r})" if "format" in data else ""
        raise Unreadable(f"this is not a Ratify election record{found}")
    version = data.get("version")
    if type(version) is not int or version != records.VERSION:
        raise Unreadable(
            f"this election record is version {version!r}; this ratify reads version "
            f"{records.VERSION}"
        )
    try:
        return records.ElectionRecord.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise Unreadable(
            f"this election record does not fit version {records.VERSION} of the format: "
            + "; ".join(problems[:5])
            + more
        ) from None


def _where(loc: Iterable[int | str]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "the record"


def _threshold(stored: Mapping[str, Any]) -> Threshold:
    """The vote's threshold as ``services.threshold_of`` reads it (the same defaults), but
    refusing what the app could never have stored."""

    def whole(name: str, default: int | None, low: int) -> int | None:
        value = stored.get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise Unreadable(f"vote.threshold.{name}: a whole number of at least {low} is needed")
        return value

    def flag(name: str) -> bool:
        value = stored.get(name, False)
        if not isinstance(value, bool):
            raise Unreadable(f"vote.threshold.{name}: true or false is needed")
        return value

    units = stored.get("units", "aggregate")
    if units not in ("aggregate", "every_unit"):
        raise Unreadable("vote.threshold.units: aggregate or every_unit is needed")
    numerator, denominator = whole("numerator", 1, 1), whole("denominator", 2, 1)
    assert numerator is not None and denominator is not None
    return Threshold(
        numerator=numerator,
        denominator=denominator,
        quorum_percent=whole("quorum_percent", None, 0),
        units=units,
        blank_counts=flag("blank_counts"),
        merge_small_groups=flag("merge_small_groups"),
    )


# -- checking -----------------------------------------------------------------------------------


def verify(raw: bytes | str) -> Report:
    rec = read(raw)
    vote = rec.vote
    status = "certified" if vote.status == "certified" else "counted, not certified"
    title = (
        f'Election record of "{vote.title}" (vote {vote.id}) of {rec.organization.name}: {status}.'
    )
    events = {e.seq: e for e in rec.audit.events}
    return Report(
        title,
        [
            _tally(rec),
            _box(rec),
            _receipts(rec),
            _voter_list(rec),
            _definition(rec),
            _chain(rec),
            _certificate(rec, events),
        ],
    )


def verify_file(path: str | Path) -> Report:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot read {path}: {exc.strerror}") from None
    return verify(raw)


def _tally(rec: records.ElectionRecord) -> Check:
    """Count again, with the app's rules, from the record's ballots and paper batches."""
    vote = rec.vote
    options = tuple(o.key for o in vote.options)
    real = [key for key in options if key != BLANK]
    if len(set(options)) != len(options) or len(real) < 2:
        raise Unreadable("vote.options: a ballot has two or more distinct options")
    known = frozenset(options)
    problems = []
    online: dict[str, Counter[str]] = {}
    for ballot_id, group, choice in rec.ballots:
        if choice not in known:
            problems.append(f"ballot {ballot_id} holds {choice!r}, which is not on the ballot")
        online.setdefault(group, Counter())[choice] += 1
    paper: dict[str, Counter[str]] = {}
    for batch in rec.paper_batches:
        for key, n in batch.counts.items():
            if key not in known or n < 0:
                problems.append(f"paper batch {batch.label!r} ({batch.group}) counts {n} {key!r}")
            paper.setdefault(batch.group, Counter())[key] += n
    eligible = {g.group: g.eligible for g in rec.voter_list.groups}
    names = sorted(set(eligible) | set(online) | set(paper))
    box = tally.Box(
        kind=VoteKind(vote.kind),
        options=options,
        per_unit=vote.tally_grouping == "per_unit",
        groups=tuple(
            tally.GroupCounts(g, eligible.get(g, 0), online.get(g, {}), +paper.get(g, Counter()))
            for g in names
        ),
    )
    threshold = _threshold(vote.threshold)
    try:
        recounted = tally.compute(box, threshold).stored()
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        # The format's checks should leave nothing the rules cannot count; if they do, say so.
        raise Unreadable(f"the record's figures cannot be counted ({exc!r})") from None
    problems += [f"the stored result differs at {at}" for at in tally.differ(rec.result, recounted)]
    batches = len(rec.paper_batches)
    source = f"{len(rec.ballots)} ballots and {batches} paper batch{'es' if batches != 1 else ''}"
    if problems:
        return Check(
            "tally", False, f"counted again from {source}: not the stored result", problems
        )
    outcome = recounted["outcome"] + (f" ({recounted['winner']})" if recounted["winner"] else "")
    return Check("tally", True, f"counted again from {source}: the stored result, {outcome}")


def _quoted(rec: records.ElectionRecord, action: str) -> list[records.AuditEventPart]:
    """The audit log's events of this vote with this action, oldest first."""
    return [
        e
        for e in rec.audit.events
        if e.action == action and e.object_type == "vote" and e.object_id == rec.vote.id
    ]


def _box(rec: records.ElectionRecord) -> Check:
    digest = tally.digest_ballots(rec.ballots)
    quoted = rec.certificate.box_digest
    problems = []
    ids = Counter(ballot_id for ballot_id, _, _ in rec.ballots)
    problems += [f"ballot id {i} appears {n} times" for i, n in ids.items() if n > 1]
    if digest != quoted:
        problems.append(f"the ballots' digest is {digest}, the certificate says {quoted}")
    seen = []
    for action in ("vote.tallied", "vote.certified"):
        for event in _quoted(rec, action):
            said = event.data.get("box_digest")
            if said != quoted:
                problems.append(f"the audit log's {action} (event {event.seq}) says {said}")
            seen.append(str(event.seq))
    if problems:
        return Check("ballot box", False, "its digest does not match", problems)
    where = f" and the audit log (event{'s' * (len(seen) > 1)} {', '.join(seen)})" if seen else ""
    return Check("ballot box", True, f"digest {digest} matches the certificate{where}")


def _receipts(rec: records.ElectionRecord) -> Check:
    """Receipts = online ballots in each group (rule 7), and the reconciliation's figures are
    the record's own."""
    ballots = Counter(group for _, group, _ in rec.ballots)
    receipts = Counter(group for _, group in rec.receipts)
    paper: Counter[str] = Counter()
    for batch in rec.paper_batches:
        paper[batch.group] += sum(batch.counts.values())
    problems = []
    codes = Counter(code for code, _ in rec.receipts)
    problems += [f"receipt {c} appears {n} times" for c, n in codes.items() if n > 1]
    quoted = {g.group: g for g in rec.reconciliation.groups}
    voted = {g.group: g.voted for g in rec.voter_list.groups}
    unexplained = []
    for group in sorted(set(ballots) | set(receipts) | set(paper) | set(quoted)):
        if receipts[group] != ballots[group]:
            problems.append(
                f"group {group}: {receipts[group]} receipts for {ballots[group]} online ballots"
            )
        figures = quoted.get(group)
        if figures is None:
            problems.append(f"group {group} is missing from the reconciliation")
            continue
        for name, counted in (
            ("online_ballots", ballots[group]),
            ("receipts", receipts[group]),
            ("paper_ballots", paper[group]),
        ):
            said = getattr(figures, name)
            if said != counted:
                problems.append(
                    f"reconciliation of {group}: {name} says {said}, the record holds {counted}"
                )
        if figures.online_voters + figures.paper_voters != voted.get(group, 0):
            problems.append(f"reconciliation of {group}: its voters are not the voter list's")
        if (
            figures.online_voters != figures.online_ballots
            or figures.paper_voters != figures.paper_ballots
        ):
            unexplained.append(group)
    digest = tally.digest_receipts((code, group) for code, group in rec.receipts)
    for event in _quoted(rec, "vote.tallied"):
        said = event.data.get("receipts_digest")
        if said is not None and said != digest:
            problems.append(
                f"the receipts' digest is {digest}, the audit log's vote.tallied (event "
                f"{event.seq}) says {said}"
            )
    matches = not unexplained
    if rec.reconciliation.matches != matches:
        problems.append(f"the reconciliation says matches={rec.reconciliation.matches}")
    if unexplained and not rec.reconciliation.note.strip():
        problems += [
            f"group {g}: voters marked voted and ballots differ, unexplained" for g in unexplained
        ]
    if problems:
        return Check("receipts", False, "receipts and reconciliation do not match", problems)
    shown = ", ".join(f"{g} {n}" for g, n in sorted(receipts.items())) or "none"
    summary = f"{len(rec.receipts)} receipts, one per online ballot in each group ({shown})"
    if unexplained:
        summary += (
            f"; voters and ballots differ in {', '.join(unexplained)}, which the committee "
            f"explained: {rec.reconciliation.note.strip()!r}"
        )
    return Check("receipts", True, summary)


def _fingerprints(rec: records.ElectionRecord) -> list[tuple[int, Any]]:
    return [
        (e.seq, e.data["fingerprint"])
        for e in rec.audit.events
        if e.object_type == "vote" and e.object_id == rec.vote.id and "fingerprint" in e.data
    ]


def _voter_list(rec: records.ElectionRecord) -> Check:
    fingerprint = rec.voter_list.fingerprint
    why = "quoted, not recomputed: it is over member numbers, which the record does not hold"
    quoted = _fingerprints(rec)
    if not quoted:
        return Check("voter list", None, f"fingerprint {fingerprint} {why}")
    seq, said = quoted[-1]
    if said != fingerprint:
        return Check(
            "voter list", False, f"fingerprint {fingerprint} {why}",
            [f"the audit log's last fingerprint of this list (event {seq}) is {said}"],
        )  # fmt: skip
    return Check(
        "voter list",
        True,
        f"fingerprint {fingerprint} {why}; it is the audit log's (event {seq})",
    )


def _moment(value: object) -> object:
    """A time as a moment (the same in any UTC offset), or the value itself if it is not one."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return value


def _definition(rec: records.ElectionRecord) -> Check:
    """The vote as the audit log recorded it when it was scheduled, and its close as the log
    recorded the close (a window may be extended while open)."""
    scheduled = _quoted(rec, "vote.scheduled")
    if not scheduled:
        return Check("vote definition", None, "the audit log holds no vote.scheduled for it")
    event = scheduled[-1]
    said = event.data
    vote = rec.vote
    rule = vote.eligibility.model_dump(exclude_unset=True) if vote.eligibility else None
    cutoff = rule.pop("cutoff") if rule else None
    if rule:
        rule.pop("unit_codes")  # the record's addition: the log names units by id
        # A union's rule or an offer decision's constituency: the other kind's keys are empty.
        union = rule.get("units") is not None
        for key in UNION_RULE_KEYS if not union else COMMUNITY_RULE_KEYS:
            if rule.get(key) is None:
                rule.pop(key, None)
    mine: dict[str, Any] = {
        "title": vote.title,
        "question": vote.question,
        "options": [o.model_dump() for o in vote.options],
        "cutoff": cutoff,
        "eligibility": rule,
        "tally_grouping": vote.tally_grouping,
        "threshold": vote.threshold,
        "signatures_required": vote.signatures_required,
        "second_factor": vote.second_factor,
    }
    problems = [
        f"vote.{name} is not what the audit log recorded at scheduling (event {event.seq})"
        for name in mine
        if mine[name] != said.get(name)
    ]
    closed = _quoted(rec, "vote.closed")
    if not closed:
        problems.append("the audit log holds no vote.closed for it")
    elif _moment(closed[-1].data.get("closes_at")) != _moment(vote.closes_at):
        problems.append(
            f"vote.closes_at is not the close the audit log recorded (event {closed[-1].seq})"
        )
    if problems:
        return Check("vote definition", False, "not the vote that was scheduled", problems)
    return Check(
        "vote definition",
        True,
        f"the vote as scheduled (event {event.seq}) and closed (event {closed[-1].seq}) in the "
        "audit log",
    )


UNION_RULE_KEYS = ("units", "membership", "good_standing", "employment", "joined_days_before")
COMMUNITY_RULE_KEYS = ("constituency", "constituency_name", "criteria", "approval_required")


def _chain(rec: records.ElectionRecord) -> Check:
    """Every link, every version-2 hash, the version boundary and the head."""
    events = sorted(rec.audit.events, key=lambda e: e.seq)
    problems = []
    bounds: set[int] = set()  # where version 1 ends, as each version-2 event says (and hashes)
    for event in events:
        if event.hash_version == 2 and event.v1_until is None:
            problems.append(f"event {event.seq}: version 2 says nothing of where version 1 ends")
        elif event.hash_version == 2 and event.v1_until is not None:
            bounds.add(event.v1_until)
    if len(bounds) > 1:
        problems.append(f"its events disagree on where version 1 ends: {sorted(bounds)}")
    v1_until = min(bounds) if bounds else None  # None: every event is version 1
    prev = audit.GENESIS
    linkage_only = 0
    for position, event in enumerate(events, start=1):
        name = f"event {event.seq} ({event.action})"
        if event.seq != position:
            problems.append(f"{name}: event {position} is missing before it")
            break
        if event.chain != rec.audit.chain or event.org != rec.organization.id:
            problems.append(f"{name}: it belongs to another chain")
        if event.prev != prev:
            problems.append(f"{name}: its link to the event before is broken")
        expected = 1 if v1_until is None or event.seq <= v1_until else 2
        if event.hash_version != expected:
            problems.append(f"{name}: it says hash version {event.hash_version}, not {expected}")
        elif event.hash_version == 1:
            linkage_only += 1
        elif audit.digest_fields(event.model_dump()) != event.hash:
            problems.append(f"{name}: its hash is not the hash of what it says")
        prev = event.hash
    head = rec.audit.head
    last = (events[-1].seq, events[-1].hash) if events else (0, audit.GENESIS)
    if last != (head.seq, head.hash):
        problems.append(f"the head (event {head.seq}) is not its last event")
    if problems:
        return Check("audit chain", False, f"{len(events)} events: broken", problems)
    older = (
        f" ({linkage_only} version-1 events, hashed over values the record does not hold, "
        "checked by their links only)"
        if linkage_only
        else ""
    )
    return Check(
        "audit chain",
        True,
        f"{len(events)} events, every link and hash{older}; head: event {head.seq}, {head.hash}",
    )


def _certificate(
    rec: records.ElectionRecord, events: Mapping[int, records.AuditEventPart]
) -> Check:
    cert = rec.certificate
    problems = []
    for name, ref, action in (
        ("tallied_event", cert.tallied_event, "vote.tallied"),
        ("certified_event", cert.certified_event, "vote.certified"),
    ):
        if ref is None:
            continue
        event = events.get(ref.seq)
        if event is None or event.hash != ref.hash:
            problems.append(
                f"certificate.{name}: event {ref.seq} with that hash is not in the chain"
            )
        elif event.action != action or event.object_id != rec.vote.id:
            problems.append(f"certificate.{name}: event {ref.seq} is not this vote's {action}")
        elif event.hash_version != 2:
            # Ratify hashed at version 2 before it could count a vote: a count quoted by a
            # version-1 event is one whose contents the record cannot vouch for.
            problems.append(f"certificate.{name}: event {ref.seq} is not hash version 2")
    if cert.tallied_event is None:
        problems.append("the audit log holds no vote.tallied for this vote")
    signed = len(_quoted(rec, "vote.signed"))
    if signed != len(cert.signers):
        problems.append(
            f"{len(cert.signers)} signers, but the audit log holds {signed} vote.signed"
        )
    if rec.vote.status != "certified":
        if problems:
            return Check("certificate", False, "not certified; and it does not match", problems)
        return Check(
            "certificate",
            None,
            f"not certified yet: {len(cert.signers)} of {cert.signatures_required} signatures",
        )
    if cert.certified_event is None or cert.certified_at is None:
        problems.append("a certified vote needs its certification event and time")
    if len(cert.signers) < cert.signatures_required:
        problems.append(f"{len(cert.signers)} signatures of the {cert.signatures_required} needed")
    if problems:
        return Check("certificate", False, "does not match", problems)
    assert cert.certified_event is not None
    names = ", ".join(s.name for s in cert.signers)
    return Check(
        "certificate",
        True,
        f"certified {cert.certified_at} by {names}; certification event "
        f"{cert.certified_event.seq}, hash {cert.certified_event.hash} (compare with the "
        "printed certificate)",
    )
