"""Constituency pages for leaders: the list, a constituency's definition (criteria and the
sign-up link), and who met its criteria on any date, with each person's reasons."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response

from ratify.authz import Permission
from ratify.community import constituencies as cons
from ratify.community.models import Constituency
from ratify.errors import N_
from ratify.orgs.services import org_today
from ratify.web.forms import text_field
from ratify.web.routing import ViewContext, page

PER_PAGE = 100


def _lines(value: str) -> list[str]:
    seen: dict[str, None] = {}
    for line in value.replace("\r\n", "\n").split("\n"):
        if line.strip():
            seen.setdefault(line.strip(), None)
    return list(seen)


def parse_form(ctx: ViewContext) -> cons.ConstituencyFields:
    form = ctx.form
    errors: dict[str, str] = {}
    joined: date | None = None
    if text_field(form, "joined_before"):
        try:
            joined = date.fromisoformat(text_field(form, "joined_before"))
        except ValueError:
            errors["joined_before"] = N_("Enter the date as YYYY-MM-DD.")
    numbers: dict[str, int | None] = {}
    for name in ("attended_at_least", "of_last"):
        raw = text_field(form, name)
        numbers[name] = None
        if raw:
            try:
                numbers[name] = int(raw)
            except ValueError:
                errors["attended"] = N_("Enter a number of events.")
    areas = _lines(text_field(form, "area_choices"))
    relationships = _lines(text_field(form, "relationship_choices"))
    return cons.ConstituencyFields(
        name=text_field(form, "name"),
        description=text_field(form, "description"),
        area_choices=areas,
        relationship_choices=relationships,
        criteria=cons.Criteria(
            joined_before=joined,
            areas=frozenset(_lines(text_field(form, "areas"))),
            relationships=frozenset(_lines(text_field(form, "relationships"))),
            attended_at_least=numbers["attended_at_least"],
            of_last=numbers["of_last"],
        ),
        approval_required=text_field(form, "approval_required") == "1",
        signup_open=text_field(form, "signup_open") == "1",
        consent_text=text_field(form, "consent_text"),
        form_errors=errors,
    )


def _values(fields: cons.ConstituencyFields | Constituency) -> dict[str, Any]:
    if isinstance(fields, Constituency):
        criteria = cons.criteria_of(fields)
        areas, relationships = fields.area_choices, fields.relationship_choices
    else:
        criteria = fields.criteria
        areas, relationships = fields.area_choices, fields.relationship_choices
    return {
        "name": fields.name,
        "description": fields.description,
        "area_choices": "\n".join(areas),
        "relationship_choices": "\n".join(relationships),
        "areas": "\n".join(a for a in areas if a in criteria.areas)
        + "".join(f"\n{a}" for a in sorted(criteria.areas - set(areas))),
        "relationships": "\n".join(r for r in relationships if r in criteria.relationships)
        + "".join(f"\n{r}" for r in sorted(criteria.relationships - set(relationships))),
        "joined_before": criteria.joined_before.isoformat() if criteria.joined_before else "",
        "attended_at_least": str(criteria.attended_at_least or ""),
        "of_last": str(criteria.of_last or ""),
        "approval_required": "1" if fields.approval_required else "",
        "signup_open": "1" if fields.signup_open else "",
        "consent_text": fields.consent_text,
    }


def constituencies_list(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    found = cons.list_constituencies(ctx.db, ctx.org)
    counts = {c.id: cons.status_counts(ctx.db, c) for c in found}
    return ctx.render("community/constituencies.html", constituencies=found, counts=counts)


def constituency_new(ctx: ViewContext) -> Response:
    return ctx.render(
        "community/constituency_form.html",
        constituency=None,
        values={"approval_required": "1", "signup_open": "1"},
        errors={},
    )


def constituency_create(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    fields = parse_form(ctx)
    try:
        with ctx.db.begin_nested():
            created = cons.create_constituency(ctx.db, ctx.org, actor=ctx.user, fields=fields)
    except cons.ConstituencyInvalid as exc:
        return _form_again(ctx, None, fields, exc)
    return ctx.redirect(ctx.org_url("constituency_detail", constituency_id=created.id))


def constituency_edit(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    constituency = cons.get_constituency(ctx.db, ctx.org, ctx.path_uuid("constituency_id"))
    return ctx.render(
        "community/constituency_form.html",
        constituency=constituency,
        values=_values(constituency),
        errors={},
    )


def constituency_update(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = cons.get_constituency(ctx.db, ctx.org, ctx.path_uuid("constituency_id"))
    fields = parse_form(ctx)
    try:
        with ctx.db.begin_nested():
            cons.update_constituency(ctx.db, ctx.org, constituency, actor=ctx.user, fields=fields)
    except cons.ConstituencyInvalid as exc:
        ctx.db.refresh(constituency)
        return _form_again(ctx, constituency, fields, exc)
    return ctx.redirect(ctx.org_url("constituency_detail", constituency_id=constituency.id))


def _form_again(
    ctx: ViewContext,
    constituency: Constituency | None,
    fields: cons.ConstituencyFields,
    exc: cons.ConstituencyInvalid,
) -> Response:
    return ctx.render(
        "community/constituency_form.html",
        status_code=400,
        constituency=constituency,
        values=_values(fields),
        errors={k: ctx.gettext(v) for k, v in exc.errors.items()},
    )


def constituency_detail(ctx: ViewContext) -> Response:
    """The definition, and who met it on a date (today unless asked), with reasons."""
    assert ctx.org is not None
    constituency = cons.get_constituency(ctx.db, ctx.org, ctx.path_uuid("constituency_id"))
    today = org_today(ctx.org)
    asked = ctx.request.query_params.get("on", "")
    on, error = today, None
    if asked:
        try:
            on = date.fromisoformat(asked)
        except ValueError:
            error = ctx.gettext(N_("Enter the date as YYYY-MM-DD."))
    membership = cons.evaluate(ctx.db, ctx.org, constituency, on)
    show = ctx.request.query_params.get("show", "all")
    decisions = membership.decisions
    if show == "met":
        decisions = [d for d in decisions if d.eligible]
    elif show == "not_met":
        decisions = [d for d in decisions if not d.eligible]
    shown = decisions[:PER_PAGE]
    reasons = {k: ctx.gettext(v) for k, v in cons.REASONS.items()}
    return ctx.render(
        "community/constituency.html",
        status_code=400 if error else 200,
        constituency=constituency,
        criteria=cons.criteria_of(constituency),
        counts=cons.status_counts(ctx.db, constituency),
        membership=membership,
        decisions=shown,
        total_shown=len(decisions),
        attended=membership.attended,
        reason_labels=reasons,
        excluded=sorted(membership.excluded_by_reason().items(), key=lambda kv: -kv[1]),
        on=on,
        on_error=error,
        show=show,
        signup_url=f"{str(ctx.request.base_url).rstrip('/')}/join/{constituency.signup_code}",
    )


def constituency_new_link(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    constituency = cons.get_constituency(ctx.db, ctx.org, ctx.path_uuid("constituency_id"))
    cons.new_signup_code(ctx.db, ctx.org, constituency, actor=ctx.user)
    return ctx.redirect(ctx.org_url("constituency_detail", constituency_id=constituency.id))


ROUTES = [
    page("/o/{slug}/constituencies", constituencies_list, access=Permission.ORG_VIEW),
    page("/o/{slug}/constituencies/new", constituency_new, access=Permission.COMMUNITY_MANAGE),
    page(
        "/o/{slug}/constituencies",
        constituency_create,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/constituencies/{constituency_id}",
        constituency_detail,
        access=Permission.COMMUNITY_MANAGE,
    ),
    page(
        "/o/{slug}/constituencies/{constituency_id}/edit",
        constituency_edit,
        access=Permission.COMMUNITY_MANAGE,
    ),
    page(
        "/o/{slug}/constituencies/{constituency_id}/edit",
        constituency_update,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/constituencies/{constituency_id}/signup-link",
        constituency_new_link,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
]
