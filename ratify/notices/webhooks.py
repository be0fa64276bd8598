"""The SMS gateway's webhook for replies: STOP records an opt-out (no more texts to that
phone), START lifts it. Only a request signed with the gateway's token is believed; anything
else is refused before the database is touched.

The signature covers the address the gateway called, so it is checked against the public
address (RATIFY_BASE_URL and the path), which is what a gateway behind a proxy signed.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy import delete
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ratify.authz import Access
from ratify.db import insert_ignoring_conflicts, unit_of_work, utcnow
from ratify.notices import sms
from ratify.notices.models import SmsOptOut
from ratify.web.routing import AppState, in_view_thread, read_form

log = structlog.get_logger("ratify.notices")
EMPTY_REPLY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BODY = 64 * 1024


def record_reply(db: Session, phone: str, body: str) -> str | None:
    """Apply one reply; what it meant (stop, start) or None."""
    intent = sms.reply_intent(body)
    if intent == "stop":
        insert_ignoring_conflicts(db, SmsOptOut, phone=phone, opted_out_at=utcnow())
    elif intent == "start":
        db.execute(delete(SmsOptOut).where(SmsOptOut.phone == phone))
    return intent


def _public_url(state: AppState, request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return state.settings.base_url.rstrip("/") + request.url.path + query


async def sms_reply(request: Request) -> Response:
    state: AppState = request.app.state.ratify
    token = state.settings.sms_token
    if not token:
        return Response("SMS replies are not set up here.", status_code=404)
    try:
        form = await read_form(request, max_bytes=MAX_BODY, max_fields=100)
    except ClientDisconnect:
        return Response(status_code=400)
    try:
        params: Mapping[str, str] = {
            key: value for key, value in form.multi_items() if isinstance(value, str)
        }
        given = request.headers.get("x-twilio-signature", "")
        if not sms.signature_ok(token, _public_url(state, request), params, given):
            log.warning("sms.webhook_refused", reason="bad signature")
            return Response("Bad signature.", status_code=403)
        phone = params.get("From", "").strip()
        if not phone.startswith("+") or not phone[1:].isdigit() or len(phone) > 20:
            return Response("No sender number.", status_code=400)

        def apply() -> str | None:
            with unit_of_work(state.sessions) as db:
                return record_reply(db, phone, params.get("Body", ""))

        intent = await in_view_thread(state.settings, apply)
        if intent:
            log.info("sms.reply", intent=intent)  # the phone itself is not logged
        return Response(EMPTY_REPLY, media_type="text/xml")
    finally:
        await form.close()


class WebhookRoute(Route):
    """A route for another system's calls: no session, no CSRF token (it carries its own
    signature instead), public in the route table's terms."""

    def __init__(self, path: str, endpoint: object, name: str) -> None:
        self.access = Access.PUBLIC
        super().__init__(path, endpoint, methods=["POST"], name=name)  # type: ignore[arg-type]


ROUTES = [WebhookRoute("/webhooks/sms/replies", sms_reply, name="sms_reply")]
