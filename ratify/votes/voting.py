"""The member's pages: a personal link, the second factor, the ballot, the review step, the
cast and the receipt (for a challenged voter, the ballot sealed in an envelope instead).
Phone-first, no JavaScript, in the member's language.

Opening a link changes nothing (mail scanners prefetch links); passing the second factor
exchanges the credential for a short-lived voter session (a signed cookie naming the voter and
the credential issue) and redirects to an address without the credential (DESIGN.md §4 rule
4). The access log shows route templates only, so the credential is never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import escape
from sqlalchemy import select
from starlette.responses import HTMLResponse, Response

from ratify.accounts.views import client_address
from ratify.authz import PUBLIC, VOTER
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, NotFound, RatifyError
from ratify.orgs.models import Organization
from ratify.votes import casting, envelopes, sheets
from ratify.votes import services as votes
from ratify.votes.factors import FACTOR_LABELS
from ratify.votes.models import (
    Envelope,
    EnvelopeStatus,
    SecondFactor,
    Vote,
    VoterStatus,
    VoteStatus,
)
from ratify.votes.views import agreement_pdf
from ratify.web.routing import Cookie, ViewContext, page

VOTER_COOKIE = "ratify_voter"
VOTER_SESSION_SECONDS = 30 * 60
FACTOR_HINTS = {
    SecondFactor.MEMBER_LAST4: N_("The last 4 characters of your member number, as on your card."),
    SecondFactor.BIRTH_YEAR: N_("The year you were born, 4 digits (for example 1984)."),
    SecondFactor.POSTAL_CODE: N_("The postal code of the address on file for you."),
    SecondFactor.PHONE_LAST4: N_("The last 4 digits of the phone number you signed up with."),
}


@dataclass(frozen=True)
class ShownVote:
    """The vote as the member's templates see it: its sheet's fixed content and its
    status and window as they are now."""

    id: uuid.UUID
    title: str
    languages: tuple[str, ...]
    status: VoteStatus
    opens_at: datetime | None
    closes_at: datetime | None


def shown_vote(sheet: sheets.Sheet, access: casting.VoterAccess) -> ShownVote:
    return ShownVote(
        sheet.vote_id,
        sheet.title,
        sheet.languages,
        access.vote_status,
        access.opens_at,
        access.closes_at,
    )


def _language(ctx: ViewContext, languages: Sequence[str], preferred: str = "") -> str:
    """The ballot's language: one asked for (?lang=), else the member's own, else the
    reader's, else the vote's first."""
    asked = ctx.request.query_params.get("lang", "") or ctx.field("lang")
    for candidate in (asked, preferred, ctx.language):
        if candidate in languages:
            return candidate
    return languages[0]


# What a member's page shows of the site around it: no staff, organization or role, and no
# language form (``member_page``, ``receipt_page``).
_MEMBER_PAGE: dict[str, Any] = {"user": None, "org": None, "role": None, "languages": ()}


def member_page(
    ctx: ViewContext, template: str, status_code: int = 200, **context: Any
) -> Response:
    """A member's page: none of the staff navigation, in the ballot's language. Nor the
    footer's form for the site's language: the link and ballot pages offer the vote's own
    languages instead, and that form, sent from a page a POST answered (the review, the
    receipt), would lead back to an address that only takes a POST."""
    return ctx.render(template, status_code, **_MEMBER_PAGE, **context)


def _credential(ctx: ViewContext) -> str:
    return str(ctx.request.path_params["credential"])


def problem_page(
    ctx: ViewContext, vote: ShownVote, timezone: str, error: RatifyError, language: str
) -> Response:
    ctx.language = language
    return member_page(
        ctx,
        "votes/voting/problem.html",
        error.status_code,
        vote=vote,
        message=ctx.gettext(error.message, **error.params),
        tz=timezone,
    )


def _advanced(ctx: ViewContext, access: casting.VoterAccess) -> casting.VoterAccess:
    """The voter's access once the vote has been opened or closed on time (rarely needed:
    the worker's tick usually got there first)."""
    if not access.due(utcnow()):
        return access
    vote = ctx.db.get_one(Vote, access.vote_id)
    votes.advance(ctx.db, ctx.db.get_one(Organization, vote.organization_id), vote)
    return casting.find_by_session(ctx.db, access.voter_id, access.issue) or access


# -- the link and the second factor --------------------------------------------------------------


def voter_link(ctx: ViewContext, status_code: int = 200, problem: str | None = None) -> Response:
    """The page a personal link opens: the second-factor form. Safe to open again and again."""
    access = casting.find_by_credential(ctx.db, ctx.app.settings.secret_key, _credential(ctx))
    sheet = sheets.sheet(ctx.db, access.vote_id)
    ctx.language = _language(ctx, sheet.languages, access.preferred_language)
    factor = access.factor
    return member_page(
        ctx,
        "votes/voting/link.html",
        status_code,
        vote=shown_vote(sheet, access),
        org_name=access.org_name,
        factor=factor,
        factor_label=ctx.gettext(FACTOR_LABELS[factor]) if factor else "",
        factor_hint=ctx.gettext(FACTOR_HINTS[factor]) if factor in FACTOR_HINTS else "",
        no_factor=factor is None,
        problem=problem,
        action=ctx.request.url.path,
        lang=ctx.language,
    )


def voter_sign_in(ctx: ViewContext) -> Response:
    """Pass the second factor: a voter session, then the ballot at an address without the
    credential. A wrong answer is counted (and committed) before the form is shown again."""
    settings = ctx.app.settings
    # Read in the transaction that goes on to take the throttle's locks and count.
    access = casting.find_by_credential(
        ctx.db, settings.secret_key, _credential(ctx), in_transaction=True
    )
    if access.factor is None:
        raise BadRequest(
            N_("Your voting link cannot be used yet. Ask %(organization)s for help."),
            organization=access.org_name,
        )
    typed = ctx.field("answer")[:100]
    if not casting.check_second_factor(
        ctx.db, settings.secret_key, access, typed, client_address(ctx)
    ):
        return voter_link(
            ctx, 400, problem=N_("That answer does not match our records. Check it and try again.")
        )
    lang = ctx.field("lang")
    session = {"v": access.voter_id.hex, "i": access.issue, "o": access.vote_id.hex, "l": lang}
    signed = ctx.app.voter_signer.dumps(session)
    ctx.cookies.append(Cookie(VOTER_COOKIE, signed, VOTER_SESSION_SECONDS))
    return ctx.redirect(ctx.url("voter_ballot"))


# -- the voter session ---------------------------------------------------------------------------


class SessionEnded(RatifyError):
    status_code = 401
    default_message = N_(
        "Your voting session has ended. Open your personal link again to continue."
    )


def _seat(ctx: ViewContext) -> tuple[casting.Seat, str]:
    """The voter session's seat and the language it was begun in, from its signed cookie
    alone (no database read): SessionEnded when expired or tampered with."""
    raw = ctx.request.cookies.get(VOTER_COOKIE, "")
    data = ctx.app.voter_signer.loads(raw, max_age=VOTER_SESSION_SECONDS) if raw else None
    if not isinstance(data, dict):
        raise SessionEnded()
    try:
        seat = casting.Seat(
            uuid.UUID(hex=str(data["v"])), int(data["i"]), uuid.UUID(hex=str(data["o"]))
        )
    except (KeyError, ValueError, TypeError):
        raise SessionEnded() from None
    return seat, str(data.get("l", ""))


def voter_session(ctx: ViewContext) -> tuple[casting.VoterAccess, sheets.Sheet, str]:
    seat, preferred = _seat(ctx)
    access = casting.find_by_session(ctx.db, seat.voter_id, seat.issue)
    if access is None or access.vote_id != seat.vote_id:
        raise SessionEnded()  # the credential was reissued since
    sheet = sheets.sheet(ctx.db, access.vote_id)
    language = _language(ctx, sheet.languages, preferred or access.preferred_language)
    ctx.language = language
    return access, sheet, language


def _ballot_context(
    ctx: ViewContext, access: casting.VoterAccess, sheet: sheets.Sheet, language: str
) -> dict[str, Any]:
    ballot = sheet.ballot(language, access.closes_at)
    full_text = ctx.url("voter_full_text", language=language) if ballot.has_full_text else None
    return {
        "vote": shown_vote(sheet, access),
        "ballot": ballot,
        "full_text_url": full_text,
        "tz": access.timezone,
        "lang": language,  # carried by each form, so the next step keeps the language
    }


def _step(
    ctx: ViewContext,
    access: casting.VoterAccess,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """The ballot or the review step; a challenged voter's also says their vote will be
    sealed in an envelope, on one page for both steps."""
    if access.status == VoterStatus.CHALLENGED:
        template = "votes/voting/challenged.html"
        context.setdefault("chosen", None)
    return member_page(ctx, template, status_code, **context)


def voter_ballot(ctx: ViewContext) -> Response:
    access, sheet, language = voter_session(ctx)
    access = _advanced(ctx, access)  # opens or closes it on time
    if access.has_voted:
        if access.status == VoterStatus.CHALLENGED:  # online or on paper: in an envelope
            envelope = ctx.db.execute(
                select(Envelope.status, Envelope.reason).where(Envelope.voter_id == access.voter_id)
            ).first()
            return _sealed_page(ctx, shown_vote(sheet, access), receipt=None, decided=envelope)
        return member_page(ctx, "votes/voting/voted.html", vote=shown_vote(sheet, access))
    try:
        casting.may_cast(access)
    except RatifyError as exc:
        return problem_page(ctx, shown_vote(sheet, access), access.timezone, exc, language)
    return _step(
        ctx,
        access,
        "votes/voting/ballot.html",
        other_languages=[lang for lang in sheet.languages if lang != language],
        **_ballot_context(ctx, access, sheet, language),
    )


def voter_review(ctx: ViewContext) -> Response:
    """Step two: "You are voting YES. Submit your vote?" Nothing is written."""
    access, sheet, language = voter_session(ctx)
    try:
        casting.may_cast(access)
    except RatifyError as exc:
        return problem_page(ctx, shown_vote(sheet, access), access.timezone, exc, language)
    context = _ballot_context(ctx, access, sheet, language)
    chosen = context["ballot"].option(ctx.field("choice"))
    if chosen is None:
        return _step(
            ctx,
            access,
            "votes/voting/ballot.html",
            400,
            other_languages=[],
            problem=ctx.gettext(N_("Choose one of the options on the ballot.")),
            **context,
        )
    return _step(ctx, access, "votes/voting/review.html", chosen=chosen, **context)


def voter_cast(ctx: ViewContext) -> Response:
    """Cast: the three writes of DESIGN.md §4 rule 2 and nothing else in this transaction (no
    status change either: a vote is opened or closed by the ballot page or the worker, and
    the cast's conditional update refuses a vote past its closing time). The session is
    taken from its signed cookie; the voter is read only if the cast is refused, to say why."""
    seat, preferred = _seat(ctx)
    sheet = sheets.sheet(ctx.db, seat.vote_id)
    try:
        # The form sends the option's mark; an unknown one is refused by the cast.
        code = casting.cast(ctx.db, seat, sheet.marks.get(ctx.field("choice"), ""))
    except casting.SealInstead:
        return _seal(ctx, seat, sheet, preferred)
    except RatifyError as exc:
        # Every refusal comes before the first write, or after a conditional update that
        # matched nothing: a refused cast has written nothing.
        try:
            access, sheet, language = voter_session(ctx)
        except SessionEnded:
            raise exc from None  # a replaced link: its own page says so
        return problem_page(ctx, shown_vote(sheet, access), access.timezone, exc, language)
    ctx.language = _language(ctx, sheet.languages, preferred)
    return receipt_page(ctx, sheet, casting.show_receipt(code))


# What the receipt page is rendered around: no receipt code can be this.
_RECEIPT_STAND_IN = "\x00receipt\x00"


def receipt_page(ctx: ViewContext, sheet: sheets.Sheet, receipt: str) -> Response:
    """The receipt page, the one page every member of a big vote is shown at the same
    moment: the same for all in a language but for its code. Rendered once per language for
    the vote's sheet around a stand-in for the code (from the vote's title and the language
    alone: a template that came to use anything of the request or the member would fail
    here, StrictUndefined, rather than show one member's page to another), then the code,
    escaped as the template would escape it, is put in its place. Kept with the sheet, so a
    change to the template shows from the next vote opened or the next restart."""
    halves = sheet.receipt_pages.get(ctx.language)
    if halves is None:
        context = {**_MEMBER_PAGE, "vote": sheet, "receipt": _RECEIPT_STAND_IN}
        html = ctx.app.templates.render(ctx.language, "votes/voting/receipt.html", context)
        before, stand_in, after = html.partition(_RECEIPT_STAND_IN)
        if not stand_in or _RECEIPT_STAND_IN in after:
            raise RuntimeError("the receipt page must show its code once")
        halves = sheet.receipt_pages[ctx.language] = (before, after)
    return HTMLResponse(halves[0] + str(escape(receipt)) + halves[1])  # str: Markup + str escapes


def _seal(ctx: ViewContext, seat: casting.Seat, sheet: sheets.Sheet, preferred: str) -> Response:
    """A challenged voter's cast: the ballot sealed in an envelope (``envelopes.seal``), in
    the same transaction as the refused cast, which wrote nothing."""
    try:
        code = envelopes.seal(
            ctx.db, ctx.app.settings.secret_key, seat, sheet.marks.get(ctx.field("choice"), "")
        )
    except RatifyError as exc:
        try:
            access, sheet, language = voter_session(ctx)
        except SessionEnded:
            raise exc from None
        return problem_page(ctx, shown_vote(sheet, access), access.timezone, exc, language)
    ctx.language = _language(ctx, sheet.languages, preferred)
    return _sealed_page(ctx, sheet, receipt=casting.show_receipt(code))


def _sealed_page(
    ctx: ViewContext,
    vote: sheets.Sheet | ShownVote,
    *,
    receipt: str | None,
    decided: Any = None,
) -> Response:
    """A challenged voter's vote is sealed: its receipt is shown once, when it is sealed; once
    the committee has decided, the page says how (and, for a rejection, why)."""
    status = decided[0] if decided is not None else None
    return member_page(
        ctx,
        "votes/voting/sealed.html",
        vote=vote,
        receipt=receipt,
        accepted=status == EnvelopeStatus.ACCEPTED,
        rejected=status == EnvelopeStatus.REJECTED,
        reason=decided[1] if decided is not None else "",
    )


def voter_full_text(ctx: ViewContext) -> Response:
    _access, sheet, _language = voter_session(ctx)
    language = str(ctx.request.path_params["language"])
    if language not in sheet.languages:
        raise NotFound()
    data, _document = votes.full_text(ctx.db, sheet.vote_id, language)
    return agreement_pdf(data, language)


ROUTES = [
    page("/v/ballot", voter_ballot, access=VOTER),
    page("/v/review", voter_review, access=VOTER, methods=["POST"]),
    page("/v/cast", voter_cast, access=VOTER, methods=["POST"]),
    page("/v/full-text/{language}", voter_full_text, access=VOTER),
    page("/v/{credential}", voter_link, access=PUBLIC),
    page("/v/{credential}", voter_sign_in, access=PUBLIC, methods=["POST"]),
]
