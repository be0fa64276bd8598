"""Development mail: the catcher `make run` starts, and the pages that list what it caught."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from ratify.app import create_app
from ratify.notices import campaigns, devmail, outbox
from ratify.notices.models import Reach
from ratify.settings import Settings
from tests.conftest import SecretLedger, make_client
from tests.notices.support import link_of, open_vote_with_contacts, send_everything, voter_of
from tests.notices.test_outbox import form


def test_notices_sent_in_development_are_caught_and_listed(
    db: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    secret_ledger: SecretLedger,
) -> None:
    settings = replace(settings, var_dir=tmp_path)
    controller, smtp = devmail.start_catcher(settings)
    try:
        settings = replace(
            settings,
            smtp_host=smtp["RATIFY_SMTP_HOST"],
            smtp_port=int(smtp["RATIFY_SMTP_PORT"]),
            smtp_security="none",
        )
        u, vote = open_vote_with_contacts(db, settings.secret_key)
        campaign = campaigns.create(
            db, u.org, vote, form(reach=Reach.EMAIL, tally_group="TECH"), actor=u.staff
        )
        campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
        db.commit()
        send_everything(
            outbox.Outbox(sessions, settings, [outbox.email_sender(settings)], worker_id="w")
        )
        caught = devmail.wait_for(settings, 3)
    finally:
        controller.stop()
    assert len(caught) == 3
    assert {c.to for c in caught} == {
        f"First{n} Last{n} <t{n}@example.org>" for n in (2001, 2002, 2003)
    }
    client = make_client(create_app(settings, sessions=sessions), secret_ledger)
    listing = client.get("/dev/mail")
    assert listing.status_code == 200
    assert all(f"/dev/mail/{c.name}" in listing.text for c in caught)
    one = next(c for c in caught if "t2002" in c.to)
    page = client.get(f"/dev/mail/{one.name}")
    link = link_of(settings, voter_of(db, vote, "2002"))
    secret_ledger.add(link.rsplit("/", 1)[1])
    assert page.status_code == 200 and f'href="{link}"' in page.text
    assert client.get("/dev/mail/..%2Fsecret_key").status_code == 404
    assert client.get("/dev/mail/20260101T000000-1.eml").status_code == 404

    production = make_client(
        create_app(replace(settings, env="production"), sessions=sessions), secret_ledger
    )
    assert production.get("/dev/mail").status_code == 404
    assert production.get(f"/dev/mail/{one.name}").status_code == 404
