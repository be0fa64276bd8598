"""Pages for paper and in-person ballots: the strike-off (phone-first, no JavaScript needed)
while the vote is open, and the paper batches per tally group after the close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from ratify.authz import Permission
from ratify.errors import N_, BadRequest, RatifyError
from ratify.votes import paper, voters
from ratify.votes import services as votes
from ratify.votes.models import BatchStatus, Channel, PaperBatch, Vote, VoteStatus
from ratify.web.routing import ViewContext, page

PER_PAGE = 10  # results on a phone's screen or two
STATE_LABELS = {
    paper.VoterState.NOT_VOTED: N_("Not yet voted"),
    paper.VoterState.ONLINE: N_("Voted online"),
    paper.VoterState.PAPER: N_("Voted on paper"),
    paper.VoterState.IN_PERSON: N_("Voted in person"),
    paper.VoterState.EXCLUDED: N_("Excluded"),
}
BATCH_STATUS_LABELS = {
    BatchStatus.ENTERED: N_("Entered, waiting for a second committee member"),
    BatchStatus.CONFIRMED: N_("Confirmed: counted"),
    BatchStatus.WITHDRAWN: N_("Withdrawn"),
}


def _vote(ctx: ViewContext, *, lock: bool = False) -> Vote:
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"), lock=lock)
    votes.advance(ctx.db, ctx.org, vote)
    return vote


def _tr(ctx: ViewContext, table: dict[Any, str]) -> dict[str, str]:
    return {str(k): ctx.gettext(v) for k, v in table.items()}


# -- strike-off -----------------------------------------------------------------------------------


def _page_number(ctx: ViewContext) -> int:
    try:
        return min(max(int(ctx.request.query_params.get("page", "1")), 1), 10**6)
    except ValueError:
        return 1


def strike_off_page(
    ctx: ViewContext,
    status_code: int = 200,
    problem: str | None = None,
    query: str | None = None,
    vote: Vote | None = None,
) -> Response:
    assert ctx.org is not None
    if vote is None:
        vote = _vote(ctx)
    if query is None:
        query = ctx.request.query_params.get("q", "")
    query = query.strip()[:200]
    found = (
        voters.search(ctx.db, vote, query, page=_page_number(ctx), per_page=PER_PAGE)
        if query
        else None
    )
    marked = ctx.request.query_params.get("marked", "")
    return ctx.render(
        "votes/paper/strike_off.html",
        status_code=status_code,
        problem=problem,
        vote=vote,
        query=query,
        found=found,
        state_of=paper.state_of,
        marked=marked,
        is_open=vote.status == VoteStatus.OPEN,
        state_labels=_tr(ctx, STATE_LABELS),
        pager_query=lambda n: urlencode({"q": query, "page": n}),
    )


def strike_off(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    number = ctx.field("member_number").strip()
    query = ctx.field("q") or number
    try:
        try:
            channel = Channel(ctx.field("channel"))
        except ValueError:
            raise BadRequest(N_("Choose on paper or in person.")) from None
        with ctx.db.begin_nested():  # a refused strike-off writes nothing
            voter = paper.strike_off(
                ctx.db, ctx.org, vote, actor=ctx.user, member_number=number, channel=channel
            )
    except RatifyError as exc:
        return strike_off_page(
            ctx,
            exc.status_code,
            problem=ctx.gettext(exc.message, **exc.params),
            query=query,
            vote=vote,
        )
    # Back to the search, showing the voter as now stored (a reload posts nothing again).
    target = ctx.org_url("strike_off_page", vote_id=vote.id)
    return ctx.redirect(target + "?" + urlencode({"q": query[:200], "marked": voter.member_number}))


# -- paper batches --------------------------------------------------------------------------------


def paper_page(
    ctx: ViewContext,
    status_code: int = 200,
    problem: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    vote: Vote | None = None,
) -> Response:
    """The batches per tally group: refused before the close (rule 3), read-only once the
    vote is counted."""
    assert ctx.org is not None
    if vote is None:
        vote = _vote(ctx)
    paper.require_after_close(vote)
    language = ctx.language if ctx.language in vote.languages else vote.languages[0]
    options = [(o.key, o.labels.get(language) or o.key) for o in vote.options]
    if vote.allow_blank:
        options.append((paper.BLANK, ctx.gettext(N_("Blank"))))
    return ctx.render(
        "votes/paper/batches.html",
        status_code=status_code,
        problem=problem,
        errors=errors or {},
        values=values or {},
        vote=vote,
        groups=paper.paper_groups(ctx.db, vote),
        options=options,
        counting=vote.status == VoteStatus.CLOSED,
        batch_status_labels=_tr(ctx, BATCH_STATUS_LABELS),
        tz=ctx.org.timezone,
        all_voters=voters.AGGREGATE_GROUP,
    )


def _counts(ctx: ViewContext) -> dict[str, str]:
    """The form's ``count_KEY`` fields by key; a key sent twice is a forged form."""
    counts: dict[str, str] = {}
    for name, value in ctx.form.multi_items() if ctx.form is not None else []:
        if not name.startswith("count_"):
            continue
        key = name.removeprefix("count_")
        if key in counts or not isinstance(value, str):
            raise BadRequest(N_("Count only the options on this vote's ballot."))
        counts[key] = value
    return counts


def batch_enter(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)  # entries one at a time: the limit holds under concurrency
    values = {
        name: value
        for name, value in (ctx.form.multi_items() if ctx.form is not None else [])
        if isinstance(value, str) and name != "csrf_token"
    }
    try:
        paper.require_after_close(vote)
        with ctx.db.begin_nested():
            paper.enter_batch(
                ctx.db,
                ctx.org,
                vote,
                actor=ctx.user,
                group=ctx.field("group"),
                label=ctx.field("label"),
                counts=_counts(ctx),
            )
    except paper.BatchInvalid as exc:
        errors = {
            name: ctx.gettext(message, **exc.field_params.get(name, {}))
            for name, message in exc.errors.items()
        }
        return paper_page(ctx, 400, errors=errors, values=values, vote=vote)
    except RatifyError as exc:
        if vote.status in paper.BEFORE_CLOSE:
            raise
        problem = ctx.gettext(exc.message, **exc.params)
        return paper_page(ctx, exc.status_code, problem=problem, values=values, vote=vote)
    return ctx.redirect(ctx.org_url("paper_page", vote_id=vote.id))


def _decide(ctx: ViewContext, action: Callable[..., PaperBatch]) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)
    batch_id = ctx.path_uuid("batch_id")
    try:
        paper.require_after_close(vote)
        with ctx.db.begin_nested():
            action(ctx.db, ctx.org, vote, actor=ctx.user, batch_id=batch_id)
    except RatifyError as exc:
        if vote.status in paper.BEFORE_CLOSE or exc.status_code == 404:
            raise
        return paper_page(
            ctx, exc.status_code, problem=ctx.gettext(exc.message, **exc.params), vote=vote
        )
    return ctx.redirect(ctx.org_url("paper_page", vote_id=vote.id))


def batch_confirm(ctx: ViewContext) -> Response:
    return _decide(ctx, paper.confirm_batch)


def batch_withdraw(ctx: ViewContext) -> Response:
    return _decide(ctx, paper.withdraw_batch)


ROUTES = [
    page("/o/{slug}/votes/{vote_id}/strike-off", strike_off_page, access=Permission.STRIKE_OFF),
    page(
        "/o/{slug}/votes/{vote_id}/strike-off",
        strike_off,
        access=Permission.STRIKE_OFF,
        methods=["POST"],
    ),
    page("/o/{slug}/votes/{vote_id}/paper", paper_page, access=Permission.PAPER_BALLOT_ENTRY),
    page(
        "/o/{slug}/votes/{vote_id}/paper/batches",
        batch_enter,
        access=Permission.PAPER_BALLOT_ENTRY,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/paper/batches/{batch_id}/confirm",
        batch_confirm,
        access=Permission.PAPER_BATCH_CONFIRM,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/paper/batches/{batch_id}/withdraw",
        batch_withdraw,
        access=Permission.PAPER_BALLOT_ENTRY,
        methods=["POST"],
    ),
]
