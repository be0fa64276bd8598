"""Roster pages: bargaining units, members, and importing roster files."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ratify.audit import services as audit
from ratify.authz import Permission
from ratify.errors import N_, BadRequest, RatifyError
from ratify.rosters import dues, imports, queries
from ratify.rosters import eligibility as elig
from ratify.rosters import services as rosters
from ratify.rosters.forms import parse_manual, parse_unit_form
from ratify.rosters.models import BargainingUnit, ImportScope, RosterUpload, UploadState
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
CHANGE_LABELS = {"new": N_("added"), "changed": N_("changed"), "leaving": N_("left a unit")}
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


def member_detail(
    ctx: ViewContext, status_code: int = 200, errors: dict[str, str] | None = None
) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    member = queries.get_member(ctx.db, ctx.org, ctx.path_uuid("member_id"))
    today = datetime.now(ZoneInfo(ctx.org.timezone)).date()
    return ctx.render(
        "rosters/member.html",
        status_code=status_code,
        errors=errors or {},
        values={k: ctx.field(k) for k in ("period", "amount", "received", "reason")},
        today=today.isoformat(),
        paid_through=dues.paid_through(ctx.db, member, today),
        arrears=dues.months_in_arrears(ctx.db, member, today),
        good_standing=dues.in_good_standing(ctx.db, ctx.org, member, today),
        payments=dues.history(ctx.db, member),
        touching=queries.imports_touching(ctx.db, member),
        change_labels={k: ctx.gettext(v) for k, v in CHANGE_LABELS.items()},
        member=member,
        history=queries.member_history(ctx.db, member),
        contacts=ctx.can(Permission.MEMBER_CONTACTS_READ),
        history_labels={k: ctx.gettext(v) for k, v in HISTORY_LABELS.items()},
        status_labels={k: ctx.gettext(v) for k, v in STATUS_LABELS.items()},
    )


def dues_correct(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    rosters.require_union(ctx.org)
    member = queries.get_member(ctx.db, ctx.org, ctx.path_uuid("member_id"))
    errors: dict[str, str] = {}
    period = dues.parse_period(ctx.field("period"))
    if period is None:
        errors["period"] = ctx.gettext(N_("This is not a month (use 2026-10)."))
    amount = dues.parse_amount(ctx.field("amount"))
    if amount is None:
        errors["amount"] = ctx.gettext(N_("This is not an amount."))
    try:
        received = date.fromisoformat(ctx.field("received"))
    except ValueError:
        errors["received"] = ctx.gettext(N_("Enter the date as YYYY-MM-DD."))
    if not ctx.field("reason").strip():
        errors["reason"] = ctx.gettext(N_("Say why the dues record is being corrected."))
    if errors:
        return member_detail(ctx, 400, errors)
    assert period is not None and amount is not None
    dues.correct(
        ctx.db,
        ctx.org,
        member,
        actor=ctx.user,
        period=period,
        amount_cents=amount,
        received_on=received,
        reason=ctx.field("reason"),
    )
    return ctx.redirect(ctx.org_url("member_detail", member_id=member.id) + "#dues")


ROUTES += [
    page("/o/{slug}/members", members_list, access=Permission.MEMBERS_READ),
    page(
        "/o/{slug}/members/{member_id}/dues",
        dues_correct,
        access=Permission.DUES_MANAGE,
        methods=["POST"],
    ),
    page("/o/{slug}/members/{member_id}", member_detail, access=Permission.MEMBERS_READ),
]


# -- roster imports ---------------------------------------------------------------------------

SCOPES = {
    "unit": ImportScope.UNIT,
    "unit_column": ImportScope.UNIT_COLUMN,
    "update_only": ImportScope.UPDATE_ONLY,
}


def imports_index(ctx: ViewContext, status_code: int = 200, **extra: object) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    context: dict[str, object] = {
        "history": imports.list_imports(ctx.db, ctx.org),
        "open_uploads": imports.list_open_uploads(ctx.db, ctx.org),
        "upload_states": {k: ctx.gettext(v) for k, v in UPLOAD_STATES.items()},
        "units": rosters.list_units(ctx.db, ctx.org),
        "today": datetime.now(ZoneInfo(ctx.org.timezone)).date().isoformat(),
    }
    context.update(extra)
    return ctx.render("rosters/imports.html", status_code=status_code, **context)


def imports_upload(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None and ctx.form is not None
    rosters.require_union(ctx.org)
    values = {name: ctx.field(name) for name in ("scope", "unit", "effective", "source")}
    errors: dict[str, str] = {}
    file = ctx.form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = ctx.gettext(N_("Choose the roster file to upload."))
    scope = SCOPES.get(values["scope"])
    if scope is None:
        errors["scope"] = ctx.gettext(N_("Choose what the file covers."))
    unit = None
    if scope == ImportScope.UNIT:
        unit = next(
            (u for u in rosters.list_units(ctx.db, ctx.org) if str(u.id) == values["unit"]), None
        )
        if unit is None:
            errors["unit"] = ctx.gettext(N_("Choose the bargaining unit this file is for."))
    try:
        effective = date.fromisoformat(values["effective"])
    except ValueError:
        errors["effective"] = ctx.gettext(N_("Enter the date as YYYY-MM-DD."))
    if errors:
        return imports_index(ctx, 400, errors=errors, values=values)
    assert isinstance(file, UploadFile) and scope is not None
    try:
        upload = imports.store_upload(
            ctx.db,
            ctx.org,
            actor=ctx.user,
            file_name=file.filename or "roster.csv",
            data=file.file.read(),
            scope=scope,
            unit=unit,
            effective=effective,
            source=values["source"],
        )
    except RatifyError as exc:
        return imports_index(
            ctx,
            exc.status_code,
            errors={"file": ctx.gettext(exc.message, **exc.params)},
            values=values,
        )
    return ctx.redirect(ctx.org_url("import_map", upload_id=upload.id))


def _upload(ctx: ViewContext) -> RosterUpload:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    return imports.get_upload(ctx.db, ctx.org, ctx.path_uuid("upload_id"))


def import_map(ctx: ViewContext, status_code: int = 200, problem: str | None = None) -> Response:
    upload = _upload(ctx)
    return ctx.render(
        "rosters/import_map.html",
        status_code=status_code,
        upload=upload,
        headers=imports.headers_of(upload),
        row_count=upload.row_count,
        fields=[(name, ctx.gettext(label)) for name, label in FIELD_LABELS.items()],
        problem=problem,
    )


def import_map_save(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    upload = _upload(ctx)
    mapping = {name: ctx.field(f"map_{name}") for name in FIELD_LABELS}
    try:
        imports.set_mapping(ctx.db, ctx.org, upload, mapping)
        if imports.in_background(upload, ctx.app.settings.import_background_rows):
            imports.check_later(ctx.db, ctx.org, upload)
    except RatifyError as exc:
        return import_map(ctx, exc.status_code, ctx.gettext(exc.message, **exc.params))
    return ctx.redirect(ctx.org_url("import_preview", upload_id=upload.id))


def import_preview(
    ctx: ViewContext, status_code: int = 200, problem: str | None = None
) -> Response:
    """The preview: computed now for a small file; for a large one, the worker's progress
    (the page refreshes itself) and then the preview it stored."""
    assert ctx.org is not None
    upload = _upload(ctx)
    if upload.problem and problem is None:
        message, params = imports.problem_of(upload)
        problem = ctx.gettext(message, **params)
    if upload.state in (UploadState.CHECKING, UploadState.APPLYING):
        return ctx.render(
            "rosters/import_progress.html",
            status_code=status_code,
            upload=upload,
            stalled=imports.worker_gave_up(ctx.db, upload),
        )
    summary = upload.summary
    if summary is None:
        summary = imports.summarize(
            ctx.db,
            ctx.org,
            imports.preview_upload(ctx.db, ctx.org, upload, ctx.app.settings.phone_region),
        )
    return ctx.render(
        "rosters/import_preview.html",
        status_code=status_code,
        upload=upload,
        summary=summary,
        counts=summary["counts"],
        version=imports.preview_version(upload, summary["counts"]),
        errors_kept=imports.ERRORS_KEPT,
        field_labels={k: ctx.gettext(v) for k, v in {**FIELD_LABELS, **STATUS_FIELDS}.items()},
        problem=problem,
    )


def import_apply(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    upload = _upload(ctx)
    confirm = ctx.field("confirm_leaving") == "yes"
    version = ctx.field("version")  # the preview this page showed
    try:
        if imports.in_background(upload, ctx.app.settings.import_background_rows):
            imports.apply_later(
                ctx.db, ctx.org, upload, actor=ctx.user, confirm_leaving=confirm, version=version
            )
            return ctx.redirect(ctx.org_url("import_preview", upload_id=upload.id))
        imports.apply_upload(
            ctx.db,
            ctx.org,
            upload,
            actor=ctx.user,
            phone_region=ctx.app.settings.phone_region,
            confirm_leaving=confirm,
            version=version,
        )
    except RatifyError as exc:
        return import_preview(ctx, exc.status_code, ctx.gettext(exc.message, **exc.params))
    return ctx.redirect(ctx.org_url("imports_index") + "?applied=1")


def import_errors_csv(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    upload = _upload(ctx)
    if upload.summary is not None:
        errors = [imports.RowError(*e) for e in upload.summary["errors"]]
    else:
        errors = imports.preview_upload(
            ctx.db, ctx.org, upload, ctx.app.settings.phone_region
        ).errors
    translated = [imports.RowError(e.row, e.column, ctx.gettext(e.message)) for e in errors]
    return Response(
        imports.errors_csv(translated),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="roster-errors.csv"'},
    )


UPLOAD_STATES = {
    UploadState.READY: N_("columns to check"),
    UploadState.CHECKING: N_("being checked"),
    UploadState.CHECKED: N_("checked: ready to apply"),
    UploadState.APPLYING: N_("being applied"),
    UploadState.APPLIED: N_("imported"),
    UploadState.FAILED: N_("not imported: see why"),
}
STATUS_FIELDS = {"membership_status": N_("Membership"), "employment_status": N_("Employment")}
FIELD_LABELS = {
    "member_number": N_("Member number"),
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "preferred_language": N_("Preferred language"),
    "address_line1": N_("Address"),
    "address_line2": N_("Address, second line"),
    "city": N_("City"),
    "region": N_("State or province"),
    "postal_code": N_("Postal code"),
    "country": N_("Country"),
    "worksite": N_("Worksite"),
    "classification": N_("Classification"),
    "hire_date": N_("Hire date"),
    "join_date": N_("Join date"),
    "birth_date": N_("Birth date"),
    "unit": N_("Bargaining unit"),
    "membership_status": N_("Membership"),
    "employment_status": N_("Employment"),
}

ROUTES += [
    page("/o/{slug}/imports", imports_index, access=Permission.ROSTER_IMPORT),
    page(
        "/o/{slug}/imports",
        imports_upload,
        access=Permission.ROSTER_IMPORT,
        methods=["POST"],
        upload=True,
    ),
    page("/o/{slug}/imports/{upload_id}/map", import_map, access=Permission.ROSTER_IMPORT),
    page(
        "/o/{slug}/imports/{upload_id}/map",
        import_map_save,
        access=Permission.ROSTER_IMPORT,
        methods=["POST"],
    ),
    page("/o/{slug}/imports/{upload_id}", import_preview, access=Permission.ROSTER_IMPORT),
    page(
        "/o/{slug}/imports/{upload_id}/apply",
        import_apply,
        access=Permission.ROSTER_IMPORT,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/imports/{upload_id}/errors.csv",
        import_errors_csv,
        access=Permission.ROSTER_IMPORT,
    ),
]


# -- eligibility preview ------------------------------------------------------------------------

MEMBERSHIP_CHOICES = ("member", "fee_payer", "non_member")
EMPLOYMENT_CHOICES = ("active", "on_leave", "laid_off", "terminated")


def _rule_from_query(
    ctx: ViewContext,
) -> tuple[elig.EligibilityRule | None, dict[str, object], dict[str, str]]:
    """The rule in the page's query string (a GET form, so a preview can be bookmarked)."""
    assert ctx.org is not None
    params = ctx.request.query_params
    today = datetime.now(ZoneInfo(ctx.org.timezone)).date()
    units = rosters.list_units(ctx.db, ctx.org)
    chosen_units = [u for u in units if str(u.id) in params.getlist("unit")]
    form: dict[str, object] = {
        "cutoff": params.get("cutoff", today.isoformat()),
        "units": [str(u.id) for u in chosen_units]
        if "run" in params
        else [str(u.id) for u in units],
        "membership": params.getlist("membership") if "run" in params else ["member"],
        "employment": params.getlist("employment") if "run" in params else ["active", "on_leave"],
        "good_standing": params.get("good_standing") == "1" if "run" in params else True,
        "joined_days": params.get("joined_days", ""),
        "includes": params.get("includes", "")[:20_000],
        "excludes": params.get("excludes", "")[:20_000],
    }
    errors: dict[str, str] = {}
    if "run" not in params:
        return None, form, errors
    try:
        cutoff = date.fromisoformat(str(form["cutoff"]))
    except ValueError:
        errors["cutoff"] = ctx.gettext(N_("Enter the date as YYYY-MM-DD."))
    if not chosen_units:
        errors["unit"] = ctx.gettext(
            N_("Choose at least one bargaining unit of this organization.")
        )
    joined_days: int | None = None
    if form["joined_days"]:
        try:
            joined_days = int(str(form["joined_days"]))
            if not 0 <= joined_days <= 36_500:
                raise ValueError
        except ValueError:
            errors["joined_days"] = ctx.gettext(N_("Enter a number of days."))
    manual: dict[str, dict[uuid.UUID, str]] = {}
    for key in ("includes", "excludes"):
        try:
            by_number = parse_manual(str(form[key]))
        except RatifyError as exc:
            errors[key] = ctx.gettext(exc.message, **exc.params)
            continue
        ids = queries.member_ids(ctx.db, ctx.org, by_number)
        unknown = sorted(set(by_number) - set(ids))
        if unknown:
            errors[key] = ctx.gettext(
                N_("No member has these member numbers: %(numbers)s"),
                numbers=", ".join(unknown[:20]),
            )
        manual[key] = {ids[n]: reason for n, reason in by_number.items() if n in ids}
    if errors:
        return None, form, errors
    rule = elig.EligibilityRule(
        cutoff=cutoff,
        unit_ids=frozenset(u.id for u in chosen_units),
        membership=frozenset(m for m in params.getlist("membership") if m in MEMBERSHIP_CHOICES),
        good_standing=bool(form["good_standing"]),
        employment=frozenset(e for e in params.getlist("employment") if e in EMPLOYMENT_CHOICES),
        joined_days_before=joined_days,
        includes=manual["includes"],
        excludes=manual["excludes"],
    )
    return rule, form, errors


def eligibility_preview(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    rosters.require_union(ctx.org)
    rule, form, errors = _rule_from_query(ctx)
    preview = elig.evaluate(ctx.db, ctx.org, rule) if rule else None
    shown: list[elig.Decision] = []
    query = ctx.request.query_params.get("q", "").strip().lower()[:100]
    if preview is not None:
        shown = [
            d
            for d in preview.decisions
            if not query or query in d.name.lower() or query == d.member_number.lower()
        ][:500]
    return ctx.render(
        "rosters/eligibility.html",
        status_code=400 if errors else 200,
        units=rosters.list_units(ctx.db, ctx.org),
        form=form,
        errors=errors,
        preview=preview,
        shown=shown,
        query=query,
        reasons={k: ctx.gettext(v) for k, v in elig.REASONS.items()},
        statuses={k: ctx.gettext(v) for k, v in STATUS_LABELS.items()},
        membership_choices=MEMBERSHIP_CHOICES,
        employment_choices=EMPLOYMENT_CHOICES,
        export_query=str(ctx.request.query_params),
    )


def eligibility_csv(ctx: ViewContext) -> Response:
    """The per-member list as CSV (names, numbers, units, reasons: no contact details). Every
    export is recorded in the audit log."""
    assert ctx.org is not None and ctx.user is not None
    rosters.require_union(ctx.org)
    rule, _, errors = _rule_from_query(ctx)
    if rule is None or errors:
        raise BadRequest(N_("Choose at least one bargaining unit of this organization."))
    preview = elig.evaluate(ctx.db, ctx.org, rule)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["member_number", "name", "units", "eligible", "reasons", "note"])
    for d in preview.decisions:
        writer.writerow(
            [
                imports.neutralize(d.member_number),
                imports.neutralize(d.name),
                " ".join(d.units),
                "yes" if d.eligible else "no",
                "; ".join(ctx.gettext(elig.REASONS[r]) for r in d.reasons),
                imports.neutralize(d.note),
            ]
        )
    audit.record(
        ctx.db,
        organization=ctx.org,
        actor=ctx.user,
        action="eligibility.exported",
        object_type="eligibility_preview",
        data={
            "cutoff": rule.cutoff.isoformat(),
            "units": sorted(str(u) for u in rule.unit_ids),
            "rows": len(preview.decisions),
        },
    )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="eligibility.csv"'},
    )


ROUTES += [
    page("/o/{slug}/eligibility", eligibility_preview, access=Permission.ELIGIBILITY_PREVIEW),
    page("/o/{slug}/eligibility.csv", eligibility_csv, access=Permission.ELIGIBILITY_PREVIEW),
]
