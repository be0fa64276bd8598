"""The member's pages: a personal link, the second factor, the ballot, the review step, the
cast and the receipt. Phone-first, no JavaScript, in the member's language.

Opening a link changes nothing (mail scanners prefetch links); passing the second factor
exchanges the credential for a short-lived voter session (a signed cookie naming the voter and
the credential issue) and redirects to an address without the credential (DESIGN.md §4 rule
4). The access log shows route templates only, so the credential is never logged.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from ratify.accounts.views import client_address
from ratify.authz import PUBLIC, VOTER
from ratify.errors import N_, BadRequest, NotFound, RatifyError
from ratify.orgs.models import Organization
from ratify.rosters.models import Member
from ratify.security import VOTER_SESSION_SALT, Signer
from ratify.votes import casting
from ratify.votes import services as votes
from ratify.votes.factors import FACTOR_LABELS
from ratify.votes.models import SecondFactor, Vote
from ratify.votes.views import agreement_pdf
from ratify.web.i18n import LANGUAGE_NAMES
from ratify.web.routing import Cookie, ViewContext, page

VOTER_COOKIE = "ratify_voter"
VOTER_SESSION_SECONDS = 30 * 60
FACTOR_HINTS = {
    SecondFactor.MEMBER_LAST4: N_("The last 4 characters of your member number, as on your card."),
    SecondFactor.BIRTH_YEAR: N_("The year you were born, 4 digits (for example 1984)."),
    SecondFactor.POSTAL_CODE: N_("The postal code of the address the union has for you."),
}


def _signer(ctx: ViewContext) -> Signer:
    return Signer(ctx.app.settings.secret_key, VOTER_SESSION_SALT)


def _org(ctx: ViewContext, vote: Vote) -> Organization:
    return ctx.db.get_one(Organization, vote.organization_id)


def _language(ctx: ViewContext, vote: Vote, preferred: str = "") -> str:
    """The ballot's language: one asked for (?lang=), else the member's own, else the
    reader's, else the vote's first."""
    asked = ctx.request.query_params.get("lang", "") or ctx.field("lang")
    for candidate in (asked, preferred, ctx.language):
        if candidate in vote.languages:
            return candidate
    return vote.languages[0]


def _member_page(
    ctx: ViewContext, template: str, status_code: int = 200, **context: Any
) -> Response:
    """A member's page: none of the staff navigation, in the ballot's language."""
    return ctx.render(
        template, status_code, user=None, org=None, role=None, language_names=LANGUAGE_NAMES,
        **context,
    )  # fmt: skip


def _credential(ctx: ViewContext) -> str:
    return str(ctx.request.path_params["credential"])


def _problem(ctx: ViewContext, vote: Vote, error: RatifyError, language: str) -> Response:
    ctx.language = language
    return _member_page(
        ctx,
        "votes/voting/problem.html",
        error.status_code,
        vote=vote,
        message=ctx.gettext(error.message, **error.params),
        tz=_org(ctx, vote).timezone,
    )


# -- the link and the second factor --------------------------------------------------------------


def voter_link(ctx: ViewContext, status_code: int = 200, problem: str | None = None) -> Response:
    """The page a personal link opens: the second-factor form. Safe to open again and again."""
    access = casting.find_by_credential(ctx.db, ctx.app.settings.secret_key, _credential(ctx))
    vote = casting.vote_of(ctx.db, access)
    member = ctx.db.get(Member, access.member_id)
    ctx.language = _language(ctx, vote, member.preferred_language if member else "")
    factor = access.factor
    return _member_page(
        ctx,
        "votes/voting/link.html",
        status_code,
        vote=vote,
        org_name=_org(ctx, vote).name,
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
    access = casting.find_by_credential(ctx.db, settings.secret_key, _credential(ctx))
    if access.factor is None:
        raise BadRequest(N_("Your voting link cannot be used yet. Ask the union for help."))
    typed = ctx.field("answer")[:100]
    if not casting.check_second_factor(
        ctx.db, settings.secret_key, access, typed, client_address(ctx)
    ):
        return voter_link(
            ctx, 400, problem=N_("That answer does not match our records. Check it and try again.")
        )
    lang = ctx.field("lang")
    session = {"v": access.voter_id.hex, "i": access.issue, "l": lang}
    ctx.cookies.append(Cookie(VOTER_COOKIE, _signer(ctx).dumps(session), VOTER_SESSION_SECONDS))
    return ctx.redirect(ctx.url("voter_ballot"))


# -- the voter session ---------------------------------------------------------------------------


class SessionEnded(RatifyError):
    status_code = 401
    default_message = N_(
        "Your voting session has ended. Open your personal link again to continue."
    )


def _session(ctx: ViewContext) -> tuple[casting.VoterAccess, Vote, str]:
    raw = ctx.request.cookies.get(VOTER_COOKIE, "")
    data = _signer(ctx).loads(raw, max_age=VOTER_SESSION_SECONDS) if raw else None
    access = None
    if isinstance(data, dict):
        try:
            access = casting.find_by_session(ctx.db, uuid.UUID(str(data["v"])), int(data["i"]))
        except (KeyError, ValueError, TypeError):
            access = None
    if access is None:
        raise SessionEnded()  # expired, tampered, or the credential was reissued since
    vote = casting.vote_of(ctx.db, access)
    language = _language(ctx, vote, str(data.get("l", "")) if isinstance(data, dict) else "")
    ctx.language = language
    return access, vote, language


def _ballot_urls(ctx: ViewContext, vote: Vote, language: str) -> dict[str, Any]:
    ballot = votes.ballot(ctx.db, vote, language)
    full_text = ctx.url("voter_full_text", language=language) if ballot.has_full_text else None
    return {
        "ballot": ballot,
        "full_text_url": full_text,
        "tz": _org(ctx, vote).timezone,
        "lang": language,  # carried by each form, so the next step keeps the language
    }


def voter_ballot(ctx: ViewContext) -> Response:
    access, vote, language = _session(ctx)
    votes.advance(ctx.db, _org(ctx, vote), vote)  # opens or closes it on time
    if access.has_voted:
        return _member_page(ctx, "votes/voting/voted.html", vote=vote)
    try:
        casting.may_cast(access, vote)
    except RatifyError as exc:
        return _problem(ctx, vote, exc, language)
    return _member_page(
        ctx,
        "votes/voting/ballot.html",
        vote=vote,
        other_languages=[lang for lang in vote.languages if lang != language],
        **_ballot_urls(ctx, vote, language),
    )


def voter_review(ctx: ViewContext) -> Response:
    """Step two: "You are voting YES. Submit your vote?" Nothing is written."""
    access, vote, language = _session(ctx)
    try:
        casting.may_cast(access, vote)
    except RatifyError as exc:
        return _problem(ctx, vote, exc, language)
    urls = _ballot_urls(ctx, vote, language)
    chosen = urls["ballot"].option(ctx.field("choice"))
    if chosen is None:
        return _member_page(
            ctx,
            "votes/voting/ballot.html",
            400,
            vote=vote,
            other_languages=[],
            problem=ctx.gettext(N_("Choose one of the options on the ballot.")),
            **urls,
        )
    return _member_page(ctx, "votes/voting/review.html", vote=vote, chosen=chosen, **urls)


def voter_cast(ctx: ViewContext) -> Response:
    """Cast: the three writes of DESIGN.md §4 rule 2 and nothing else in this transaction (no
    status change either: a vote is opened or closed by the ballot page or the worker, and
    ``casting.may_cast`` refuses a vote past its closing time)."""
    access, vote, language = _session(ctx)
    try:
        # The form sends the option's mark; an unknown one is refused by the cast.
        key = votes.option_marks(vote).get(ctx.field("choice"), "")
        code = casting.cast(ctx.db, vote, access, key)
    except RatifyError as exc:
        # Every refusal comes before the first write, or after a conditional update that
        # matched nothing: a refused cast has written nothing.
        return _problem(ctx, vote, exc, language)
    return _member_page(
        ctx, "votes/voting/receipt.html", vote=vote, receipt=casting.show_receipt(code)
    )


def voter_full_text(ctx: ViewContext) -> Response:
    _access, vote, _language = _session(ctx)
    language = str(ctx.request.path_params["language"])
    if language not in vote.languages:
        raise NotFound()
    data, _document = votes.full_text(ctx.db, vote, language)
    return agreement_pdf(data, language)


ROUTES = [
    page("/v/ballot", voter_ballot, access=VOTER),
    page("/v/review", voter_review, access=VOTER, methods=["POST"]),
    page("/v/cast", voter_cast, access=VOTER, methods=["POST"]),
    page("/v/full-text/{language}", voter_full_text, access=VOTER),
    page("/v/{credential}", voter_link, access=PUBLIC),
    page("/v/{credential}", voter_sign_in, access=PUBLIC, methods=["POST"]),
]
