"""The audit log page: admins see it whole, observers with members pseudonymized."""

from __future__ import annotations

from starlette.responses import Response

from ratify.audit import services as audit
from ratify.authz import Permission, Role
from ratify.web.routing import ViewContext, page

PAGE_SIZE = 50


def audit_log(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    before: int | None
    try:
        before = int(ctx.request.query_params.get("before", ""))
    except ValueError:
        before = None
    if before is not None and not 1 <= before <= 2**31:
        before = None  # not a position in any chain
    events = audit.list_events(
        ctx.db,
        ctx.org,
        pseudonymize=ctx.role != Role.ADMIN,
        secret_key=ctx.app.settings.secret_key,
        before_seq=before,
        limit=PAGE_SIZE,
    )
    check = audit.verify_chain(ctx.db, ctx.org.id)
    older = events[-1].seq if len(events) == PAGE_SIZE and events[-1].seq > 1 else None
    return ctx.render("audit/log.html", events=events, check=check, older=older)


ROUTES = [page("/o/{slug}/audit", audit_log, access=Permission.AUDIT_READ)]
