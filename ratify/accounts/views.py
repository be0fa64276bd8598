"""Sign in and out, set and change passwords, and manage an organization's staff."""

from __future__ import annotations

import ipaddress

from starlette.responses import Response

from ratify.accounts import forms
from ratify.accounts import services as accounts
from ratify.authz import PUBLIC, SIGNED_IN, Permission, Role
from ratify.errors import Conflict, RatifyError, TooManyRequests
from ratify.web.routing import ViewContext, page, safe_next


def login_form(ctx: ViewContext) -> Response:
    if ctx.user is not None:
        return ctx.redirect(safe_next(ctx.request.query_params.get("next"), after_login(ctx)))
    return ctx.render("accounts/login.html", next=ctx.request.query_params.get("next", ""))


def login(ctx: ViewContext) -> Response:
    email = ctx.field("email")
    next_url = ctx.field("next")
    try:
        user = accounts.authenticate(
            ctx.db,
            ctx.app.settings,
            ctx.app.hasher,
            email=email,
            password=ctx.field("password"),
            client_address=client_address(ctx),
        )
    except (accounts.InvalidCredentials, TooManyRequests) as exc:
        # Returned, not raised: the failed attempt must be counted (committed).
        return ctx.render(
            "accounts/login.html",
            status_code=exc.status_code,
            problem=ctx.gettext(exc.message, **exc.params),
            values={"email": email},
            next=next_url,
        )
    ctx.user = user
    ctx.sign_in(user)
    return ctx.redirect(safe_next(next_url, after_login(ctx)))


def password_reset_form(ctx: ViewContext) -> Response:
    return ctx.render("accounts/password_reset.html", sent=False)


def password_reset(ctx: ViewContext) -> Response:
    """The same answer whether or not an account has the address (nobody learns which do)."""
    email = ctx.field("email").strip()
    if (problem := accounts.check_email(email)) is not None:
        return ctx.render(
            "accounts/password_reset.html",
            status_code=400,
            sent=False,
            errors={"email": ctx.gettext(problem)},
            values={"email": email},
        )
    try:
        accounts.request_reset_by_email(
            ctx.db, ctx.app.settings, email=email, client_address=client_address(ctx)
        )
    except TooManyRequests as exc:
        return ctx.render(
            "accounts/password_reset.html",
            status_code=exc.status_code,
            sent=False,
            problem=ctx.gettext(exc.message, **exc.params),
            values={"email": email},
        )
    return ctx.render("accounts/password_reset.html", sent=True)


def after_login(ctx: ViewContext) -> str:
    assert ctx.user is not None
    orgs = accounts.organizations_of(ctx.db, ctx.user)
    if len(orgs) == 1:
        return ctx.url("org_home", slug=orgs[0].slug)
    return ctx.url("home")


def logout(ctx: ViewContext) -> Response:
    assert ctx.user is not None
    accounts.logout(ctx.db, ctx.user)
    ctx.sign_out()
    return ctx.redirect(ctx.url("login_form") + "?signed_out=1")


def client_address(ctx: ViewContext) -> str:
    # Already the real client when the request came through a trusted proxy
    # (uvicorn's ProxyHeadersMiddleware, configured from RATIFY_TRUSTED_PROXIES).
    client = ctx.request.client
    return throttle_address(client.host if client else "unknown")


def throttle_address(host: str) -> str:
    """What a client is counted by: its IPv4 address, or its IPv6 /64 (one household or
    server gets a whole /64, and could rotate through it)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # an IPv4 client of a dual-stack listener
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def set_password_form(ctx: ViewContext) -> Response:
    # Opening the link changes nothing (mail scanners prefetch links).
    token = ctx.request.path_params["token"]
    found, user = accounts.account_for_token(ctx.db, token)
    return ctx.render("accounts/set_password.html", account=user, purpose=found.purpose.value)


def set_password(ctx: ViewContext) -> Response:
    token = ctx.request.path_params["token"]
    try:
        accounts.use_password_token(
            ctx.db, ctx.app.hasher, token, ctx.field("password"), ctx.field("confirm")
        )
    except accounts.FormInvalid as exc:
        found, user = accounts.account_for_token(ctx.db, token)
        return ctx.render(
            "accounts/set_password.html",
            status_code=400,
            account=user,
            purpose=found.purpose.value,
            errors={k: ctx.gettext(v) for k, v in exc.errors.items()},
        )
    ctx.sign_out()
    return ctx.redirect(ctx.url("login_form") + "?password_set=1")


def account(ctx: ViewContext) -> Response:
    return ctx.render("accounts/account.html", saved=ctx.request.query_params.get("saved"))


def change_password(ctx: ViewContext) -> Response:
    assert ctx.user is not None
    try:
        accounts.change_password(
            ctx.db,
            ctx.app.hasher,
            ctx.user,
            current=ctx.field("current"),
            new=ctx.field("password"),
            confirm=ctx.field("confirm"),
        )
    except accounts.FormInvalid as exc:
        return ctx.render(
            "accounts/account.html",
            status_code=400,
            errors={k: ctx.gettext(v) for k, v in exc.errors.items()},
            saved=None,
        )
    # Every other session ended with the change; this one carries on under the new epoch.
    ctx.sign_in(ctx.user)
    return ctx.redirect(ctx.url("account") + "?saved=password")


# -- staff of an organization ---------------------------------------------------------------


def staff_list(ctx: ViewContext, status_code: int = 200, **extra: object) -> Response:
    assert ctx.org is not None
    context: dict[str, object] = {
        "staff": accounts.list_staff(ctx.db, ctx.org),
        "roles": list(Role),
        "new_link": None,
        "new_link_for": None,
    }
    context.update(extra)
    return ctx.render("accounts/staff.html", status_code=status_code, **context)


def staff_add(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    parsed = forms.parse_staff_form(ctx.form)
    if parsed.errors:
        return staff_list(
            ctx,
            400,
            errors={k: ctx.gettext(v) for k, v in parsed.errors.items()},
            values=parsed.values,
        )
    assert parsed.role is not None
    try:
        added = accounts.add_staff(
            ctx.db,
            ctx.org,
            actor=ctx.user,
            email=parsed.values["email"],
            name=parsed.values["name"],
            role=parsed.role,
            token_max_age=ctx.app.settings.password_token_max_age,
        )
    except accounts.FormInvalid as exc:
        return staff_list(
            ctx,
            400,
            errors={k: ctx.gettext(v) for k, v in exc.errors.items()},
            values=parsed.values,
        )
    except Conflict as exc:
        return staff_list(
            ctx, 409, problem=ctx.gettext(exc.message, **exc.params), values=parsed.values
        )
    link = set_password_link(ctx, added.set_password_token) if added.set_password_token else None
    return staff_list(ctx, new_link=link, new_link_for=added.role.user)


def staff_change_role(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    staff_role = accounts.get_staff_role(ctx.db, ctx.org, ctx.path_uuid("role_id"))
    role = forms.parse_role(ctx.field("role"))
    if role is None:
        return staff_list(ctx, 400, problem=ctx.gettext(forms.ROLE_REQUIRED))
    try:
        accounts.change_role(ctx.db, ctx.org, actor=ctx.user, staff_role=staff_role, role=role)
    except RatifyError as exc:
        return staff_list(ctx, exc.status_code, problem=ctx.gettext(exc.message, **exc.params))
    return ctx.redirect(ctx.org_url("staff_list"))


def staff_remove(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    staff_role = accounts.get_staff_role(ctx.db, ctx.org, ctx.path_uuid("role_id"))
    try:
        accounts.remove_staff(ctx.db, ctx.org, actor=ctx.user, staff_role=staff_role)
    except RatifyError as exc:
        return staff_list(ctx, exc.status_code, problem=ctx.gettext(exc.message, **exc.params))
    return ctx.redirect(ctx.org_url("staff_list"))


def staff_new_link(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    staff_role = accounts.get_staff_role(ctx.db, ctx.org, ctx.path_uuid("role_id"))
    try:
        token = accounts.issue_link_for_staff(
            ctx.db,
            ctx.org,
            actor=ctx.user,
            user=staff_role.user,
            max_age=ctx.app.settings.password_token_max_age,
        )
    except Conflict as exc:
        return staff_list(ctx, exc.status_code, problem=ctx.gettext(exc.message, **exc.params))
    return staff_list(ctx, new_link=set_password_link(ctx, token), new_link_for=staff_role.user)


def set_password_link(ctx: ViewContext, token: str) -> str:
    return ctx.app.settings.base_url.rstrip("/") + ctx.url("set_password_form", token=token)


ROUTES = [
    page("/login", login_form, access=PUBLIC),
    page("/login", login, access=PUBLIC, methods=["POST"]),
    page("/logout", logout, access=SIGNED_IN, methods=["POST"]),
    page("/password-reset", password_reset_form, access=PUBLIC),
    page("/password-reset", password_reset, access=PUBLIC, methods=["POST"]),
    page("/set-password/{token}", set_password_form, access=PUBLIC),
    page("/set-password/{token}", set_password, access=PUBLIC, methods=["POST"]),
    page("/account", account, access=SIGNED_IN),
    page("/account/password", change_password, access=SIGNED_IN, methods=["POST"]),
    page("/o/{slug}/staff", staff_list, access=Permission.STAFF_MANAGE),
    page("/o/{slug}/staff", staff_add, access=Permission.STAFF_MANAGE, methods=["POST"]),
    page(
        "/o/{slug}/staff/{role_id}/role",
        staff_change_role,
        access=Permission.STAFF_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/staff/{role_id}/remove",
        staff_remove,
        access=Permission.STAFF_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/staff/{role_id}/link",
        staff_new_link,
        access=Permission.STAFF_MANAGE,
        methods=["POST"],
    ),
]
