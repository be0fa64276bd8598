"""What a vote's voters see through their personal links once voting has closed: the receipt
codes of every ballot counted (DESIGN.md §4 rule 7), searchable, so that a member can check
that theirs is there and raise it before certification if not; and, once certified, the
result, where the organization publishes results (``Organization.publish_results``), which
also puts it on a public page. A receipt names its tally group and nothing else: no choice,
no voter, no time.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from ratify.authz import PUBLIC, VOTER
from ratify.errors import N_, Conflict, NotFound
from ratify.orgs import services as orgs
from ratify.orgs.models import Organization
from ratify.votes import casting, results, voting
from ratify.votes.models import Receipt, Vote, VoteStatus
from ratify.web.routing import ViewContext, page

# From the close on, through tallying and certification (and after).
PUBLISHED = frozenset({VoteStatus.CLOSED, VoteStatus.TALLIED, VoteStatus.CERTIFIED})
SHOWN = 50  # codes per page: members search for theirs; the page lists the rest in order


@dataclass(frozen=True)
class ReceiptPage:
    total: int  # receipts of the vote
    found: list[tuple[str, str]]  # (code as shown, tally group), in code order
    more_after: str | None  # the last code shown, when more match


def normalize(typed: str) -> str:
    """A code as a member types it back (with or without dashes and spaces, in either
    case) as it is stored."""
    return re.sub(r"[\s-]+", "", typed).upper()[: casting.RECEIPT_LENGTH]


def receipts(db: Session, vote_id: uuid.UUID, prefix: str = "", after: str = "") -> ReceiptPage:
    """The vote's receipts whose codes begin with ``prefix``, after the code ``after``, by a
    range on the codes' key (so a search of 300,000 is one index probe)."""
    total = db.scalar(select(func.count()).select_from(Receipt).where(Receipt.vote_id == vote_id))
    stmt = select(Receipt.code, Receipt.tally_group).where(Receipt.vote_id == vote_id)
    if prefix:
        # Codes use letters and digits only, so this bound is past every code with the prefix.
        stmt = stmt.where(Receipt.code >= prefix, Receipt.code < prefix + "~")
    if after:
        stmt = stmt.where(Receipt.code > after)
    rows = db.execute(stmt.order_by(Receipt.code).limit(SHOWN + 1)).all()
    more = rows[SHOWN - 1][0] if len(rows) > SHOWN else None
    return ReceiptPage(
        total=total or 0,
        found=[(casting.show_receipt(code), group) for code, group in rows[:SHOWN]],
        more_after=more,
    )


def voter_receipts(ctx: ViewContext) -> Response:
    access, sheet, language = voting.voter_session(ctx)
    vote = voting.shown_vote(sheet, access)
    if access.vote_status not in PUBLISHED:
        refusal = Conflict(N_("The receipt codes are published when voting closes."))
        return voting.problem_page(ctx, vote, access.timezone, refusal, language)
    params = ctx.request.query_params
    typed = params.get("q", "")[:40]
    prefix = normalize(typed)
    after = normalize(params.get("after", ""))
    found = receipts(ctx.db, access.vote_id, prefix, after)
    return voting.member_page(
        ctx,
        "votes/voting/receipts.html",
        vote=vote,
        page=found,
        typed=typed,
        searched=bool(prefix),
        lang=language,
    )


def _result_context(ctx: ViewContext, vote: Vote) -> dict[str, Any]:
    labels = results.option_labels(ctx.db, vote, ctx.language, ctx.gettext)
    assert vote.result is not None
    return {
        "vote": vote,
        "result": vote.result,
        "labels": labels,
        "words": results.in_words(vote.result, labels, ctx.gettext),
    }


def voter_result(ctx: ViewContext) -> Response:
    """A certified result, through the member's own link, where the organization publishes
    results."""
    access, sheet, language = voting.voter_session(ctx)
    vote = ctx.db.get_one(Vote, access.vote_id)
    org = ctx.db.get_one(Organization, vote.organization_id)
    refusal = None
    if vote.status != VoteStatus.CERTIFIED:
        refusal = Conflict(N_("The result is published here once the committee has certified it."))
    elif not org.publish_results:
        refusal = Conflict(N_("The union shares this result with its members in its own way."))
    if refusal is not None:
        return voting.problem_page(
            ctx, voting.shown_vote(sheet, access), access.timezone, refusal, language
        )
    return voting.member_page(
        ctx, "votes/published_result.html", org_name=org.name, **_result_context(ctx, vote)
    )


def public_result(ctx: ViewContext) -> Response:
    """A certified result on a public page, where the organization publishes results; any
    other vote, and every vote of one that does not, is not found."""
    org = orgs.get_by_slug(ctx.db, str(ctx.request.path_params["slug"]))
    vote = ctx.db.get(Vote, ctx.path_uuid("vote_id"))
    if (
        vote is None
        or vote.organization_id != org.id
        or vote.status != VoteStatus.CERTIFIED
        or not org.publish_results
    ):
        raise NotFound()
    ctx.language = ctx.language if ctx.language in vote.languages else vote.languages[0]
    return ctx.render(
        "votes/published_result.html", org_name=org.name, **_result_context(ctx, vote)
    )


ROUTES = [
    page("/v/receipts", voter_receipts, access=VOTER),
    page("/v/result", voter_result, access=VOTER),
    page("/results/{slug}/{vote_id}", public_result, access=PUBLIC),
]
