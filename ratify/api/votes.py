"""Votes through the JSON API: the list, a new draft and changes to its set-up, one vote with
its frozen voter list in counts, and turnout; once counted, its result, its certificate and
its election record. Nothing reads the ballot box before the count (DESIGN.md §4 rule 3): the
result, certificate and record answer 409 until then.

A draft is made and set up by the same services, with the same checks, as on the set-up
pages: this module only turns JSON into their arguments (unit codes and committee emails into
ids) and their form-field errors back into the body's field names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ratify.api import services as tokens
from ratify.api.routing import ApiContext, Unprocessable, api_route
from ratify.api.schemas import (
    AuditEventRef,
    CertificateOut,
    CommitteeMemberOut,
    FieldError,
    GroupTurnoutOut,
    HourOut,
    OptionIn,
    OptionOut,
    ReconciliationOut,
    ResultOut,
    SetupFields,
    SignerOut,
    StoredResultOut,
    ThresholdOut,
    TurnoutOut,
    VoteCreateIn,
    VoteDetailOut,
    VoteList,
    VoteOut,
    VoterListOut,
    VoteRuleOut,
    VoteSetupIn,
)
from ratify.authz import Permission
from ratify.errors import N_, Conflict
from ratify.rosters import services as rosters
from ratify.votes import certify, reconcile, record, results, turnout, voters
from ratify.votes import services as votes
from ratify.votes.models import Channel, Vote, VoteStatus

API = "/api/v1/orgs/{slug}"


def _out(vote: Vote) -> dict[str, object]:
    return {
        "id": vote.id,
        "title": vote.title,
        "kind": vote.kind.value,
        "status": vote.status.value,
        "languages": list(vote.languages),
        "opens_at": vote.opens_at,
        "closes_at": vote.closes_at,
    }


def _vote(ctx: ApiContext, *, lock: bool = False) -> Vote:
    # Another organization's vote is 404.
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"), lock=lock)
    votes.advance(ctx.db, ctx.org, vote)
    return vote


def votes_list(ctx: ApiContext) -> VoteList:
    found = votes.list_votes(ctx.db, ctx.org)
    for vote in found:
        votes.advance(ctx.db, ctx.org, vote)
    return VoteList(items=[VoteOut.model_validate(_out(v)) for v in found])


def vote_read(ctx: ApiContext) -> VoteDetailOut:
    return _detail(ctx, _vote(ctx))


def _rule(ctx: ApiContext, vote: Vote) -> VoteRuleOut | None:
    rule = vote.eligibility
    if not rule or not vote.cutoff or "units" not in rule:
        return None  # an offer decision's electorate is a constituency
    return VoteRuleOut(
        cutoff=vote.cutoff,
        units=votes.unit_codes(ctx.db, ctx.org, rule["units"]),
        membership=rule["membership"],
        good_standing=rule["good_standing"],
        employment=rule["employment"],
        joined_days_before=rule.get("joined_days_before"),
    )


def _detail(ctx: ApiContext, vote: Vote) -> VoteDetailOut:
    threshold = votes.threshold_of(vote)
    emails = ctx.can(Permission.VOTE_SETUP)  # those who may set a vote up name its committee
    setup: dict[str, Any] = {
        "question": vote.question,
        "options": [OptionOut(key=o.key, labels=o.labels) for o in votes.worded_options(vote)],
        "allow_blank": vote.allow_blank,
        "eligibility": _rule(ctx, vote),
        "tally_grouping": vote.tally_grouping.value,
        "threshold": ThresholdOut(
            numerator=threshold.numerator,
            denominator=threshold.denominator,
            quorum_percent=threshold.quorum_percent,
            units=threshold.units,
            blank_counts=threshold.blank_counts,
            merge_small_groups=threshold.merge_small_groups,
        ),
        "second_factor": vote.second_factor.value,
        "mail_letters": vote.mail_letters,
        "committee": [
            CommitteeMemberOut(name=u.name, email=u.email if emails else None)
            for u in votes.committee_of(ctx.db, vote)
        ],
        "signatures_required": vote.signatures_required,
    }
    summary = None
    if vote.status != VoteStatus.DRAFT:
        counts = voters.summarize(ctx.db, vote)
        summary = VoterListOut(
            fingerprint=vote.voter_fingerprint,
            eligible=counts.eligible,
            excluded=counts.excluded,
            challenged=counts.challenged,
            missing_second_factor=counts.missing_factor,
            groups=counts.groups,
            small_groups=sorted(counts.small_groups),
        )
    return VoteDetailOut.model_validate({**_out(vote), **setup, "voter_list": summary})


# -- a new draft, and changes to its set-up --------------------------------------------------


def vote_create(ctx: ApiContext) -> VoteDetailOut:
    """A new draft (a ratification's Yes and No, or a question's options), with its set-up
    saved in the same call when the body gives any of it."""
    rosters.require_union(ctx.org)
    body = ctx.body_as(VoteCreateIn)
    # (Without a language, the service's refusal names the field.)
    problems = _foreign_languages(body, body.languages) if body.languages else []
    if problems:
        raise Unprocessable(problems)
    try:
        vote = votes.create_vote(
            ctx.db,
            ctx.org,
            actor=None,
            actor_label=tokens.actor_label(ctx.token),
            kind=body.kind,
            title=body.title.strip(),
            languages=list(body.languages),
            options=_labels(body.options) if body.options is not None else None,
        )
    except votes.VoteInvalid as exc:
        raise Unprocessable(_named(exc.errors)) from None
    if any(getattr(body, name) is not None for name in body.model_fields_set - CREATE_FIELDS):
        _save_setup(ctx, vote, body)
    ctx.response_headers["Location"] = ctx.url_path("api_vote_read", vote_id=vote.id)
    return _detail(ctx, vote)


def vote_update(ctx: ApiContext) -> VoteDetailOut:
    """A change to a draft's set-up; refused (409) once the vote is scheduled, as on its
    pages."""
    vote = _vote(ctx, lock=True)
    votes.require_draft(vote)
    body = ctx.body_as(VoteSetupIn)
    problems = _foreign_languages(body, vote.languages)
    if problems:
        raise Unprocessable(problems)
    _save_setup(ctx, vote, body, title=body.title)
    return _detail(ctx, vote)


# What a new draft is made with; any other field given is its set-up.
CREATE_FIELDS = frozenset({"kind", "title", "languages", "options"})
# Set-up fields the body and the service name alike.
SCALARS = (
    "opens_at",
    "closes_at",
    "tally_grouping",
    "second_factor",
    "mail_letters",
    "allow_blank",
    "signatures_required",
)


def _save_setup(
    ctx: ApiContext, vote: Vote, body: SetupFields, *, title: str | None = None
) -> None:
    """The saved set-up with what the body gives, saved whole by the service (or refused with
    every problem named, nothing written)."""
    fields = votes.saved_fields(vote, [u.id for u in votes.committee_of(ctx.db, vote)])
    problems: list[FieldError] = []
    changes: dict[str, Any] = {}
    if title is not None:
        changes["title"] = title.strip()
    if body.question is not None:
        changes["question"] = {lang: text.strip() for lang, text in body.question.items()}
    if body.options is not None:
        changes["options"] = _labels(body.options)
    for name in SCALARS:
        if getattr(body, name) is not None:
            changes[name] = getattr(body, name)
    if body.eligibility is not None:
        rule = body.eligibility
        units = {unit.code: unit.id for unit in rosters.list_units(ctx.db, ctx.org)}
        problems += [
            FieldError(
                index=i, field="eligibility.units", message=N_("No bargaining unit has this code.")
            )
            for i, code in enumerate(rule.units)
            if code not in units
        ]
        changes.update(
            cutoff=rule.cutoff,
            unit_ids=frozenset(units[code] for code in rule.units if code in units),
            membership=frozenset(m.value for m in rule.membership),
            good_standing=rule.good_standing,
            employment=frozenset(e.value for e in rule.employment),
            joined_days_before=rule.joined_days_before,
        )
    if body.threshold is not None:
        asked = body.threshold
        changes["threshold"] = votes.Threshold(
            asked.numerator,
            asked.denominator,
            asked.quorum_percent,
            asked.units,
            blank_counts=asked.blank_counts,
            merge_small_groups=asked.merge_small_groups,
        )
    if body.committee is not None:
        staff = {u.email.casefold(): u.id for u in votes.committee_candidates(ctx.db, ctx.org)}
        emails = [email.strip().casefold() for email in body.committee]
        problems += [
            FieldError(
                index=i,
                field="committee",
                message=N_("Only staff with the election committee role can certify."),
            )
            for i, email in enumerate(emails)
            if email not in staff
        ]
        changes["committee_ids"] = frozenset(staff[e] for e in emails if e in staff)
    fields = replace(fields, **changes)
    if problems:
        # Named by the body's own fields; the service names the rest, and nothing is written.
        named = {p.field for p in problems}
        found = votes.check_fields(ctx.db, ctx.org, vote, fields)
        raise Unprocessable(problems + [e for e in _named(found) if e.field not in named])
    try:
        votes.update_vote(
            ctx.db,
            ctx.org,
            vote,
            actor=None,
            actor_label=tokens.actor_label(ctx.token),
            fields=fields,
        )
    except votes.VoteInvalid as exc:
        raise Unprocessable(_named(exc.errors)) from None


def _labels(options: list[OptionIn]) -> list[dict[str, str]]:
    return [{lang: label.strip() for lang, label in o.labels.items()} for o in options]


def _foreign_languages(body: SetupFields, languages: Sequence[str]) -> list[FieldError]:
    """Wording in a language the ballot is not offered in would be silently dropped: refused."""
    message = N_("The ballot is not offered in this language.")
    problems = [
        FieldError(field=f"question.{lang}", message=message)
        for lang in body.question or {}
        if lang not in languages
    ]
    problems += [
        FieldError(index=i, field=f"options.labels.{lang}", message=message)
        for i, option in enumerate(body.options or [])
        for lang in option.labels
        if lang not in languages
    ]
    return problems


# The set-up form's field names (which the services' errors use) -> the body's.
_FIELDS = {
    "opens": "opens_at",
    "closes": "closes_at",
    "cutoff": "eligibility.cutoff",
    "units": "eligibility.units",
    "membership": "eligibility.membership",
    "employment": "eligibility.employment",
    "joined_days": "eligibility.joined_days_before",
    "threshold_fraction": "threshold",
    "quorum_percent": "threshold.quorum_percent",
    "blank_counts": "threshold.blank_counts",
}
_PER_LANGUAGE = re.compile(r"(question|options)_([a-z]{2})")
_ONE_OPTION = re.compile(r"option_(\d+)_([a-z]{2})")


def _named(errors: dict[str, str]) -> list[FieldError]:
    named = []
    for name, message in errors.items():
        index: int | None = None
        if match := _PER_LANGUAGE.fullmatch(name):
            what, lang = match.groups()
            field = f"question.{lang}" if what == "question" else f"options.labels.{lang}"
        elif match := _ONE_OPTION.fullmatch(name):
            index, field = int(match[1]), f"options.labels.{match[2]}"
        else:
            field = _FIELDS.get(name, name)
        named.append(FieldError(index=index, field=field, message=message))
    return named


def vote_turnout(ctx: ApiContext) -> TurnoutOut:
    found = turnout.turnout(ctx.db, _vote(ctx))
    return TurnoutOut(
        eligible=found.total.eligible,
        voted=found.total.voted,
        groups=[
            GroupTurnoutOut(
                group=g.group,
                eligible=g.eligible,
                voted=g.voted,
                online=g.by_channel.get(Channel.ONLINE, 0),
                paper_or_in_person=g.by_channel.get(Channel.PAPER, 0)
                + g.by_channel.get(Channel.IN_PERSON, 0),
            )
            for g in found.groups
        ],
        hourly=[HourOut(hour=hour, voted=count) for hour, count in found.hourly],
    )


# -- after the count: result, certificate, record ---------------------------------------------


def _counted(ctx: ApiContext) -> Vote:
    """The vote, as the result page shows it: 409 before the close (rule 3), and 403 before
    certification for a token without ``votes.results_after_close`` (the routes declare
    ``votes.certified_results``); 409 while closed but not counted."""
    vote = _vote(ctx)
    record.require_readable(vote, results_after_close=ctx.can(Permission.RESULTS_AFTER_CLOSE))
    record.require_counted(vote)
    return vote


def _result(ctx: ApiContext, vote: Vote) -> dict[str, Any]:
    assert vote.result is not None and vote.tallied_at is not None
    labels = results.option_labels(ctx.db, vote, ctx.language, ctx.gettext)
    found = reconcile.reconcile(ctx.db, vote).as_dict()
    return {
        "vote_id": vote.id,
        "status": vote.status.value,
        "tallied_at": vote.tallied_at,
        "certified_at": vote.certified_at,
        "box_digest": vote.box_digest,
        "result": StoredResultOut.model_validate(vote.result),
        "words": results.in_words(vote.result, labels, ctx.gettext),
        "reconciliation": ReconciliationOut.model_validate(
            {**found, "note": vote.reconciliation_note}
        ),
    }


def vote_result(ctx: ApiContext) -> ResultOut:
    return ResultOut.model_validate(_result(ctx, _counted(ctx)))


CERTIFIED_ONLY = N_("The certificate exists once the committee has certified the vote.")


def vote_certificate(ctx: ApiContext) -> CertificateOut:
    vote = _counted(ctx)
    if vote.status != VoteStatus.CERTIFIED:
        raise Conflict(CERTIFIED_ONLY)
    event = record.quoted_event(ctx.db, vote, "vote.certified")
    return CertificateOut.model_validate(
        {
            **_result(ctx, vote),
            "organization": ctx.org.name,
            "title": vote.title,
            "question": vote.question,
            "opens_at": vote.opens_at,
            "closes_at": vote.closes_at,
            "eligibility": _rule(ctx, vote),
            "voter_fingerprint": vote.voter_fingerprint,
            "audit_event": AuditEventRef.model_validate(event) if event else None,
            "signatures_required": vote.signatures_required,
            "signers": [
                SignerOut(name=user.name, signed_at=signature.signed_at)
                for user, signature in certify.signers(ctx.db, vote)
            ],
        }
    )


def vote_record(ctx: ApiContext) -> record.ElectionRecord:
    """The election record (docs/record.md), as the result page's download; audited."""
    vote = _counted(ctx)
    record.record_download(
        ctx.db, ctx.org, vote, actor=None, actor_label=tokens.actor_label(ctx.token), via="api"
    )
    exported = record.export(ctx.db, ctx.org, vote, ctx.app.settings.secret_key)
    return record.ElectionRecord.model_validate(exported)


ROUTES = [
    api_route(f"{API}/votes", votes_list, access=Permission.TURNOUT_READ, response=VoteList),
    api_route(f"{API}/votes", vote_create, access=Permission.VOTE_SETUP, methods=["POST"],
              body=VoteCreateIn, response=VoteDetailOut, status_code=201),
    api_route(f"{API}/votes/{{vote_id}}", vote_read, access=Permission.TURNOUT_READ,
              response=VoteDetailOut),
    api_route(f"{API}/votes/{{vote_id}}", vote_update, access=Permission.VOTE_SETUP,
              methods=["PATCH"], body=VoteSetupIn, response=VoteDetailOut),
    api_route(f"{API}/votes/{{vote_id}}/turnout", vote_turnout, access=Permission.TURNOUT_READ,
              response=TurnoutOut),
    api_route(f"{API}/votes/{{vote_id}}/result", vote_result,
              access=Permission.CERTIFIED_RESULTS_READ, response=ResultOut),
    api_route(f"{API}/votes/{{vote_id}}/certificate", vote_certificate,
              access=Permission.CERTIFIED_RESULTS_READ, response=CertificateOut),
    api_route(f"{API}/votes/{{vote_id}}/record", vote_record,
              access=Permission.CERTIFIED_RESULTS_READ, response=record.ElectionRecord),
]  # fmt: skip
