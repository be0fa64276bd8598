"""Event pages: leaders create meetings, actions and listening sessions and record who came
from the event's list; members check in on their phone with the event's short code."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from starlette.responses import Response

from ratify.accounts.views import client_address
from ratify.authz import PUBLIC, Permission
from ratify.community import constituencies, events
from ratify.community.models import Event, EventKind
from ratify.errors import N_, BadRequest, TooManyRequests
from ratify.orgs.services import org_today
from ratify.votes.forms import local_time, parse_local_time
from ratify.votes.services import within_years
from ratify.web.forms import text_field
from ratify.web.routing import ViewContext, page

FORM_FIELDS = ("kind", "title", "held_on", "location", "constituency", "closes")


# -- leaders' pages ---------------------------------------------------------------------------


def events_list(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    events.require_community(ctx.org)
    return ctx.render(
        "community/events.html", listed=events.list_events(ctx.db, ctx.org), **_labels(ctx)
    )


def event_new(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    events.require_community(ctx.org)
    today = org_today(ctx.org)
    return _form(ctx, None, {"kind": EventKind.MEETING.value, "held_on": today.isoformat()})


def event_create(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    events.require_community(ctx.org)
    values = _submitted(ctx)
    fields, errors = _parse(ctx, values)
    if fields is not None and not errors:
        try:
            with ctx.db.begin_nested():
                event = events.create_event(ctx.db, ctx.org, actor=ctx.user, fields=fields)
        except events.EventInvalid as exc:
            errors = exc.errors
        else:
            return ctx.redirect(ctx.org_url("event_detail", event_id=event.id))
    elif fields is not None:
        errors = {**events.check_fields(ctx.db, ctx.org, fields), **errors}
    return _form(ctx, None, values, errors, status_code=400)


def event_edit(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    events.require_community(ctx.org)
    event = events.get_event(ctx.db, ctx.org, ctx.path_uuid("event_id"))
    return _form(ctx, event, _saved(ctx, event))


def event_update(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    events.require_community(ctx.org)
    event = events.get_event(ctx.db, ctx.org, ctx.path_uuid("event_id"))
    values = {
        **_submitted(ctx),
        "kind": event.kind.value,
        "constituency": str(event.constituency_id or ""),
    }
    fields, errors = _parse(ctx, values)
    if fields is not None and not errors:
        try:
            with ctx.db.begin_nested():
                events.update_event(ctx.db, ctx.org, event, actor=ctx.user, fields=fields)
        except events.EventInvalid as exc:
            errors = exc.errors
        else:
            return ctx.redirect(ctx.org_url("event_detail", event_id=event.id))
    return _form(ctx, event, values, errors, status_code=400)


def event_detail(
    ctx: ViewContext, *, status_code: int = 200, problem: str | None = None
) -> Response:
    assert ctx.org is not None
    events.require_community(ctx.org)
    event = events.get_event(ctx.db, ctx.org, ctx.path_uuid("event_id"))
    query = ctx.request.query_params.get("q", "")[:200]
    people, more = events.people(ctx.db, event, name=query)
    try:
        recorded = int(ctx.request.query_params.get("recorded", ""))
    except ValueError:
        recorded = None
    return ctx.render(
        "community/event.html",
        status_code=status_code,
        problem=problem,
        event=event,
        constituency=events.constituency_name(ctx.db, event),
        checkin_url=_checkin_url(ctx, event),
        attended=events.attendance(ctx.db, event),
        people=people,
        more=more,
        query=query,
        recorded=recorded if status_code == 200 else None,
        closed=events.checkin_closed(event),
        **_labels(ctx),
    )


def attendance_record(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    events.require_community(ctx.org)
    event = events.get_event(ctx.db, ctx.org, ctx.path_uuid("event_id"))
    member_ids: list[uuid.UUID] = []
    raw_ids = ctx.form.getlist("member_id") if ctx.form is not None else []
    try:
        for raw in raw_ids:
            if not isinstance(raw, str):
                raise BadRequest(N_("A file was sent where text was expected."))
            try:
                member_ids.append(uuid.UUID(raw))
            except ValueError:
                raise BadRequest(
                    N_("Someone you ticked is not on this event's list any more. Reload the page.")
                ) from None
        if not member_ids:
            raise BadRequest(N_("Tick the people who attended."))
        with ctx.db.begin_nested():
            count = events.record_attendance(ctx.db, ctx.org, event, member_ids, actor=ctx.user)
    except BadRequest as exc:
        return event_detail(ctx, status_code=400, problem=ctx.gettext(exc.message, **exc.params))
    target = ctx.org_url("event_detail", event_id=event.id) + f"?recorded={count}"
    return ctx.redirect(target + "#attendance")


def attendance_remove(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    events.require_community(ctx.org)
    event = events.get_event(ctx.db, ctx.org, ctx.path_uuid("event_id"))
    events.remove_attendance(ctx.db, ctx.org, event, ctx.path_uuid("attendance_id"), actor=ctx.user)
    return ctx.redirect(ctx.org_url("event_detail", event_id=event.id) + "#attendance")


def _labels(ctx: ViewContext) -> dict[str, Any]:
    return {
        "kind_labels": {k.value: ctx.gettext(v) for k, v in events.KIND_LABELS.items()},
        "method_labels": {k.value: ctx.gettext(v) for k, v in events.METHOD_LABELS.items()},
    }


def _checkin_url(ctx: ViewContext, event: Event) -> str:
    return f"{ctx.app.settings.base_url.rstrip('/')}/checkin?code={event.checkin_code}"


def _submitted(ctx: ViewContext) -> dict[str, str]:
    return {name: text_field(ctx.form, name) for name in FORM_FIELDS}


def _saved(ctx: ViewContext, event: Event) -> dict[str, str]:
    assert ctx.org is not None
    return {
        "kind": event.kind.value,
        "title": event.title,
        "held_on": event.held_on.isoformat(),
        "location": event.location,
        "constituency": str(event.constituency_id or ""),
        "closes": local_time(event.checkin_closes_at, ctx.org.timezone),
    }


def _parse(
    ctx: ViewContext, values: dict[str, str]
) -> tuple[events.EventFields | None, dict[str, str]]:
    """The form's fields, and the problems found reading them (field -> message, not yet
    translated). Fields is None when the kind or the date cannot be read."""
    assert ctx.org is not None
    errors: dict[str, str] = {}
    try:
        kind: EventKind | None = EventKind(values["kind"])
    except ValueError:
        kind = None
        errors["kind"] = N_("Choose what kind of event it is.")
    held_on: date | None
    try:
        held_on = date.fromisoformat(values["held_on"])
    except ValueError:
        held_on = None
    if held_on is None or not within_years(held_on):
        held_on = None
        errors["held_on"] = N_("Enter the date as YYYY-MM-DD.")
    constituency_id: uuid.UUID | None = None
    if values["constituency"]:
        try:
            constituency_id = uuid.UUID(values["constituency"])
        except ValueError:
            errors["constituency"] = N_("Choose one of the organization's constituencies.")
    closes, error = parse_local_time(values["closes"], ctx.org.timezone)
    if error:
        errors["closes"] = error
    if kind is None or held_on is None:
        return None, errors
    fields = events.EventFields(
        kind=kind,
        title=values["title"],
        held_on=held_on,
        location=values["location"],
        constituency_id=constituency_id,
        checkin_closes_at=closes,
    )
    return fields, errors


def _form(
    ctx: ViewContext,
    event: Event | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    assert ctx.org is not None
    return ctx.render(
        "community/event_form.html",
        status_code=status_code,
        event=event,
        values=values,
        errors={k: ctx.gettext(v) for k, v in (errors or {}).items()},
        constituencies=constituencies.list_constituencies(ctx.db, ctx.org),
        **_labels(ctx),
    )


# -- members' check-in (public) ---------------------------------------------------------------


def checkin_form(ctx: ViewContext) -> Response:
    code = ctx.request.query_params.get("code", "")[:32]
    return ctx.render("community/checkin.html", values={"code": code, "contact": ""})


def checkin_submit(ctx: ViewContext) -> Response:
    """The phone or email is read, matched and forgotten: never logged, never audited."""
    values = {"code": ctx.field("code")[:32], "contact": ctx.field("contact")[:254]}
    try:
        done = events.attempt_check_in(
            ctx.db,
            ctx.app.settings,
            code=values["code"],
            contact=values["contact"],
            client_address=client_address(ctx),
        )
    except (events.CheckinRefused, TooManyRequests) as exc:
        # Returned, not raised: the refused attempt's throttle hits must be committed.
        return ctx.render(
            "community/checkin.html",
            status_code=exc.status_code,
            problem=ctx.gettext(exc.message, **exc.params),
            values=values,
        )
    return ctx.render("community/checkin_done.html", event=done.event, already=done.already)


ROUTES = [
    page("/o/{slug}/events", events_list, access=Permission.COMMUNITY_MANAGE),
    page("/o/{slug}/events/new", event_new, access=Permission.COMMUNITY_MANAGE),
    page(
        "/o/{slug}/events",
        event_create,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
    page("/o/{slug}/events/{event_id}", event_detail, access=Permission.COMMUNITY_MANAGE),
    page("/o/{slug}/events/{event_id}/edit", event_edit, access=Permission.COMMUNITY_MANAGE),
    page(
        "/o/{slug}/events/{event_id}/edit",
        event_update,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/events/{event_id}/attendance",
        attendance_record,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
    page(
        "/o/{slug}/events/{event_id}/attendance/{attendance_id}/remove",
        attendance_remove,
        access=Permission.COMMUNITY_MANAGE,
        methods=["POST"],
    ),
    page("/checkin", checkin_form, access=PUBLIC),
    page("/checkin", checkin_submit, access=PUBLIC, methods=["POST"]),
]
