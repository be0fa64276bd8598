"""The committee's page of challenged voters and their sealed envelopes: the list for those
who review the voter list, the decisions (after the close, before the count) for those who
decide challenges. No page shows a sealed choice: the list never reads an envelope's payload,
and an accepted one's ballot joins the box with no link back (``envelopes``)."""

from __future__ import annotations

from starlette.responses import Response

from ratify.authz import Permission
from ratify.errors import N_, BadRequest, NotFound, RatifyError
from ratify.votes import envelopes
from ratify.votes import services as votes
from ratify.votes.models import Channel, EnvelopeStatus, Vote, VoteStatus
from ratify.web.routing import ViewContext, page

CHANNEL_LABELS = {
    Channel.ONLINE: N_("Online"),
    Channel.PAPER: N_("On paper"),
    Channel.IN_PERSON: N_("In person"),
}
ENVELOPE_LABELS = {
    EnvelopeStatus.SEALED: N_("Sealed, waiting for a decision"),
    EnvelopeStatus.ACCEPTED: N_("Accepted: its ballot joins the box at the count"),
    EnvelopeStatus.REJECTED: N_("Rejected: destroyed unopened"),
}
DECISIONS = {"accept": True, "reject": False}


def _vote(ctx: ViewContext, *, lock: bool = False) -> Vote:
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"), lock=lock)
    votes.advance(ctx.db, ctx.org, vote)
    if vote.status == VoteStatus.DRAFT:
        raise NotFound()  # no voter list yet
    return vote


def challenges_page(
    ctx: ViewContext, status_code: int = 200, problem: str | None = None, vote: Vote | None = None
) -> Response:
    assert ctx.org is not None
    vote = vote or _vote(ctx)
    return ctx.render(
        "votes/challenges.html",
        status_code=status_code,
        problem=problem,
        vote=vote,
        challenges=envelopes.challenges(ctx.db, vote),
        pending=envelopes.pending(ctx.db, vote),
        deciding=vote.status == VoteStatus.CLOSED and ctx.can(Permission.CHALLENGES_DECIDE),
        channel_labels={k.value: ctx.gettext(v) for k, v in CHANNEL_LABELS.items()},
        envelope_labels={k.value: ctx.gettext(v) for k, v in ENVELOPE_LABELS.items()},
        tz=ctx.org.timezone,
    )


def challenge_decide(ctx: ViewContext) -> Response:
    """Accept or reject one envelope. A refusal (too early or too late, no reason, a broken
    seal, decided already) writes nothing and shows the page again, saying why."""
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx, lock=True)  # decisions and the count take turns on the vote
    envelope = envelopes.get_envelope(ctx.db, vote, ctx.path_uuid("envelope_id"))
    try:
        accept = DECISIONS.get(ctx.field("decision"))
        if accept is None:
            raise BadRequest(N_("Choose to accept or to reject the challenged ballot."))
        with ctx.db.begin_nested():  # nothing of a refused decision is kept
            envelopes.decide(
                ctx.db,
                ctx.org,
                vote,
                envelope,
                accept=accept,
                reason=ctx.field("reason"),
                actor=ctx.user,
                secret_key=ctx.app.settings.secret_key,
            )
    except RatifyError as exc:
        if exc.status_code == 404:
            raise
        problem = ctx.gettext(exc.message, **exc.params)
        return challenges_page(ctx, exc.status_code, problem, vote=vote)
    return ctx.redirect(ctx.org_url("challenges_page", vote_id=vote.id))


ROUTES = [
    page(
        "/o/{slug}/votes/{vote_id}/challenges",
        challenges_page,
        access=Permission.VOTER_LIST_REVIEW,
    ),
    page(
        "/o/{slug}/votes/{vote_id}/challenges/{envelope_id}",
        challenge_decide,
        access=Permission.CHALLENGES_DECIDE,
        methods=["POST"],
    ),
]
