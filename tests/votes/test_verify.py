"""``ratify verify`` on an exported record: the untouched record verifies, in any order of
what has no order; each change (a ballot, a receipt, an audit event, a count) fails and is
named; what is not an election record is refused with a message (exit 2), never a
traceback."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from ratify.audit import services as audit
from ratify.cli import main
from ratify.votes import record, verify
from tests.votes.support import make_union
from tests.votes.test_record import certified_vote


@pytest.fixture
def exported(db: Session, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = certified_vote(db, u, settings)
    return json.loads(record.dumps(record.export(db, u.org, vote, settings.secret_key)))


def _check(data: dict[str, Any]) -> verify.Report:
    return verify.verify(json.dumps(data))


def _failed(report: verify.Report) -> dict[str, list[str]]:
    return {c.name: c.differences for c in report.checks if c.ok is False}


def _rechain(events: list[dict[str, Any]]) -> None:
    """Re-link the events and rehash the version-2 ones, as a forger would."""
    prev = audit.GENESIS
    for event in events:
        event["prev"] = prev
        if event["hash_version"] == 2:
            event["hash"] = audit.digest_fields(event)
        prev = event["hash"]


def test_the_untouched_record_verifies(exported: dict[str, Any]) -> None:
    report = _check(exported)
    assert report.ok and report.exit_code == 0, report.text()
    assert [c.name for c in report.checks] == [
        "tally", "ballot box", "receipts", "voter list", "vote definition", "audit chain",
        "certificate",
    ]  # fmt: skip
    assert all(c.ok for c in report.checks)
    text = report.text()
    assert text.endswith("Everything matches.\n")
    assert "quoted, not recomputed" in report.check("voter list").summary
    assert exported["certificate"]["certified_event"]["hash"] in text  # to compare on paper


def test_order_where_nothing_depends_on_it_changes_nothing(exported: dict[str, Any]) -> None:
    shuffled = copy.deepcopy(exported)
    rng = random.Random(7)
    for name in ("ballots", "receipts", "paper_batches"):
        rng.shuffle(shuffled[name])
    rng.shuffle(shuffled["audit"]["events"])

    def reordered(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: reordered(v) for k, v in items}
        if isinstance(value, list):
            return [reordered(v) for v in value]
        return value

    text = json.dumps(reordered(shuffled), indent=4)
    report = verify.verify(text)
    assert report.ok, report.text()


def test_a_changed_ballot_fails_the_tally_and_the_digest(exported: dict[str, Any]) -> None:
    changed = copy.deepcopy(exported)
    ballot = next(b for b in changed["ballots"] if b[2] == "yes")
    ballot[2] = "no"
    failed = _failed(_check(changed))
    assert set(failed) == {"tally", "ballot box"}
    assert "the stored result differs at aggregate.counts[yes].total" in failed["tally"]
    assert "the stored result differs at aggregate.counts[no].online" in failed["tally"]
    assert any("the ballots' digest is" in d for d in failed["ballot box"])


def test_a_ballot_with_a_choice_not_on_the_ballot_is_named(exported: dict[str, Any]) -> None:
    changed = copy.deepcopy(exported)
    changed["ballots"][0][2] = "maybe"
    failed = _failed(_check(changed))
    assert (
        f"ballot {changed['ballots'][0][0]} holds 'maybe', which is not on the ballot"
        in (failed["tally"])
    )


def test_a_dropped_ballot_fails_the_tally_the_digest_and_the_receipts(
    exported: dict[str, Any],
) -> None:
    changed = copy.deepcopy(exported)
    dropped = changed["ballots"].pop()
    failed = _failed(_check(changed))
    assert set(failed) == {"tally", "ballot box", "receipts"}
    group = dropped[1]
    online = sum(1 for b in exported["ballots"] if b[1] == group)
    assert (
        f"group {group}: {online} receipts for {online - 1} online ballots" in (failed["receipts"])
    )
    assert any(
        d.startswith(f"reconciliation of {group}: online_ballots says {online}")
        for d in failed["receipts"]
    )


def test_a_changed_receipt_is_named(exported: dict[str, Any]) -> None:
    moved = copy.deepcopy(exported)
    receipt = next(r for r in moved["receipts"] if r[1] == "RN")
    receipt[1] = "TECH"  # counted in the wrong group
    failed = _failed(_check(moved))
    assert set(failed) == {"receipts"}
    assert "group RN: 3 receipts for 4 online ballots" in failed["receipts"]
    assert "group TECH: 3 receipts for 2 online ballots" in failed["receipts"]

    copied = copy.deepcopy(exported)
    copied["receipts"][1][0] = copied["receipts"][0][0]  # one code twice, one code lost
    failed = _failed(_check(copied))
    assert f"receipt {copied['receipts'][0][0]} appears 2 times" in failed["receipts"]

    dropped = copy.deepcopy(exported)
    dropped["receipts"].pop()
    assert "receipts" in _failed(_check(dropped))


def test_a_receipt_changed_for_a_fresh_code_fails_on_the_audit_logs_digest(
    exported: dict[str, Any],
) -> None:
    """Codes are random: a new one for an old one keeps every count, but not the digest the
    audit log's vote.tallied quotes."""
    changed = copy.deepcopy(exported)
    changed["receipts"][0][0] = "22222222ZZZZZZZZ"
    failed = _failed(_check(changed))
    assert set(failed) == {"receipts"}
    assert any("the receipts' digest is" in d and "vote.tallied" in d for d in failed["receipts"])


def test_a_changed_audit_event_fails_the_chain_at_that_event(exported: dict[str, Any]) -> None:
    changed = copy.deepcopy(exported)
    event = next(e for e in changed["audit"]["events"] if e["action"] == "vote.scheduled")
    event["data"]["title"] = "Another contract"
    failed = _failed(_check(changed))
    assert failed["audit chain"] == [
        f"event {event['seq']} (vote.scheduled): its hash is not the hash of what it says"
    ]
    # Rehashed and relinked by a forger, the chain holds, but the certificate's quoted
    # certification event (and the printed one) no longer does, nor the vote's definition.
    _rechain(changed["audit"]["events"])
    changed["audit"]["head"]["hash"] = changed["audit"]["events"][-1]["hash"]
    failed = _failed(_check(changed))
    assert "audit chain" not in failed
    assert any("is not in the chain" in d for d in failed["certificate"])
    assert "vote.title is not what the audit log recorded at scheduling" in " ".join(
        failed["vote definition"]
    )


def test_a_removed_or_reordered_audit_event_is_named(exported: dict[str, Any]) -> None:
    removed = copy.deepcopy(exported)
    del removed["audit"]["events"][3]
    assert "event 4 is missing before it" in " ".join(_failed(_check(removed))["audit chain"])
    truncated = copy.deepcopy(exported)
    truncated["audit"]["events"].pop()
    failed = _failed(_check(truncated))["audit chain"]
    assert any("is not its last event" in d for d in failed)


def test_a_changed_count_in_the_stored_result_is_named(exported: dict[str, Any]) -> None:
    changed = copy.deepcopy(exported)
    counts = changed["result"]["aggregate"]["counts"]
    yes = next(c for c in counts if c["option"] == "yes")
    yes["total"] += 1
    failed = _failed(_check(changed))
    assert failed == {"tally": ["the stored result differs at aggregate.counts[yes].total"]}


def test_a_changed_rule_or_fingerprint_is_named(exported: dict[str, Any]) -> None:
    changed = copy.deepcopy(exported)
    changed["vote"]["threshold"]["numerator"] = 3
    changed["vote"]["threshold"]["denominator"] = 4
    failed = _failed(_check(changed))
    assert "vote definition" in failed and "tally" in failed
    fingerprint = copy.deepcopy(exported)
    fingerprint["voter_list"]["fingerprint"] = "0" * 64
    assert "voter list" in _failed(_check(fingerprint))


def test_a_changed_box_with_its_digest_still_fails_on_the_audit_log(
    exported: dict[str, Any],
) -> None:
    """Ballots, result and the certificate's digest changed together: the hashed audit log
    still quotes the digest that was counted."""
    changed = copy.deepcopy(exported)
    ballot = next(b for b in changed["ballots"] if b[2] == "yes")
    ballot[2] = "no"
    from ratify.votes import tally

    changed["certificate"]["box_digest"] = tally.digest_ballots(map(tuple, changed["ballots"]))
    failed = _failed(_check(changed))
    assert any("the audit log's vote.tallied" in d for d in failed["ballot box"])


def test_version_one_events_are_checked_by_their_links_only(exported: dict[str, Any]) -> None:
    """Events from before hash version 2: linkage only, and no later event may pass as one."""
    older = copy.deepcopy(exported)
    events = older["audit"]["events"]
    for event in events[:3]:
        event.update(hash_version=1, v1_until=None, hash=f"{event['seq']:064x}")
    for event in events[3:]:
        event["v1_until"] = 3
    _rechain(events)
    older["audit"]["head"]["hash"] = events[-1]["hash"]
    cert = older["certificate"]
    by_seq = {e["seq"]: e for e in events}
    for name in ("tallied_event", "certified_event"):
        cert[name]["hash"] = by_seq[cert[name]["seq"]]["hash"]
    report = _check(older)
    assert report.ok, report.text()
    assert "3 version-1 events" in report.check("audit chain").summary

    downgraded = copy.deepcopy(older)
    event = downgraded["audit"]["events"][5]
    event.update(hash_version=1, v1_until=None)
    event["data"]["forged"] = True
    failed = _failed(_check(downgraded))
    assert (
        f"event {event['seq']} ({event['action']}): it says hash version 1, not 2"
        in (failed["audit chain"])
    )


def test_a_count_quoted_by_version_one_events_is_not_vouched_for(exported: dict[str, Any]) -> None:
    every = copy.deepcopy(exported)
    for event in every["audit"]["events"]:
        event.update(hash_version=1, v1_until=None)
    failed = _failed(_check(every))
    assert "certificate" in failed
    assert any("is not hash version 2" in d for d in failed["certificate"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "this is not JSON"),
        (b"", "this is not JSON"),
        (b'{"format": ', "this is not JSON"),
        (b"[1, 2, 3]", "not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"type": "FeatureCollection", "features": []}', "not a Ratify election record"),
        (b'{"format": "helios-election", "version": 1}', "its format says 'helios-election'"),
        (b'{"format": "ratify-election-record", "version": 2}', "version 2"),
        (b'{"format": "ratify-election-record", "version": "1"}', "version '1'"),
        (b'{"format": "ratify-election-record", "version": 1}', "does not fit version 1"),
    ],
)
def test_what_is_not_a_record_is_refused_with_a_message(raw: bytes, message: str) -> None:
    with pytest.raises(verify.Unreadable, match=message):
        verify.verify(raw)


def test_a_record_missing_or_mistyping_a_field_names_it(exported: dict[str, Any]) -> None:
    missing = copy.deepcopy(exported)
    del missing["certificate"]["box_digest"]
    with pytest.raises(verify.Unreadable, match=r"certificate\.box_digest: Field required"):
        _check(missing)
    mistyped = copy.deepcopy(exported)
    mistyped["ballots"][2][1] = 7
    with pytest.raises(verify.Unreadable, match=r"ballots\[2\]\[1\]: Input should be a valid"):
        _check(mistyped)
    counted = copy.deepcopy(exported)
    counted["paper_batches"][0]["counts"]["no"] = "1"
    with pytest.raises(verify.Unreadable, match=r"paper_batches\[0\]\.counts\.no"):
        _check(counted)
    zero = copy.deepcopy(exported)
    zero["vote"]["threshold"]["denominator"] = 0
    with pytest.raises(verify.Unreadable, match="denominator"):
        _check(zero)
    single = copy.deepcopy(exported)
    single["vote"]["options"] = single["vote"]["options"][:1]
    with pytest.raises(verify.Unreadable, match="two or more distinct options"):
        _check(single)


def test_the_command_exits_0_1_or_2_and_never_shows_a_traceback(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    runner = CliRunner()
    good = tmp_path / "record.json"
    good.write_text(json.dumps(exported), encoding="utf-8")
    result = runner.invoke(main, ["verify", str(good)])
    assert result.exit_code == 0 and "Everything matches." in result.stdout

    exported["ballots"].pop()
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(exported), encoding="utf-8")
    result = runner.invoke(main, ["verify", str(bad)])
    assert result.exit_code == 1
    assert "FAIL  tally" in result.stdout and "Does not match: tally, ballot box, receipts" in (
        result.stdout
    )

    for name, content in (("garbage.json", b"\x00\xff\xfe garbage"), ("other.json", b"{}")):
        path = tmp_path / name
        path.write_bytes(content)
        result = runner.invoke(main, ["verify", str(path)])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: this is not")
        assert "Traceback" not in result.output and result.stdout == ""
    missing = runner.invoke(main, ["verify", str(tmp_path / "nothing.json")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    folder = runner.invoke(main, ["verify", str(tmp_path)])
    assert folder.exit_code == 2 and "Traceback" not in folder.output
