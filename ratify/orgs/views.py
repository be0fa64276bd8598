"""Choosing an organization, its home page and its settings."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

from starlette.responses import Response

from ratify.accounts import services as accounts
from ratify.authz import SIGNED_IN, Permission
from ratify.orgs import services as orgs
from ratify.orgs.models import OrgKind
from ratify.rosters.queries import unit_counts_on
from ratify.web.routing import ViewContext, page

COMMON_TIMEZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def home(ctx: ViewContext) -> Response:
    assert ctx.user is not None
    return ctx.render("orgs/choose.html", choices=accounts.memberships(ctx.db, ctx.user))


def org_home(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    counts = []
    if ctx.org.kind == OrgKind.UNION:
        today = datetime.now(ZoneInfo(ctx.org.timezone)).date()
        counts = unit_counts_on(ctx.db, ctx.org, today)
    return ctx.render("orgs/home.html", unit_counts=counts)


def org_settings(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    return ctx.render(
        "orgs/settings.html",
        timezones=[*COMMON_TIMEZONES, "UTC"],
        values={
            "name": ctx.org.name,
            "default_language": ctx.org.default_language,
            "timezone": ctx.org.timezone,
            "dues_grace_months": str(ctx.org.dues_grace_months),
            "publish_results": ctx.org.publish_results,
        },
        saved=ctx.request.query_params.get("saved"),
    )


def org_settings_save(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    values = {
        "name": ctx.field("name"),
        "default_language": ctx.field("default_language"),
        "timezone": ctx.field("timezone"),
    }
    if ctx.org.kind == OrgKind.UNION and ctx.form is not None and "dues_grace_months" in ctx.form:
        values["dues_grace_months"] = ctx.field("dues_grace_months")
    publish = ctx.field("publish_results") == "1"  # an unticked box sends nothing
    try:
        orgs.update_settings(ctx.db, ctx.org, actor=ctx.user, publish_results=publish, **values)
    except orgs.SettingsInvalid as exc:
        return ctx.render(
            "orgs/settings.html",
            status_code=400,
            timezones=[*COMMON_TIMEZONES, "UTC"],
            values={**values, "publish_results": publish},
            errors={k: ctx.gettext(v) for k, v in exc.errors.items()},
            saved=None,
        )
    return ctx.redirect(ctx.org_url("org_settings") + "?saved=1")


ROUTES = [
    page("/", home, access=SIGNED_IN),
    page("/o/{slug}/", org_home, access=Permission.ORG_VIEW),
    page("/o/{slug}/settings", org_settings, access=Permission.ORG_SETTINGS),
    page("/o/{slug}/settings", org_settings_save, access=Permission.ORG_SETTINGS, methods=["POST"]),
]
