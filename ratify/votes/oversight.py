"""Staff pages around a running vote: turnout (never results), a voter's personal link shown
or reissued (each audited: the certificate counts them, DESIGN.md §4 rule 4), and the
mail-house file of links for printed letters (administrators only, audited)."""

from __future__ import annotations

import csv
import io

from starlette.responses import Response

from ratify.audit import services as audit
from ratify.authz import Permission
from ratify.errors import N_, BadRequest, Conflict, NotFound, RatifyError
from ratify.notices.outbox import notice_language
from ratify.rosters.imports import neutralize
from ratify.votes import casting, credentials, turnout, voters
from ratify.votes import services as votes
from ratify.votes.models import Channel, SecondFactor, Vote, Voter, VoteStatus
from ratify.web.routing import ViewContext, page

LINK_STATUSES = (VoteStatus.SCHEDULED, VoteStatus.OPEN)


def _vote(ctx: ViewContext) -> Vote:
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"))
    votes.advance(ctx.db, ctx.org, vote)
    return vote


def turnout_page(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    vote = _vote(ctx)
    return ctx.render(
        "votes/turnout.html",
        vote=vote,
        turnout=turnout.turnout(ctx.db, vote),
        tz=ctx.org.timezone,
        channels=Channel,
    )


# -- a voter's personal link ---------------------------------------------------------------------


def _voter(ctx: ViewContext, vote: Vote) -> Voter:
    number = ctx.field("member_number").strip()
    if not number:
        raise BadRequest(N_("Type the member number."))
    found = voters.find_voter(ctx.db, vote, number)
    if found is None or found.credential_hash is None:
        raise NotFound(N_("Nobody with this member number can vote in this vote."))
    return found


def links_page(
    ctx: ViewContext, status_code: int = 200, problem: str | None = None, **extra: object
) -> Response:
    vote = _vote(ctx)
    return ctx.render(
        "votes/links.html",
        status_code=status_code,
        vote=vote,
        problem=problem,
        can_change=vote.status in LINK_STATUSES,
        **{"shown": None, "shown_for": None, "reissued_for": None, **extra},
    )


def _refused(ctx: ViewContext, exc: RatifyError) -> Response:
    return links_page(
        ctx,
        exc.status_code,
        problem=ctx.gettext(exc.message, **exc.params),
        values={"member_number": ctx.field("member_number")},
    )


def link_show(ctx: ViewContext) -> Response:
    """The one page that displays a member's link to staff (to read it out on the phone, say):
    audited, and counted on the certificate. A POST, so no prefetch or history shows it."""
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    try:
        if vote.status not in LINK_STATUSES:
            raise BadRequest(N_("Links are shown only while the vote is scheduled or open."))
        voter = _voter(ctx, vote)
    except RatifyError as exc:
        return _refused(ctx, exc)
    credential = credentials.Minter(ctx.app.settings.secret_key, vote.id).credential(
        voter.id, voter.credential_issue
    )
    audit.record(
        ctx.db,
        organization=ctx.org,
        actor=ctx.user,
        action="vote.link_shown",
        object_type="vote",
        object_id=vote.id,
        data={"member_number": voter.member_number, "issue": voter.credential_issue},
    )
    return links_page(
        ctx,
        shown=credentials.link(ctx.app.settings.base_url, credential),
        shown_for=voter.member_number,
    )


def link_reissue(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    try:
        voter = _voter(ctx, vote)
        casting.reissue(
            ctx.db, ctx.org, vote, voter, actor=ctx.user, secret_key=ctx.app.settings.secret_key
        )
    except RatifyError as exc:
        return _refused(ctx, exc)
    return links_page(ctx, reissued_for=voter.member_number)


def mail_house_csv(ctx: ViewContext) -> Response:
    """Everyone who may vote, with a postal address and their link, for printed letters: a
    POST (with its CSRF token), audited as one export with its count. Never a second factor,
    since whoever holds the file holds the links (DESIGN.md §4 rule 4): refused while any
    voter answers their postal code (the letter shows it), and without member numbers while
    any answers the last 4 characters of theirs (a row number instead)."""
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    if vote.status not in LINK_STATUSES:
        raise BadRequest(N_("Links are shown only while the vote is scheduled or open."))
    if not vote.mail_letters:
        raise Conflict(N_("This vote was set up without mailed letters."))
    factors_used = voters.factors_of_voters(ctx.db, vote)
    if SecondFactor.POSTAL_CODE in factors_used:
        raise Conflict(
            N_("Some voters answer their postal code, which a letter shows: choose another "
               "second factor for them before exporting letters.")
        )  # fmt: skip
    numbers = SecondFactor.MEMBER_LAST4 not in factors_used
    minter = credentials.Minter(ctx.app.settings.secret_key, vote.id)
    base = ctx.app.settings.base_url
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["member_number" if numbers else "row", *voters.LETTER_FIELDS, "language", "link"]
    )
    count = 0
    for voter_id, issue, number, *details, preferred in voters.letter_recipients(ctx.db, vote):
        count += 1
        language = notice_language(preferred, vote.languages)
        link = credentials.link(base, minter.credential(voter_id, issue))
        cells = [number if numbers else str(count), *details, language, link]
        writer.writerow([neutralize(str(value)) for value in cells])
    audit.record(
        ctx.db,
        organization=ctx.org,
        actor=ctx.user,
        action="vote.mail_house_exported",
        object_type="vote",
        object_id=vote.id,
        data={"rows": count},
    )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="mail-house-{vote.id}.csv"',
            "Cache-Control": "no-store",
        },
    )


ROUTES = [
    page("/o/{slug}/votes/{vote_id}/turnout", turnout_page, access=Permission.TURNOUT_READ),
    page("/o/{slug}/votes/{vote_id}/links", links_page, access=Permission.VOTE_SETUP),
    page(
        "/o/{slug}/votes/{vote_id}/links/show",
        link_show,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/links/reissue",
        link_reissue,
        access=Permission.VOTE_SETUP,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/votes/{vote_id}/mail-house.csv",
        mail_house_csv,
        access=Permission.CONTACT_EXPORT,
        methods=["POST"],
    ),
]
