"""Vote pages for staff: the list, set-up, documents, the ballot preview, scheduling, the
voter list, and an administrator's extension of an open window."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ratify.authz import Permission
from ratify.community import constituencies
from ratify.community.models import Constituency
from ratify.errors import N_, NotFound, RatifyError
from ratify.orgs.models import OrgKind
from ratify.rosters import eligibility as elig
from ratify.rosters import services as rosters
from ratify.settings import LANGUAGES
from ratify.votes import documents, factors, forms, voters
from ratify.votes import services as votes
from ratify.votes.models import (
    SecondFactor,
    TallyGrouping,
    Vote,
    VoteKind,
    VoterStatus,
    VoteStatus,
)
from ratify.web.i18n import LANGUAGE_NAMES
from ratify.web.routing import ViewContext, page

STATUS_LABELS = {
    VoteStatus.DRAFT: N_("Draft"),
    VoteStatus.SCHEDULED: N_("Scheduled"),
    VoteStatus.OPEN: N_("Open"),
    VoteStatus.CLOSED: N_("Closed"),
    VoteStatus.TALLIED: N_("Counted"),
    VoteStatus.CERTIFIED: N_("Certified"),
}
KIND_LABELS = {
    VoteKind.RATIFICATION: N_("Ratification of a tentative agreement"),
    VoteKind.QUESTION: N_("Question with several options"),
    VoteKind.OFFER_DECISION: N_("Decision on an offer"),
}
GROUPING_LABELS = {
    TallyGrouping.AGGREGATE: N_("All units together"),
    TallyGrouping.PER_UNIT: N_("Each bargaining unit separately"),
}
VOTER_STATUS_LABELS = {
    VoterStatus.ELIGIBLE: N_("Eligible"),
    VoterStatus.EXCLUDED: N_("Excluded"),
    VoterStatus.CHALLENGED: N_("Challenged"),
}
MEMBERSHIP_LABELS = {
    "member": N_("Member"),
    "fee_payer": N_("Fee payer"),
    "non_member": N_("Non-member"),
    "active": N_("Active"),
    "on_leave": N_("On leave"),
    "laid_off": N_("Laid off"),
    "terminated": N_("Terminated"),
}
PER_PAGE = 50
MISSING_SHOWN = 200  # voters lacking second-factor data named on the vote page


def _labels(ctx: ViewContext) -> dict[str, Any]:
    def tr(table: dict[Any, str]) -> dict[str, str]:
        return {str(k): ctx.gettext(v) for k, v in table.items()}

    return {
        "status_labels": tr(STATUS_LABELS),
        "kind_labels": tr(KIND_LABELS),
        "grouping_labels": tr(GROUPING_LABELS),
        "factor_labels": tr(factors.FACTOR_LABELS),
        "voter_status_labels": tr(VOTER_STATUS_LABELS),
        "statuses": tr(MEMBERSHIP_LABELS),
        "reasons": tr(elig.REASONS),
        "language_names": LANGUAGE_NAMES,
    }


def _vote(ctx: ViewContext, *, lock: bool = False) -> Vote:
    """The vote named by the URL, brought up to date with the clock (it opens and closes by
    itself at its window's edges, whether or not a worker runs)."""
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"), lock=lock)
    votes.advance(ctx.db, ctx.org, vote)
    return vote


def _tr_errors(ctx: ViewContext, errors: dict[str, str]) -> dict[str, str]:
    return {k: ctx.gettext(v) for k, v in errors.items()}


# -- the list and a new vote --------------------------------------------------------------------


def votes_list(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    found = votes.list_votes(ctx.db, ctx.org)
    for vote in found:
        votes.advance(ctx.db, ctx.org, vote)
    return ctx.render("votes/list.html", votes=found, **_labels(ctx))


def vote_new(ctx: ViewContext, status_code: int = 200, **extra: Any) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    context: dict[str, Any] = {
        "values": {"kind": "ratification", "languages": [ctx.org.default_language]},
        "all_languages": LANGUAGES,
        **_labels(ctx),
    }
    context.update(extra)
    return ctx.render("votes/new.html", status_code=status_code, **context)


def vote_create(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    rosters.require_union(ctx.org)
    values = forms.form_values(ctx.form)
    languages = [
        v for v in (ctx.form.getlist("languages") if ctx.form else []) if isinstance(v, str)
    ]
    values["languages"] = languages
    try:
        kind = VoteKind(ctx.field("kind"))
    except ValueError:
        return vote_new(
            ctx, 400, values=values, errors={"kind": ctx.gettext(N_("Choose the kind of vote."))}
        )
    try:
        vote = votes.create_vote(
            ctx.db,
            ctx.org,
            actor=ctx.user,
            kind=kind,
            title=ctx.field("title").strip(),
            languages=languages,
        )
    except votes.VoteInvalid as exc:
        return vote_new(ctx, 400, values=values, errors=_tr_errors(ctx, exc.errors))
    return ctx.redirect(ctx.org_url("vote_edit", vote_id=vote.id))


# -- one vote -----------------------------------------------------------------------------------


def vote_detail(
    ctx: ViewContext,
    status_code: int = 200,
    problem: str | None = None,
    errors: dict[str, str] | None = None,
    vote: Vote | None = None,
) -> Response:
    assert ctx.org is not None
    if vote is None:
        vote = _vote(ctx)
    rule = vote.eligibility or {}
    freeze = votes.freezing(ctx.db, vote)
    summary = missing = None
    sharing = 0
    if vote.status != VoteStatus.DRAFT:
        summary = voters.summarize(ctx.db, vote)
        if vote.kind == VoteKind.OFFER_DECISION and vote.status == VoteStatus.SCHEDULED:
            sharing = voters.sharing_contacts(ctx.db, vote)
        # Names only for those who may read members (observers see the count).
        if (
            vote.status == VoteStatus.SCHEDULED
            and summary.missing_factor
            and ctx.can(Permission.MEMBERS_READ)
        ):
            missing = voters.search(ctx.db, vote, missing_factor=True, per_page=MISSING_SHOWN)
    return ctx.render(
        "votes/detail.html",
        status_code=status_code,
        problem=problem,
        errors=errors or {},
        values=forms.form_values(ctx.form) if errors or problem else {},
        vote=vote,
        threshold=votes.threshold_of(vote),
        unit_codes=votes.unit_codes(ctx.db, ctx.org, rule.get("units", [])),
        rule=rule,
        constituency=_constituency(ctx, vote),
        committee=votes.committee_of(ctx.db, vote),
        documents=votes.documents_of(ctx.db, vote),
        to_do=[ctx.gettext(m) for m in votes.missing_for_scheduling(ctx.db, vote)]
        if vote.status == VoteStatus.DRAFT
        else [],
        summary=summary,
        missing=missing,
        freezing=freeze,
        freeze_error=ctx.gettext(vote.freeze_error)
        if vote.freeze_error and vote.status == VoteStatus.DRAFT and freeze is None
        else None,
        small_group=voters.SMALL_GROUP,
        sharing=sharing,
        fallback_factors=[f for f in SecondFactor if f != vote.second_factor],
        tz=ctx.org.timezone,
        **_labels(ctx),
    )


def _constituency(ctx: ViewContext, vote: Vote) -> Constituency | None:
    """An offer decision's constituency (by its id in the vote's rule)."""
    assert ctx.org is not None
    found = votes.constituency_of(vote)
    return constituencies.get_constituency(ctx.db, ctx.org, found) if found else None


def _form_page(ctx: ViewContext, vote: Vote, status_code: int = 200, **extra: Any) -> Response:
    assert ctx.org is not None
    context: dict[str, Any] = {
        "vote": vote,
        "values": forms.vote_values(
            vote, ctx.org.timezone, [u.id for u in votes.committee_of(ctx.db, vote)]
        ),
        "units": rosters.list_units(ctx.db, ctx.org) if ctx.org.kind == OrgKind.UNION else [],
        "constituencies": constituencies.list_constituencies(ctx.db, ctx.org),
        "candidates": votes.committee_candidates(ctx.db, ctx.org),
        "membership_choices": votes.MEMBERSHIP_CHOICES,
        "employment_choices": votes.EMPLOYMENT_CHOICES,
        "fractions": list(votes.FRACTIONS),
        "factors": list(SecondFactor),
        "groupings": list(TallyGrouping),
        "tz": ctx.org.timezone,
        **_labels(ctx),
    }
    context.update(extra)
    return ctx.render("votes/edit.html", status_code=status_code, **context)


def vote_edit(ctx: ViewContext) -> Response:
    vote = _vote(ctx)
    if vote.status != VoteStatus.DRAFT:
        return ctx.redirect(ctx.org_url("vote_detail", vote_id=vote.id))
    return _form_page(ctx, vote)


def vote_update(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    fields = forms.parse_vote_form(ctx.form, vote, ctx.org.timezone)
    try:
        votes.update_vote(ctx.db, ctx.org, vote, actor=ctx.user, fields=fields)
    except votes.VoteInvalid as exc:
        return _form_page(
            ctx,
            vote,
            400,
            values=forms.form_values(ctx.form),
            errors=_tr_errors(ctx, exc.errors),
        )
    return ctx.redirect(ctx.org_url("vote_detail", vote_id=vote.id))


# -- documents ----------------------------------------------------------------------------------


def documents_page(
    ctx: ViewContext,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    vote = _vote(ctx)
    docs = votes.documents_of(ctx.db, vote)
    shown = {lang: (docs[lang].summary_markdown if lang in docs else "") for lang in vote.languages}
    shown.update(values or {})
    return ctx.render(
        "votes/documents.html",
        status_code=status_code,
        vote=vote,
        documents=docs,
        summaries=shown,
        errors=errors or {},
        saved=ctx.request.query_params.get("saved", ""),
        max_mb=documents.MAX_PDF_BYTES // (1024 * 1024),
        **_labels(ctx),
    )


def document_save(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None and ctx.form is not None
    vote = _vote(ctx, lock=True)
    language = str(ctx.request.path_params["language"])
    if language not in vote.languages:
        raise NotFound()
    summary = ctx.field("summary")
    file = ctx.form.get("full_text")
    pdf: bytes | None = None
    name = ""
    if isinstance(file, UploadFile) and file.filename:
        # One byte more than allowed is enough to refuse it, whatever its size.
        pdf = file.file.read(documents.MAX_PDF_BYTES + 1)
        name = file.filename
    try:
        with ctx.db.begin_nested():  # nothing of a refused document is kept
            votes.save_document(
                ctx.db,
                ctx.org,
                vote,
                actor=ctx.user,
                language=language,
                summary=summary,
                pdf=pdf,
                pdf_name=name,
            )
    except RatifyError as exc:
        if exc.status_code == 409:
            raise
        return documents_page(
            ctx,
            exc.status_code,
            errors={language: ctx.gettext(exc.message, **exc.params)},
            values={language: summary},
        )
    return ctx.redirect(ctx.org_url("documents_page", vote_id=vote.id) + f"?saved={language}")


def full_text_pdf(ctx: ViewContext) -> Response:
    vote = _vote(ctx)
    language = str(ctx.request.path_params["language"])
    if language not in vote.languages:
        raise NotFound()
    data, _document = votes.full_text(ctx.db, vote.id, language)
    return agreement_pdf(data, language)


def agreement_pdf(data: bytes, language: str) -> Response:
    """The agreement's full text as a download (for staff here, for members on their pages).
    Never the uploaded name (it could carry anything into a header): a fixed one."""
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="agreement-{language}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- the ballot preview -------------------------------------------------------------------------


def ballot_preview(ctx: ViewContext) -> Response:
    """The ballot exactly as a member reading it in ``lang`` will see it, both steps (choose,
    then review); the final button does nothing here."""
    assert ctx.org is not None
    vote = _vote(ctx)
    language = ctx.request.query_params.get("lang", vote.languages[0])
    if language not in vote.languages:
        raise NotFound()
    ballot = votes.ballot(ctx.db, vote, language)
    chosen = ballot.option(ctx.request.query_params.get("choice", ""))
    back = ctx.org_url("vote_detail", vote_id=vote.id)
    preview_url = ctx.org_url("ballot_preview", vote_id=vote.id)
    full_text = (
        ctx.org_url("full_text_pdf", vote_id=vote.id, language=language)
        if ballot.has_full_text
        else None
    )
    ctx.language = language  # the page in the ballot's language, as the member reads it
    return ctx.render(
        "votes/preview.html",
        ballot=ballot,
        chosen=chosen,
        org_name=ctx.org.name,
        back_url=back,
        preview_url=preview_url,
        full_text_url=full_text,
        tz=ctx.org.timezone,
        other_languages=[lang for lang in vote.languages if lang != language],
        language_names=LANGUAGE_NAMES,
        # A member's page: none of the staff navigation.
        user=None,
        org=None,
        role=None,
    )


# -- the status machine -------------------------------------------------------------------------


def vote_schedule(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    settings = ctx.app.settings
    try:
        with ctx.db.begin_nested():  # a refused schedule freezes nothing
            votes.request_schedule(
                ctx.db, ctx.org, vote, actor=ctx.user, secret_key=settings.secret_key,
                in_request_members=settings.freeze_in_request_members,
            )  # fmt: skip
    except RatifyError as exc:
        if exc.status_code == 409:
            raise
        return vote_detail(ctx, exc.status_code, ctx.gettext(exc.message, **exc.params), vote=vote)
    return ctx.redirect(ctx.org_url("vote_detail", vote_id=vote.id))


def vote_unschedule(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    votes.unschedule(ctx.db, ctx.org, vote, actor=ctx.user)
    return ctx.redirect(ctx.org_url("vote_detail", vote_id=vote.id))


def vote_extend(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    closes_at, error = forms.parse_local_time(ctx.field("closes"), ctx.org.timezone)
    try:
        if error:
            raise votes.VoteInvalid({"closes": error})
        votes.extend(
            ctx.db, ctx.org, vote, actor=ctx.user, closes_at=closes_at, reason=ctx.field("reason")
        )
    except votes.VoteInvalid as exc:
        return vote_detail(ctx, 400, errors=_tr_errors(ctx, exc.errors), vote=vote)
    return ctx.redirect(ctx.org_url("vote_detail", vote_id=vote.id))


# -- the voter list ------------------------------------------------------------------------------


def voters_list(ctx: ViewContext) -> Response:
    vote = _vote(ctx)
    if vote.status == VoteStatus.DRAFT:
        raise NotFound()
    params = ctx.request.query_params
    query = params.get("q", "")[:200]
    try:
        status: VoterStatus | None = VoterStatus(params.get("status", ""))
    except ValueError:
        status = None
    try:
        page_number = min(max(int(params.get("page", "1")), 1), 10**6)
    except ValueError:
        page_number = 1
    found = voters.search(
        ctx.db,
        vote,
        query,
        status=status,
        missing_factor=params.get("missing") == "1",
        page=page_number,
        per_page=PER_PAGE,
    )
    return ctx.render(
        "votes/voters.html",
        vote=vote,
        found=found,
        query=query,
        status=status.value if status else "",
        missing=params.get("missing") == "1",
        summary=voters.summarize(ctx.db, vote),
        **_labels(ctx),
    )


def _voter_action(ctx: ViewContext, action: str) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    try:
        with ctx.db.begin_nested():  # nothing of a refused change is kept
            _apply_voter_action(ctx, vote, action)
    except RatifyError as exc:
        if exc.status_code == 409:
            raise
        errors = getattr(exc, "errors", None) or {action: exc.message}
        translated = {k: ctx.gettext(v, **exc.params) for k, v in errors.items()}
        # Also at the top: the form that failed may no longer be shown (nobody lacks a
        # second factor any more, say).
        problem = next(iter(translated.values()))
        return vote_detail(ctx, exc.status_code, problem, errors=translated, vote=vote)
    return ctx.redirect(ctx.org_url("vote_detail", vote_id=vote.id) + "#voter-list")


def _apply_voter_action(ctx: ViewContext, vote: Vote, action: str) -> None:
    assert ctx.org is not None and ctx.user is not None
    secret = ctx.app.settings.secret_key
    if action == "exclude":
        voters.exclude(
            ctx.db,
            ctx.org,
            vote,
            actor=ctx.user,
            member_number=ctx.field("member_number"),
            reason=ctx.field("reason"),
        )
    elif action == "challenge":
        voters.challenge(
            ctx.db,
            ctx.org,
            vote,
            actor=ctx.user,
            member_number=ctx.field("member_number"),
            reason=ctx.field("reason"),
            group=ctx.field("group"),
            secret_key=secret,
        )
    else:
        try:
            factor = SecondFactor(ctx.field("factor"))
        except ValueError:
            factor = None
        if factor is None or factor == vote.second_factor:
            raise votes.VoteInvalid({"factor": N_("Choose the second factor.")})
        voters.use_fallback_factor(
            ctx.db, ctx.org, vote, actor=ctx.user, factor=factor, secret_key=secret
        )


def voter_exclude(ctx: ViewContext) -> Response:
    return _voter_action(ctx, "exclude")


def voter_challenge(ctx: ViewContext) -> Response:
    return _voter_action(ctx, "challenge")


def second_factor_fallback(ctx: ViewContext) -> Response:
    return _voter_action(ctx, "fallback")


ROUTES = [
    page("/o/{slug}/votes", votes_list, access=Permission.TURNOUT_READ),
    page("/o/{slug}/votes/new", vote_new, access=Permission.VOTE_SETUP),
    page("/o/{slug}/votes", vote_create, access=Permission.VOTE_SETUP, methods=["POST"]),
    page("/o/{slug}/votes/{vote_id}", vote_detail, access=Permission.TURNOUT_READ),
    page("/o/{slug}/votes/{vote_id}/edit", vote_edit, access=Permission.VOTE_SETUP),
    page(
        "/o/{slug}/votes/{vote_id}/edit",
        vote_update,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page("/o/{slug}/votes/{vote_id}/documents", documents_page, access=Permission.VOTE_SETUP),
    page(
        "/o/{slug}/votes/{vote_id}/documents/{language}",
        document_save,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
        upload=True,
    ),
    page(
        "/o/{slug}/votes/{vote_id}/documents/{language}/agreement.pdf",
        full_text_pdf,
        access=Permission.TURNOUT_READ,
    ),
    page("/o/{slug}/votes/{vote_id}/preview", ballot_preview, access=Permission.TURNOUT_READ),
    page(
        "/o/{slug}/votes/{vote_id}/schedule",
        vote_schedule,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/unschedule",
        vote_unschedule,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/extend",
        vote_extend,
        access=Permission.VOTE_EXTEND,
        methods=["POST"],
    ),
    page("/o/{slug}/votes/{vote_id}/voters", voters_list, access=Permission.VOTER_LIST_REVIEW),
    page(
        "/o/{slug}/votes/{vote_id}/voters/exclude",
        voter_exclude,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/voters/challenge",
        voter_challenge,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/second-factor",
        second_factor_fallback,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
]
