"""After the close: counting (closed → tallied), the result page with its reconciliation and
recount, the committee's sign-off (tallied → certified), and the certificate as a page and
a PDF. Nothing here shows a count before the close (DESIGN.md §4 rule 3): every page refuses
a vote that is not closed, and the figures appear once it is counted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from starlette.responses import Response

from ratify.accounts.models import StaffUser
from ratify.accounts.views import client_address
from ratify.audit import services as audit
from ratify.audit.models import AuditEvent
from ratify.authz import Permission
from ratify.db import utcnow
from ratify.errors import N_, Conflict, Forbidden, RatifyError
from ratify.orgs.models import Organization
from ratify.votes import casting, certify, envelopes, reconcile, tally
from ratify.votes import services as votes
from ratify.votes.models import BatchStatus, PaperBatch, Vote, VoteOption, VoteStatus
from ratify.votes.services import BLANK
from ratify.web.pdf import html_to_pdf
from ratify.web.routing import ViewContext, page

COUNTED = (VoteStatus.TALLIED, VoteStatus.CERTIFIED)


# -- counting ------------------------------------------------------------------------------------


def blockers(db: Session, vote: Vote) -> list[tuple[str, dict[str, Any]]]:
    """What keeps a closed vote from being counted, as messages with their parameters."""
    found: list[tuple[str, dict[str, Any]]] = []
    sealed = envelopes.pending(db, vote)
    if sealed:
        found.append((N_("Challenged ballots waiting for a decision: %(n)s."), {"n": sealed}))
    unconfirmed = db.scalar(
        select(func.count())
        .select_from(PaperBatch)
        .where(PaperBatch.vote_id == vote.id, PaperBatch.status == BatchStatus.ENTERED)
    )
    if unconfirmed:
        found.append(
            (
                N_("Paper batches waiting for a second committee member to confirm: %(n)s."),
                {"n": unconfirmed},
            )
        )
    return found


def count(db: Session, org: Organization, vote: Vote, *, actor: StaffUser, secret_key: str) -> None:
    """Count a closed vote and fix its result: challenges decided and paper batches confirmed
    first; the accepted envelopes opened into the box, all together, and the box mixed once
    more (all of it, in this transaction); then the tally and the box's digest, stored on
    the vote (``recount`` compares with them), and the vote ``tallied``."""
    if vote.status in COUNTED:
        raise Conflict(N_("This vote has already been counted."))
    if vote.status != VoteStatus.CLOSED:
        raise Conflict(tally.NOT_YET)
    waiting = blockers(db, vote)
    if waiting:
        message, params = waiting[0]
        raise Conflict(message, **params)
    opened = envelopes.open_accepted(db, vote, secret_key)
    if opened or casting.unmixed(db, vote.id):
        casting.mix(db, vote.id)  # and the close's last ballots, if the worker's mix is not done
    result = tally.tally(db, vote)
    digest = tally.box_digest(db, vote)
    now = utcnow()
    moved = db.execute(
        update(Vote)
        .where(Vote.id == vote.id, Vote.status == VoteStatus.CLOSED)
        .values(status=VoteStatus.TALLIED, result=result.stored(), box_digest=digest,
                tallied_at=now)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if int(getattr(moved, "rowcount", 0)) != 1:
        raise Conflict(N_("This vote has already been counted."))
    db.expire(vote)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.tallied",
        object_type="vote",
        object_id=vote.id,
        data={
            "outcome": result.outcome,
            "box_digest": digest,
            "receipts_digest": tally.receipts_digest(db, vote),
        },
    )


# -- the result in words ---------------------------------------------------------------------------


def option_labels(db: Session, vote: Vote, language: str, gettext: Any) -> dict[str, str]:
    stmt = select(VoteOption.key, VoteOption.labels).where(VoteOption.vote_id == vote.id)
    labels = {
        key: (names.get(language) or names.get(vote.languages[0]) or key)
        for key, names in db.execute(stmt).all()
    }
    labels[BLANK] = gettext(N_("Blank"))
    return labels


REACHED = N_("%(option)s had %(votes)s of %(base)s votes cast: %(needed)s were needed (%(rule)s).")
SHORT = N_(
    "%(option)s had %(votes)s of %(base)s votes cast, fewer than the %(needed)s needed (%(rule)s)."
)
TIED = N_("The votes were tied (%(options)s): a tie fails.")
NO_QUORUM = N_(
    "Too few voters took part: %(ballots)s of %(eligible)s eligible voters voted, where the "
    "quorum of %(percent)s%% asks for %(needed)s."
)


def in_words(result: dict[str, Any], labels: dict[str, str], gettext: Any) -> list[str]:
    """The outcome, the rule applied and why, as the result page and certificate say it."""
    e = result["explanation"]
    decision = result["aggregate"]["decision"]
    if e["rule"] == "majority":
        rule = gettext(N_("more than half of the votes cast"))
    else:
        fraction = f"{e['numerator']}/{e['denominator']}"
        rule = gettext(N_("at least %(fraction)s of the votes cast")) % {"fraction": fraction}
    if result["kind"] == "ratification":
        said = [gettext(N_("Ratified.") if result["passed"] else N_("Rejected."))]
    elif result["kind"] == "offer_decision":
        said = [
            gettext(
                N_("The offer is accepted.")
                if result["passed"]
                else N_("The offer is rejected: the campaign goes on.")
            )
        ]
    elif result["passed"]:
        said = [gettext(N_("Decided: %(option)s.")) % {"option": labels[result["winner"]]}]
    else:
        said = [gettext(N_("No option won."))]
    figures = {
        "option": labels.get(decision["option"] or "", ""),
        "votes": decision["votes_for"],
        "base": decision["base"],
        "needed": decision["needed"],
        "rule": rule,
    }
    reason = e["reason"]
    if reason in (tally.PASSED, tally.UNIT_FAILED):
        said.append(gettext(REACHED) % figures)
    if reason == tally.UNIT_FAILED:
        units = ", ".join(e["failed_groups"])
        said.append(
            gettext(N_("Every unit had to pass, and these did not: %(units)s.")) % {"units": units}
        )
    elif reason == tally.BELOW_THRESHOLD:
        said.append(gettext(SHORT) % figures)
    elif reason == tally.TIE:
        tied = ", ".join(labels.get(key, key) for key in decision["tied"])
        said.append(gettext(TIED) % {"options": tied})
    elif reason == tally.NO_QUORUM:
        aggregate = result["aggregate"]
        said.append(
            gettext(NO_QUORUM)
            % {
                "ballots": aggregate["ballots"],
                "eligible": aggregate["eligible"],
                "percent": e["quorum_percent"],
                "needed": decision["quorum_needed"],
            }
        )
    elif reason == tally.NO_VOTES:
        said.append(gettext(N_("No vote was cast for any option.")))
    if result["tally_grouping"] == "per_unit" and reason != tally.UNIT_FAILED:
        said.append(
            gettext(N_("Every unit had to pass."))
            if e["decided_by"] == "every_unit"
            else gettext(N_("The total decided; each unit's own result is shown beside it."))
        )
    if e["quorum_percent"] and reason != tally.NO_QUORUM:
        said.append(
            gettext(N_("The quorum of %(percent)s%% of eligible voters was met."))
            % {"percent": e["quorum_percent"]}
        )
    if BLANK in result["options"]:
        said.append(
            gettext(N_("Blank ballots counted in the votes cast."))
            if e["blank_counts"]
            else gettext(N_("Blank ballots are reported but not counted in the votes cast."))
        )
    return said


# -- pages ---------------------------------------------------------------------------------------


def _vote(ctx: ViewContext, *, lock: bool = False) -> Vote:
    """The vote, refused (409) before the close; before it is certified only those who may
    see results after the close see anything here (others 403)."""
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"), lock=lock)
    votes.advance(ctx.db, ctx.org, vote)
    tally.require_closed(vote)
    if vote.status != VoteStatus.CERTIFIED and not ctx.can(Permission.RESULTS_AFTER_CLOSE):
        raise Forbidden(N_("The result is shown here once it is certified."))
    return vote


def _context(ctx: ViewContext, vote: Vote) -> dict[str, Any]:
    assert ctx.org is not None
    labels = option_labels(ctx.db, vote, ctx.language, ctx.gettext)
    result = vote.result
    user = ctx.user
    found = reconcile.reconcile(ctx.db, vote)
    signers = certify.signers(ctx.db, vote)
    return {
        "vote": vote,
        "result": result,
        "labels": labels,
        "words": in_words(result, labels, ctx.gettext) if result else [],
        "reconciliation": found,
        "blockers": [ctx.gettext(m, **p) for m, p in blockers(ctx.db, vote)],
        "signers": signers,
        "may_sign": bool(
            user
            and vote.status == VoteStatus.TALLIED
            and ctx.can(Permission.CERTIFY)
            and certify.on_committee(ctx.db, vote, user)
            and user.id not in {u.id for u, _ in signers}
        ),
        "blocked": vote.status == VoteStatus.TALLIED
        and certify.blocked_by_reconciliation(ctx.db, vote, found),
        "tz": ctx.org.timezone,
    }


def result_page(
    ctx: ViewContext, status_code: int = 200, problem: str | None = None, **extra: Any
) -> Response:
    vote = _vote(ctx)
    return ctx.render(
        "votes/result.html", status_code, problem=problem, **_context(ctx, vote), **extra
    )


def _refused(ctx: ViewContext, exc: RatifyError) -> Response:
    """The result page again, saying why (what was refused wrote nothing)."""
    return result_page(ctx, exc.status_code, ctx.gettext(exc.message, **exc.params))


def count_vote(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    try:
        with ctx.db.begin_nested():
            count(ctx.db, ctx.org, vote, actor=ctx.user, secret_key=ctx.app.settings.secret_key)
    except RatifyError as exc:
        return _refused(ctx, exc)
    return ctx.redirect(ctx.org_url("vote_result", vote_id=vote.id))


def recount_vote(ctx: ViewContext) -> Response:
    """Count the box again and compare: read only, whoever may see the result."""
    vote = _vote(ctx)
    try:
        found = tally.recount(ctx.db, vote)
    except RatifyError as exc:
        return _refused(ctx, exc)
    return result_page(ctx, recount=found)


def explain_vote(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    try:
        with ctx.db.begin_nested():
            certify.explain(ctx.db, ctx.org, vote, actor=ctx.user, note=ctx.field("note"))
    except RatifyError as exc:
        return _refused(ctx, exc)
    return ctx.redirect(ctx.org_url("vote_result", vote_id=vote.id))


def sign_vote(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    try:
        # No savepoint: a wrong password's throttle hits must be kept (every other refusal
        # comes before any write).
        certify.sign(
            ctx.db, ctx.app.settings, ctx.app.hasher, ctx.org, vote, user=ctx.user,
            password=ctx.field("password"), client_address=client_address(ctx),
        )  # fmt: skip
    except RatifyError as exc:
        return _refused(ctx, exc)
    return ctx.redirect(ctx.org_url("vote_result", vote_id=vote.id))


def _certificate_context(ctx: ViewContext) -> dict[str, Any]:
    assert ctx.org is not None
    vote = _vote(ctx)
    if vote.status != VoteStatus.CERTIFIED:
        raise Conflict(N_("The certificate exists once the committee has certified the vote."))
    certified = ctx.db.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.object_type == "vote",
            AuditEvent.object_id == str(vote.id),
            AuditEvent.action == "vote.certified",
        )
        .order_by(AuditEvent.seq.desc())
    ).first()
    return {
        **_context(ctx, vote),
        "rule": vote.eligibility or {},
        "unit_codes": votes.unit_codes(ctx.db, ctx.org, (vote.eligibility or {}).get("units", [])),
        "certified_event": certified,
        "statuses": {
            "member": ctx.gettext(N_("members")),
            "fee_payer": ctx.gettext(N_("fee payers")),
            "non_member": ctx.gettext(N_("non-members")),
            "active": ctx.gettext(N_("active")),
            "on_leave": ctx.gettext(N_("on leave")),
            "laid_off": ctx.gettext(N_("laid off")),
            "terminated": ctx.gettext(N_("terminated")),
        },
    }


def certificate_page(ctx: ViewContext) -> Response:
    return ctx.render("votes/certificate.html", **_certificate_context(ctx), for_pdf=False)


def certificate_pdf(ctx: ViewContext) -> Response:
    context = _certificate_context(ctx)
    html = ctx.render("votes/certificate.html", **context, for_pdf=True).body
    data = html_to_pdf(bytes(html).decode())
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="certificate-{context["vote"].id}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )


VOTE = "/o/{slug}/votes/{vote_id}"
ROUTES = [
    page(f"{VOTE}/result", result_page, access=Permission.CERTIFIED_RESULTS_READ,
         name="vote_result"),
    page(f"{VOTE}/result/count", count_vote, access=Permission.TALLY, methods=["POST"]),
    page(f"{VOTE}/result/recount", recount_vote, access=Permission.RESULTS_AFTER_CLOSE,
         methods=["POST"]),
    page(f"{VOTE}/result/explain", explain_vote, access=Permission.CERTIFY, methods=["POST"]),
    page(f"{VOTE}/result/sign", sign_vote, access=Permission.CERTIFY, methods=["POST"]),
    page(f"{VOTE}/certificate", certificate_page, access=Permission.CERTIFIED_RESULTS_READ),
    page(f"{VOTE}/certificate.pdf", certificate_pdf, access=Permission.CERTIFIED_RESULTS_READ),
]  # fmt: skip
