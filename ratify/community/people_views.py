"""People joining a constituency: the public sign-up page, the leaders' approval queue, the
list of people (adding and removing someone) and importing a file of people."""

from __future__ import annotations

import uuid

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ratify.accounts.views import client_address
from ratify.authz import PUBLIC, Permission
from ratify.community import constituencies, people
from ratify.community.models import Constituency, ConstituencyMember, PersonStatus
from ratify.errors import N_, NotFound, RatifyError
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.rosters.imports import RowError
from ratify.settings import LANGUAGES
from ratify.web.forms import text_field
from ratify.web.routing import RatifyRoute, ViewContext, page

PERSON_FIELDS = (
    "first_name", "last_name", "phone", "email", "area", "relationship", "preferred_language",
)  # fmt: skip
HONEYPOT = "website"  # a field people never see; bots that fill every field fill it
MATCH_LABELS = {
    people.NAME_MATCH: N_("same name"),
    people.EMAIL_MATCH: N_("same email"),
    people.PHONE_MATCH: N_("same phone"),
}


def _person_form(ctx: ViewContext) -> people.PersonFields:
    return people.PersonFields(
        first_name=text_field(ctx.form, "first_name"),
        last_name=text_field(ctx.form, "last_name"),
        email=text_field(ctx.form, "email"),
        phone=text_field(ctx.form, "phone"),
        area=text_field(ctx.form, "area"),
        relationship=text_field(ctx.form, "relationship"),
        preferred_language=text_field(ctx.form, "preferred_language"),
        consent=text_field(ctx.form, "consent") == "yes",
    )


def _translated(ctx: ViewContext, errors: dict[str, str]) -> dict[str, str]:
    return {name: ctx.gettext(message) for name, message in errors.items()}


# -- public sign-up -----------------------------------------------------------------------------


def _join_page(
    ctx: ViewContext,
    org: Organization,
    constituency: Constituency,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return ctx.render(
        "community/join.html",
        status_code=status_code,
        org=org,
        constituency=constituency,
        code=constituency.signup_code,
        consent_text=people.consent_line(constituency) or ctx.gettext(people.DEFAULT_CONSENT),
        honeypot=HONEYPOT,
        language_choices=LANGUAGES,
        values=values or {"preferred_language": ctx.language},
        errors=errors or {},
    )


def join_form(ctx: ViewContext) -> Response:
    org, constituency = people.constituency_for_signup(ctx.db, str(ctx.request.path_params["code"]))
    return _join_page(ctx, org, constituency)


def _thanks(ctx: ViewContext, org: Organization, constituency: Constituency) -> Response:
    # The same page whoever signed up (and for a bot caught by the honeypot): nothing in it
    # depends on what was typed, so it echoes nobody's details.
    return ctx.render(
        "community/join_thanks.html",
        org=org,
        constituency=constituency,
        approval_required=constituency.approval_required,
    )


def join_submit(ctx: ViewContext) -> Response:
    org, constituency = people.constituency_for_signup(ctx.db, str(ctx.request.path_params["code"]))
    key = people.signup_throttle(ctx.db, ctx.app.settings, client_address(ctx))
    if text_field(ctx.form, HONEYPOT):
        return _thanks(ctx, org, constituency)  # looks like a success; nothing is written
    fields = _person_form(ctx)
    try:
        with ctx.db.begin_nested():
            people.sign_up(
                ctx.db,
                org,
                constituency,
                fields,
                today=org_today(org),
                phone_region=ctx.app.settings.phone_region,
            )
    except people.PersonInvalid as exc:
        values = {name: text_field(ctx.form, name) for name in PERSON_FIELDS}
        values["consent"] = "yes" if fields.consent else ""
        return _join_page(
            ctx,
            org,
            constituency,
            status_code=400,
            values=values,
            errors=_translated(ctx, exc.errors),
        )
    people.count_signup(ctx.db, key)
    return _thanks(ctx, org, constituency)


# -- the leaders' pages ---------------------------------------------------------------------------


def _constituency(ctx: ViewContext) -> Constituency:
    assert ctx.org is not None
    return constituencies.get_constituency(ctx.db, ctx.org, ctx.path_uuid("constituency_id"))


def _person(ctx: ViewContext, constituency: Constituency) -> ConstituencyMember:
    assert ctx.org is not None
    return people.get_person(ctx.db, ctx.org, constituency, ctx.path_uuid("person_id"))


def _labels(ctx: ViewContext) -> dict[str, object]:
    return {
        "status_labels": {k: ctx.gettext(v) for k, v in people.STATUS_LABELS.items()},
        "source_labels": {k: ctx.gettext(v) for k, v in people.SOURCE_LABELS.items()},
    }


def approval_queue(
    ctx: ViewContext,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    assert ctx.org is not None
    constituency = _constituency(ctx)
    return ctx.render(
        "community/queue.html",
        status_code=status_code,
        constituency=constituency,
        entries=people.queue(ctx.db, ctx.org, constituency),
        waiting=people.pending_count(ctx.db, constituency),
        shown_at_most=people.QUEUE_SHOWN,
        match_labels={k: ctx.gettext(v) for k, v in MATCH_LABELS.items()},
        done=ctx.request.query_params.get("done", ""),
        errors=errors or {},
        values=values or {},
        **_labels(ctx),
    )


def _back_to_queue(ctx: ViewContext, constituency: Constituency, done: str) -> Response:
    return ctx.redirect(
        ctx.org_url("approval_queue", constituency_id=constituency.id) + f"?done={done}"
    )


def person_approve(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = _constituency(ctx)
    person = _person(ctx, constituency)
    people.approve(ctx.db, ctx.org, person, actor=ctx.user)  # decided already: 409
    return _back_to_queue(ctx, constituency, "approved")


def person_reject(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = _constituency(ctx)
    person = _person(ctx, constituency)
    reason = text_field(ctx.form, "reason")
    try:
        with ctx.db.begin_nested():
            people.reject(ctx.db, ctx.org, person, actor=ctx.user, reason=reason)
    except people.PersonInvalid as exc:
        return approval_queue(
            ctx,
            400,
            errors={str(person.id): ctx.gettext(exc.errors["reason"])},
            values={str(person.id): reason},
        )
    return _back_to_queue(ctx, constituency, "rejected")


def person_merge(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = _constituency(ctx)
    person = _person(ctx, constituency)
    try:
        into_id = uuid.UUID(text_field(ctx.form, "into"))
    except ValueError:
        raise NotFound() from None
    into = people.get_member(ctx.db, ctx.org, into_id)
    people.merge(ctx.db, ctx.org, person, into=into, actor=ctx.user)
    return _back_to_queue(ctx, constituency, "merged")


# -- the list of people ----------------------------------------------------------------------------

PER_PAGE = 100
STATUSES = {s.value: s for s in PersonStatus}


def constituency_people(
    ctx: ViewContext,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    assert ctx.org is not None
    constituency = _constituency(ctx)
    params = ctx.request.query_params
    chosen = params.get("status", "")
    status = STATUSES.get(chosen)
    try:
        page_number = min(max(int(params.get("page", "1")), 1), 10**6)
    except ValueError:
        page_number = 1
    found = people.list_people(
        ctx.db, ctx.org, constituency, status=status, page=page_number, per_page=PER_PAGE
    )
    imported = params.get("imported", "")
    return ctx.render(
        "community/people.html",
        status_code=status_code,
        constituency=constituency,
        found=found,
        status=status.value if status else "",
        statuses=list(STATUSES),
        added=params.get("added") == "1",
        removed=params.get("removed") == "1",
        imported=int(imported)
        if imported.isascii() and imported.isdigit() and len(imported) < 10
        else None,
        errors=errors or {},
        values=values or {},
        **_labels(ctx),
    )


def _person_page(
    ctx: ViewContext,
    constituency: Constituency,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return ctx.render(
        "community/people_form.html",
        status_code=status_code,
        constituency=constituency,
        language_choices=LANGUAGES,
        values=values or {},
        errors=errors or {},
    )


def person_new(ctx: ViewContext) -> Response:
    return _person_page(ctx, _constituency(ctx))


def person_add(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = _constituency(ctx)
    try:
        with ctx.db.begin_nested():
            people.add_person(
                ctx.db,
                ctx.org,
                constituency,
                _person_form(ctx),
                actor=ctx.user,
                phone_region=ctx.app.settings.phone_region,
            )
    except people.PersonInvalid as exc:
        return _person_page(
            ctx,
            constituency,
            status_code=400,
            values={name: text_field(ctx.form, name) for name in PERSON_FIELDS},
            errors=_translated(ctx, exc.errors),
        )
    return ctx.redirect(
        ctx.org_url("constituency_people", constituency_id=constituency.id) + "?added=1"
    )


def person_remove(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = _constituency(ctx)
    person = _person(ctx, constituency)
    reason = text_field(ctx.form, "reason")
    try:
        with ctx.db.begin_nested():
            people.remove(ctx.db, ctx.org, person, actor=ctx.user, reason=reason)
    except people.PersonInvalid as exc:
        return constituency_people(
            ctx,
            400,
            errors={str(person.id): ctx.gettext(exc.errors["reason"])},
            values={str(person.id): reason},
        )
    return ctx.redirect(
        ctx.org_url("constituency_people", constituency_id=constituency.id) + "?removed=1"
    )


# -- importing a file of people ------------------------------------------------------------------


def _import_page(
    ctx: ViewContext,
    constituency: Constituency,
    *,
    status_code: int = 200,
    problem: str | None = None,
    row_errors: list[RowError] | None = None,
    error_count: int = 0,
) -> Response:
    return ctx.render(
        "community/people_import.html",
        status_code=status_code,
        constituency=constituency,
        problem=problem,
        row_errors=row_errors or [],
        error_count=error_count,
        max_rows=people.MAX_IMPORT_ROWS,
    )


def people_import_form(ctx: ViewContext) -> Response:
    return _import_page(ctx, _constituency(ctx))


def people_import(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None and ctx.form is not None
    constituency = _constituency(ctx)
    file = ctx.form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return _import_page(
            ctx,
            constituency,
            status_code=400,
            problem=ctx.gettext(N_("Choose the file to import.")),
        )
    try:
        with ctx.db.begin_nested():
            count = people.import_people(
                ctx.db,
                ctx.org,
                constituency,
                file.filename,
                file.file.read(),
                actor=ctx.user,
                phone_region=ctx.app.settings.phone_region,
            )
    except people.ImportInvalid as exc:
        shown = exc.errors[: people.IMPORT_ERRORS_SHOWN]
        return _import_page(
            ctx,
            constituency,
            status_code=400,
            problem=ctx.gettext(exc.message),
            row_errors=[RowError(e.row, e.column, ctx.gettext(e.message)) for e in shown],
            error_count=len(exc.errors),
        )
    except RatifyError as exc:
        return _import_page(
            ctx,
            constituency,
            status_code=exc.status_code,
            problem=ctx.gettext(exc.message, **exc.params),
        )
    return ctx.redirect(
        ctx.org_url("constituency_people", constituency_id=constituency.id) + f"?imported={count}"
    )


BASE = "/o/{slug}/constituencies/{constituency_id}"
MANAGE = Permission.COMMUNITY_MANAGE

ROUTES: list[RatifyRoute] = [
    page("/join/{code}", join_form, access=PUBLIC, name="join_form"),
    page("/join/{code}", join_submit, access=PUBLIC, methods=["POST"], name="join_submit"),
    page(f"{BASE}/queue", approval_queue, access=MANAGE, name="approval_queue"),
    page(
        f"{BASE}/queue/{{person_id}}/approve",
        person_approve,
        access=MANAGE,
        methods=["POST"],
        name="person_approve",
    ),
    page(
        f"{BASE}/queue/{{person_id}}/reject",
        person_reject,
        access=MANAGE,
        methods=["POST"],
        name="person_reject",
    ),
    page(
        f"{BASE}/queue/{{person_id}}/merge",
        person_merge,
        access=MANAGE,
        methods=["POST"],
        name="person_merge",
    ),
    page(f"{BASE}/people", constituency_people, access=MANAGE, name="constituency_people"),
    page(f"{BASE}/people", person_add, access=MANAGE, methods=["POST"], name="person_add"),
    page(f"{BASE}/people/new", person_new, access=MANAGE, name="person_new"),
    page(f"{BASE}/people/import", people_import_form, access=MANAGE, name="people_import_form"),
    page(
        f"{BASE}/people/import",
        people_import,
        access=MANAGE,
        methods=["POST"],
        upload=True,
        name="people_import",
    ),
    page(
        f"{BASE}/people/{{person_id}}/remove",
        person_remove,
        access=MANAGE,
        methods=["POST"],
        name="person_remove",
    ),
]
