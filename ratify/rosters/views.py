"""Bargaining-unit pages: list, create, edit, archive and restore."""

from __future__ import annotations

from starlette.responses import Response

from ratify.authz import Permission
from ratify.errors import N_
from ratify.rosters import queries
from ratify.rosters import services as rosters
from ratify.rosters.forms import parse_unit_form
from ratify.rosters.models import BargainingUnit
from ratify.web.routing import ViewContext, page


def units_list(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    return ctx.render(
        "rosters/units.html",
        units=rosters.list_units(ctx.db, ctx.org),
        archived=rosters.list_units(ctx.db, ctx.org, archived=True),
    )


def unit_new(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    return ctx.render("rosters/unit_form.html", unit=None)


def unit_create(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    fields = parse_unit_form(ctx.form)
    try:
        rosters.create_unit(ctx.db, ctx.org, actor=ctx.user, fields=fields)
    except rosters.UnitInvalid as exc:
        return _form_again(ctx, None, fields, exc)
    return ctx.redirect(ctx.org_url("units_list"))


def unit_edit(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    unit = rosters.get_unit(ctx.db, ctx.org, ctx.path_uuid("unit_id"))
    return ctx.render("rosters/unit_form.html", unit=unit, values=_values(unit))


def unit_update(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    rosters.require_union(ctx.org)
    unit = rosters.get_unit(ctx.db, ctx.org, ctx.path_uuid("unit_id"))
    fields = parse_unit_form(ctx.form)
    try:
        rosters.update_unit(ctx.db, ctx.org, unit, actor=ctx.user, fields=fields)
    except rosters.UnitInvalid as exc:
        return _form_again(ctx, unit, fields, exc)
    return ctx.redirect(ctx.org_url("units_list"))


def unit_archive(ctx: ViewContext) -> Response:
    return _set_archived(ctx, archived=True)


def unit_restore(ctx: ViewContext) -> Response:
    return _set_archived(ctx, archived=False)


def _set_archived(ctx: ViewContext, *, archived: bool) -> Response:
    assert ctx.org is not None and ctx.user is not None
    rosters.require_union(ctx.org)
    unit = rosters.get_unit(ctx.db, ctx.org, ctx.path_uuid("unit_id"))
    rosters.set_archived(ctx.db, ctx.org, unit, actor=ctx.user, archived=archived)
    return ctx.redirect(ctx.org_url("units_list"))


def _values(unit: BargainingUnit | rosters.UnitFields) -> dict[str, str]:
    return {
        "code": unit.code,
        "name": unit.name,
        "employer": unit.employer,
        "description": unit.description,
    }


def _form_again(
    ctx: ViewContext,
    unit: BargainingUnit | None,
    fields: rosters.UnitFields,
    exc: rosters.UnitInvalid,
) -> Response:
    return ctx.render(
        "rosters/unit_form.html",
        status_code=400,
        unit=unit,
        values=_values(fields),
        errors={k: ctx.gettext(v) for k, v in exc.errors.items()},
    )


ROUTES = [
    page("/o/{slug}/units", units_list, access=Permission.ORG_VIEW),
    page("/o/{slug}/units/new", unit_new, access=Permission.ROSTERS_MANAGE),
    page("/o/{slug}/units", unit_create, access=Permission.ROSTERS_MANAGE, methods=["POST"]),
    page("/o/{slug}/units/{unit_id}", unit_edit, access=Permission.ROSTERS_MANAGE),
    page(
        "/o/{slug}/units/{unit_id}", unit_update, access=Permission.ROSTERS_MANAGE, methods=["POST"]
    ),
    page(
        "/o/{slug}/units/{unit_id}/archive",
        unit_archive,
        access=Permission.ROSTERS_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/units/{unit_id}/restore",
        unit_restore,
        access=Permission.ROSTERS_MANAGE,
        methods=["POST"],
    ),
]


# -- members ----------------------------------------------------------------------------------

PER_PAGE = 50
HISTORY_LABELS = {
    "membership": N_("Membership"),
    "employment": N_("Employment"),
    "unit": N_("Bargaining unit"),
}
STATUS_LABELS = {
    "member": N_("Member"),
    "fee_payer": N_("Fee payer"),
    "non_member": N_("Non-member"),
    "active": N_("Active"),
    "on_leave": N_("On leave"),
    "laid_off": N_("Laid off"),
    "terminated": N_("Terminated"),
}


def members_list(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    query = ctx.request.query_params.get("q", "")[:200]
    try:
        page_number = int(ctx.request.query_params.get("page", "1"))
    except ValueError:
        page_number = 1
    found = queries.search_members(
        ctx.db,
        ctx.org,
        query,
        phone_region=ctx.app.settings.phone_region,
        page=min(max(page_number, 1), 10**6),
        per_page=PER_PAGE,
    )
    return ctx.render(
        "rosters/members.html",
        found=found,
        query=query,
        contacts=ctx.can(Permission.MEMBER_CONTACTS_READ),
    )


def member_detail(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    member = queries.get_member(ctx.db, ctx.org, ctx.path_uuid("member_id"))
    return ctx.render(
        "rosters/member.html",
        member=member,
        history=queries.member_history(ctx.db, member),
        contacts=ctx.can(Permission.MEMBER_CONTACTS_READ),
        history_labels={k: ctx.gettext(v) for k, v in HISTORY_LABELS.items()},
        status_labels={k: ctx.gettext(v) for k, v in STATUS_LABELS.items()},
    )


ROUTES += [
    page("/o/{slug}/members", members_list, access=Permission.MEMBERS_READ),
    page("/o/{slug}/members/{member_id}", member_detail, access=Permission.MEMBERS_READ),
]
