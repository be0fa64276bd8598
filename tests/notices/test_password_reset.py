"""Staff password reset by email: a one-time link, throttled, audited, never stored."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.app import create_app
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.notices import outbox
from ratify.notices.models import Message, MessageKind
from ratify.settings import Settings
from tests.conftest import SecretLedger, make_client
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, login
from tests.notices.support import SmtpSink, mail_settings, send_everything, smtp_sink

__all__ = ["smtp_sink"]


def test_a_reset_link_arrives_by_email_works_once_and_is_stored_nowhere(
    db: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp_sink: SmtpSink,
    secret_ledger: SecretLedger,
) -> None:
    settings = mail_settings(settings, smtp_sink)
    org = make_org(db)
    user = make_user(db, org, Role.STAFF)
    db.commit()
    client = make_client(
        create_app(settings, sessions=sessions), secret_ledger, follow_redirects=False
    )
    assert "/password-reset" in client.get("/login").text
    token = csrf_from(client, "/password-reset")
    answer = client.post("/password-reset", data={"email": user.email.upper(), "csrf_token": token})
    assert answer.status_code == 200 and "on its way" in answer.text
    nobody = client.post(
        "/password-reset", data={"email": "nobody@example.org", "csrf_token": token}
    )
    assert nobody.status_code == 200 and "on its way" in nobody.text  # the same answer
    (message,) = db.scalars(select(Message)).all()
    assert message.kind == MessageKind.PASSWORD_RESET and message.to_address == user.email

    send_everything(
        outbox.Outbox(sessions, settings, [outbox.email_sender(settings)], worker_id="w")
    )
    (mail,) = smtp_sink.received
    assert mail.rcpt_tos == [user.email]
    body = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    secret = re.search(r"/set-password/([A-Za-z0-9_\-]+)", body)
    assert secret is not None
    secret_ledger.add(secret.group(1))
    rows = [repr(tuple(r)) for r in db.execute(select(Message.__table__)).all()]
    assert not any(secret.group(1) in row for row in rows)

    path = f"/set-password/{secret.group(1)}"
    assert client.get(path).status_code == 200
    new_password = "a brand new passphrase"
    done = client.post(
        path,
        data={
            "password": new_password,
            "confirm": new_password,
            "csrf_token": csrf_from(client, path),
        },
    )
    assert done.status_code == 303
    assert client.get(path).status_code == 404  # once only
    assert login(client, user.email, new_password).status_code == 303
    actions = set(db.scalars(select(AuditEvent.action)))
    assert "staff.password_reset_emailed" in actions


def test_reset_requests_are_throttled_and_bad_addresses_refused(
    db: Session,
    client,  # type: ignore[no-untyped-def]
) -> None:
    org = make_org(db)
    user = make_user(db, org, Role.STAFF)
    token = csrf_from(client, "/password-reset")
    bad = client.post("/password-reset", data={"email": "not an address", "csrf_token": token})
    assert bad.status_code == 400
    for _ in range(3):
        ok = client.post("/password-reset", data={"email": user.email, "csrf_token": token})
        assert ok.status_code == 200
    throttled = client.post("/password-reset", data={"email": user.email, "csrf_token": token})
    assert throttled.status_code == 429
    assert len(db.scalars(select(Message)).all()) == 3
    assert client.post("/password-reset", data={"email": user.email}).status_code == 403
