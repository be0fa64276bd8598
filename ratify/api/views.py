"""The roster API under ``/api/v1/orgs/{slug}/`` (members, batches, imports, eligibility) and
the admin page that makes and revokes its tokens."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ratify.api import services as tokens
from ratify.api.routing import ApiContext, Unprocessable, api_route
from ratify.api.schemas import (
    ApplyIn,
    ContactOut,
    Counts,
    DecisionOut,
    DecisionPage,
    EligibilityIn,
    EligibilityOut,
    FieldError,
    ImportOut,
    ImportStartForm,
    MappingIn,
    MemberBatchIn,
    MemberBatchOut,
    MemberList,
    MemberOut,
    MembersQuery,
    PreviewOut,
    RowErrorOut,
    UnitCount,
    UnitDecisions,
    UploadOut,
)
from ratify.audit import services as audit
from ratify.authz import Permission, Role
from ratify.errors import N_, Forbidden, RatifyError
from ratify.orgs.services import org_today
from ratify.rosters import eligibility as elig
from ratify.rosters import imports, queries
from ratify.rosters import services as rosters
from ratify.rosters.models import ImportScope, Member, RosterImport, RosterUpload, UploadState
from ratify.web.routing import ViewContext, page

API = "/api/v1/orgs/{slug}"
SHOWN_ERRORS = 1000


def record_export(ctx: ApiContext, action: str, object_type: str, data: dict[str, object]) -> None:
    """Member data read through the API is recorded as a page's export is."""
    audit.record(
        ctx.db,
        organization=ctx.org,
        actor=None,
        actor_label=tokens.actor_label(ctx.token),
        action=action,
        object_type=object_type,
        data={"via": "api", **data},
    )


# -- members -------------------------------------------------------------------------------------


def members_list(ctx: ApiContext) -> MemberList:
    """Members, paged and searchable; names for roles that read members, contact details only
    for roles that read them, counts alone for everyone else (observers)."""
    rosters.require_union(ctx.org)
    params = ctx.query_as(MembersQuery)
    units = [
        UnitCount(code=unit.code, name=unit.name, members=count)
        for unit, count in queries.unit_counts_on(ctx.db, ctx.org, org_today(ctx.org))
    ]
    readable = ctx.can(Permission.MEMBERS_READ)
    if params.q and not readable:
        # A count of matches would tell whether someone is a member.
        raise Forbidden(N_("Searching members needs a role that may read them."))
    found = queries.search_members(
        ctx.db,
        ctx.org,
        params.q,
        phone_region=ctx.app.settings.phone_region,
        page=params.page if readable else 1,
        per_page=params.per_page,
    )
    members = None
    if readable:
        contacts = ctx.can(Permission.MEMBER_CONTACTS_READ)
        members = [member_out(m, contacts=contacts) for m in found.members]
        if members:
            record_export(
                ctx,
                "members.exported",
                "members",
                {
                    "page": found.page,
                    "rows": len(members),
                    "contacts": contacts,
                    "search": bool(params.q),
                },
            )
    return MemberList(
        total=found.total,
        page=found.page,
        per_page=found.per_page,
        pages=found.pages,
        units=units,
        members=members,
    )


def member_out(member: Member, *, contacts: bool) -> MemberOut:
    return MemberOut(
        id=member.id,
        member_number=member.member_number,
        first_name=member.first_name,
        last_name=member.last_name,
        worksite=member.worksite,
        classification=member.classification,
        hire_date=member.hire_date,
        join_date=member.join_date,
        contact=ContactOut(
            email=member.email,
            phone=member.phone,
            preferred_language=member.preferred_language,
            address_line1=member.address_line1,
            address_line2=member.address_line2,
            city=member.city,
            region=member.region,
            postal_code=member.postal_code,
            country=member.country,
            birth_date=member.birth_date,
        )
        if contacts
        else None,
    )


def members_batch(ctx: ApiContext) -> MemberBatchOut:
    """Add or update members by member number (a membership system's sync): checked and applied
    as an update-only roster file, all or nothing."""
    rosters.require_union(ctx.org)
    batch = ctx.body_as(MemberBatchIn)
    try:
        result = tokens.upsert_batch(
            ctx.db,
            ctx.org,
            ctx.token,
            [member.as_row() for member in batch.members],
            effective=batch.effective_date or org_today(ctx.org),
            phone_region=ctx.app.settings.phone_region,
        )
    except tokens.BatchInvalid as exc:
        raise Unprocessable(
            [
                FieldError(index=index, field=f"members.{name}", message=message)
                for index, name, message in exc.errors
            ],
            exc.message,
            **exc.params,
        ) from None
    return MemberBatchOut(
        counts=Counts(**result.preview.counts()),
        roster_import=import_out(result.record) if result.record else None,
    )


def import_out(record: RosterImport) -> ImportOut:
    return ImportOut(
        id=record.id,
        file_name=record.file_name,
        scope=record.scope.value,
        unit_id=record.unit_id,
        effective_date=record.effective_date,
        mapping=record.mapping,
        counts=record.counts,
        actor_label=record.actor_label,
        created_at=record.created_at,
    )


# -- roster imports ------------------------------------------------------------------------------


def import_start(ctx: ApiContext) -> UploadOut:
    """Store a roster file for the next steps and answer with its guessed mapping and preview."""
    rosters.require_union(ctx.org)
    assert ctx.form is not None
    fields = ctx.body_as(ImportStartForm)
    file = ctx.form.get("file")
    problems: list[FieldError] = []
    if not isinstance(file, UploadFile):
        problems.append(FieldError(field="file", message=N_("Send the roster file.")))
    scope = ImportScope(fields.scope)
    unit = None
    if fields.unit:
        unit = next((u for u in rosters.list_units(ctx.db, ctx.org) if u.code == fields.unit), None)
        if unit is None:
            problems.append(
                FieldError(field="unit", message=N_("No bargaining unit has this code."))
            )
    elif scope == ImportScope.UNIT:
        problems.append(
            FieldError(field="unit", message=N_("Choose the bargaining unit this file is for."))
        )
    if problems:
        raise Unprocessable(problems)
    assert isinstance(file, UploadFile)
    upload = imports.store_upload(
        ctx.db,
        ctx.org,
        actor=None,
        file_name=file.filename or "roster.csv",
        data=file.file.read(),
        scope=scope,
        unit=unit if scope == ImportScope.UNIT else None,
        effective=fields.effective_date or org_today(ctx.org),
        source=fields.source,
    )
    if fields.mapping is not None:
        imports.set_mapping(ctx.db, ctx.org, upload, fields.mapping)
    _check_large(ctx, upload)
    return upload_out(ctx, upload)


def _check_large(ctx: ApiContext, upload: RosterUpload) -> None:
    """A large file is checked by the worker (as through the pages): poll the upload."""
    if "member_number" in upload.mapping and imports.in_background(
        upload, ctx.app.settings.import_background_rows
    ):
        imports.check_later(ctx.db, ctx.org, upload)


def _upload(ctx: ApiContext) -> RosterUpload:
    rosters.require_union(ctx.org)
    return imports.get_upload(ctx.db, ctx.org, ctx.path_uuid("upload_id"))


def import_read(ctx: ApiContext) -> UploadOut:
    return upload_out(ctx, _upload(ctx))


def import_mapping(ctx: ApiContext) -> UploadOut:
    upload = _upload(ctx)
    imports.set_mapping(ctx.db, ctx.org, upload, ctx.body_as(MappingIn).mapping)
    _check_large(ctx, upload)
    return upload_out(ctx, upload)


def import_apply(ctx: ApiContext) -> UploadOut:
    upload = _upload(ctx)
    body = ctx.body_as(ApplyIn)
    confirm, version = body.confirm_leaving, body.version
    if imports.in_background(upload, ctx.app.settings.import_background_rows):
        imports.apply_later(
            ctx.db,
            ctx.org,
            upload,
            actor=None,
            actor_label=tokens.actor_label(ctx.token),
            confirm_leaving=confirm,
            version=version,
        )
        return upload_out(ctx, upload)
    imports.apply_upload(
        ctx.db,
        ctx.org,
        upload,
        actor=None,
        actor_label=tokens.actor_label(ctx.token),
        phone_region=ctx.app.settings.phone_region,
        confirm_leaving=confirm,
        version=version,
    )
    return upload_out(ctx, upload)


def upload_out(ctx: ApiContext, upload: RosterUpload) -> UploadOut:
    record = (
        tokens.get_import(ctx.db, ctx.org, upload.roster_import_id)
        if upload.roster_import_id
        else None
    )
    preview = problem = None
    summary = upload.summary
    if upload.problem:
        message, params = imports.problem_of(upload)
        problem = ctx.gettext(message, **params)
    elif record is None and summary is None and upload.state == UploadState.READY:
        try:
            summary = imports.summarize(
                ctx.db,
                ctx.org,
                imports.preview_upload(ctx.db, ctx.org, upload, ctx.app.settings.phone_region),
            )
        except RatifyError as exc:  # a mapping without the member number, say
            problem = ctx.gettext(exc.message, **exc.params)
    if record is None and summary is not None:
        preview = PreviewOut(
            counts=Counts(**summary["counts"]),
            needs_confirmation=summary["needs_confirmation"],
            errors=[
                RowErrorOut(row=row, column=column, message=ctx.gettext(message))
                for row, column, message in summary["errors"][:SHOWN_ERRORS]
            ],
        )
    return UploadOut(
        id=upload.id,
        file_name=upload.file_name,
        scope=upload.scope.value,
        unit_id=upload.unit_id,
        effective_date=upload.effective_date,
        source=upload.source,
        status=upload.state.value,
        row_count=upload.row_count,
        rows_done=upload.rows_done,
        headers=imports.headers_of(upload),
        mapping=upload.mapping,
        version=imports.preview_version(upload, summary["counts"]) if preview and summary else None,
        preview=preview,
        problem=problem,
        roster_import=import_out(record) if record else None,
    )


# -- eligibility ---------------------------------------------------------------------------------


def eligibility(ctx: ApiContext) -> EligibilityOut:
    """Who a rule makes eligible on its cutoff date: counts by reason and per unit, and (for
    roles that read members) each member's decision, paged."""
    rosters.require_union(ctx.org)
    asked = ctx.body_as(EligibilityIn)
    units = {unit.code: unit for unit in rosters.list_units(ctx.db, ctx.org)}
    problems = [
        FieldError(index=i, field="units", message=N_("No bargaining unit has this code."))
        for i, code in enumerate(asked.units)
        if code not in units
    ]
    ids = queries.member_ids(
        ctx.db, ctx.org, [m.member_number for m in [*asked.includes, *asked.excludes]]
    )
    for name, listed in (("includes", asked.includes), ("excludes", asked.excludes)):
        problems += [
            FieldError(
                index=i,
                field=f"{name}.member_number",
                message=N_("No member has this member number."),
            )
            for i, m in enumerate(listed)
            if m.member_number not in ids
        ]
    if problems:
        raise Unprocessable(problems)
    rule = elig.EligibilityRule(
        cutoff=asked.cutoff,
        unit_ids=frozenset(units[code].id for code in asked.units),
        membership=frozenset(m.value for m in asked.membership),
        good_standing=asked.good_standing,
        employment=frozenset(e.value for e in asked.employment),
        joined_days_before=asked.joined_days_before,
        includes={ids[m.member_number]: m.reason for m in asked.includes},
        excludes={ids[m.member_number]: m.reason for m in asked.excludes},
    )
    preview = elig.evaluate(ctx.db, ctx.org, rule)
    decisions = None
    if ctx.can(Permission.MEMBERS_READ):
        total = len(preview.decisions)
        pages = max(1, -(-total // asked.per_page))
        number = min(asked.page, pages)
        start = (number - 1) * asked.per_page
        items = [
            DecisionOut(
                member_number=d.member_number,
                name=d.name,
                units=list(d.units),
                eligible=d.eligible,
                reasons=list(d.reasons),
                note=d.note,
            )
            for d in preview.decisions[start : start + asked.per_page]
        ]
        decisions = DecisionPage(
            total=total, page=number, per_page=asked.per_page, pages=pages, items=items
        )
        if items:
            record_export(
                ctx,
                "eligibility.exported",
                "eligibility_preview",
                {
                    "cutoff": rule.cutoff.isoformat(),
                    "units": sorted(str(u) for u in rule.unit_ids),
                    "page": number,
                    "rows": len(items),
                },
            )
    return EligibilityOut(
        cutoff=rule.cutoff,
        eligible=preview.included,
        not_eligible=len(preview.decisions) - preview.included,
        excluded_by_reason=dict(preview.excluded_by_reason()),
        reasons={code: ctx.gettext(label) for code, label in elig.REASONS.items()},
        units=[
            UnitDecisions(code=code, eligible=included, not_eligible=excluded)
            for code, (included, excluded) in preview.per_unit().items()
        ],
        decisions=decisions,
    )


# -- the admin page for tokens -------------------------------------------------------------------

ROLE_HINTS = {
    Role.STAFF: N_("reads members with contact details, sends batches and imports"),
    Role.COMMITTEE: N_("reads members' names, no contact details"),
    Role.OBSERVER: N_("reads counts only"),
}


def tokens_page(ctx: ViewContext, status_code: int = 200, **extra: object) -> Response:
    assert ctx.org is not None
    context: dict[str, object] = {
        "tokens": tokens.list_tokens(ctx.db, ctx.org),
        "roles": [(role, ctx.gettext(hint)) for role, hint in ROLE_HINTS.items()],
        "new_secret": None,
        "new_token": None,
        "api_base": ctx.app.settings.base_url.rstrip("/") + f"/api/v1/orgs/{ctx.org.slug}/",
    }
    context.update(extra)
    return ctx.render("api/tokens.html", status_code=status_code, **context)


def token_create(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    values = {"name": ctx.field("name"), "role": ctx.field("role")}
    role = next((r for r in tokens.GRANTABLE_ROLES if r.value == values["role"]), None)
    try:
        made = tokens.create_token(ctx.db, ctx.org, actor=ctx.user, name=values["name"], role=role)
    except tokens.TokenInvalid as exc:
        return tokens_page(
            ctx, 400, errors={k: ctx.gettext(v) for k, v in exc.errors.items()}, values=values
        )
    # Rendered, not redirected: this response is the only place the secret ever appears.
    return tokens_page(ctx, new_secret=made.secret, new_token=made.token)


def token_revoke(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    token = tokens.get_token(ctx.db, ctx.org, ctx.path_uuid("token_id"))
    tokens.revoke_token(ctx.db, ctx.org, token, actor=ctx.user)
    return ctx.redirect(ctx.org_url("tokens_page"))


ROUTES = [
    page("/o/{slug}/api-tokens", tokens_page, access=Permission.API_TOKENS),
    page("/o/{slug}/api-tokens", token_create, access=Permission.API_TOKENS, methods=["POST"]),
    page(
        "/o/{slug}/api-tokens/{token_id}/revoke",
        token_revoke,
        access=Permission.API_TOKENS,
        methods=["POST"],
    ),
    api_route(f"{API}/members", members_list, access=Permission.ORG_VIEW, query=MembersQuery,
              response=MemberList),
    api_route(f"{API}/members/batch", members_batch, access=Permission.ROSTER_IMPORT,
              methods=["POST"], body=MemberBatchIn, response=MemberBatchOut,
              max_body="max_upload_bytes"),
    api_route(f"{API}/imports", import_start, access=Permission.ROSTER_IMPORT, methods=["POST"],
              body=ImportStartForm, response=UploadOut, status_code=201, upload=True,
              max_body="max_upload_bytes"),
    api_route(f"{API}/imports/{{upload_id}}", import_read, access=Permission.ROSTER_IMPORT,
              response=UploadOut),
    api_route(f"{API}/imports/{{upload_id}}/mapping", import_mapping,
              access=Permission.ROSTER_IMPORT, methods=["PUT"], body=MappingIn,
              response=UploadOut),
    api_route(f"{API}/imports/{{upload_id}}/apply", import_apply,
              access=Permission.ROSTER_IMPORT, methods=["POST"], body=ApplyIn,
              response=UploadOut),
    api_route(f"{API}/eligibility", eligibility, access=Permission.ELIGIBILITY_PREVIEW,
              methods=["POST"], body=EligibilityIn, response=EligibilityOut),
]  # fmt: skip
