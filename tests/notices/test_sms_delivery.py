"""Texts through the outbox to a stand-in gateway over real HTTP, and the STOP webhook."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.app import create_app
from ratify.notices import campaigns, outbox, sms
from ratify.notices.models import BothChannels, Message, MessageStatus, Reach, SmsOptOut
from ratify.settings import Settings
from tests.conftest import SecretLedger, make_client
from tests.notices.support import link_of, open_vote_with_contacts, send_everything, voter_of
from tests.notices.test_outbox import form
from tests.notices.test_sms import ACCOUNT, SENDER, TOKEN, FakeTwilio, fake_twilio

__all__ = ["fake_twilio"]
WEBHOOK = "/webhooks/sms/replies"


def sms_settings(settings: Settings, fake: FakeTwilio) -> Settings:
    return replace(
        settings,
        sms_base_url=fake.url,
        sms_account=ACCOUNT,
        sms_token=TOKEN,
        sms_from=SENDER,
        sms_per_second=1000.0,
    )


def _sms_box(sessions: sessionmaker[Session], settings: Settings) -> outbox.Outbox:
    gateway = sms.TwilioGateway.from_settings(settings)
    assert gateway is not None
    return outbox.Outbox(sessions, settings, [outbox.sms_sender(settings, gateway)], worker_id="w")


def test_texts_go_to_the_gateway_each_with_its_own_link_and_a_stable_key(
    db: Session, sessions: sessionmaker[Session], settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings(settings, fake_twilio)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = campaigns.create(
        db, u.org, vote, form(reach=Reach.SMS, both_channels=BothChannels.SMS), actor=u.staff
    )
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    db.commit()
    send_everything(_sms_box(sessions, settings))
    by_phone = {r.form["To"][0]: r for r in fake_twilio.requests}
    assert set(by_phone) == {"+14155550103", "+14155550104"}
    for number, phone in (("1003", "+14155550103"), ("1004", "+14155550104")):
        body = by_phone[phone].form["Body"][0]
        assert link_of(settings, voter_of(db, vote, number)) in body
        assert "STOP" in body
        assert by_phone[phone].form["From"] == [SENDER]
        assert by_phone[phone].headers["I-Twilio-Idempotency-Token"]
    db.expire_all()
    sent = db.scalars(select(Message)).all()
    assert {m.status for m in sent} == {MessageStatus.SENT}
    assert {m.provider_id for m in sent} == {"SM1", "SM2"}


def test_stop_with_a_good_signature_opts_out_and_no_more_texts_go(
    db: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    fake_twilio: FakeTwilio,
    secret_ledger: SecretLedger,
) -> None:
    settings = sms_settings(settings, fake_twilio)
    client = make_client(
        create_app(settings, sessions=sessions), secret_ledger, follow_redirects=False
    )
    params = {"From": "+14155550104", "To": SENDER, "Body": " stop ", "MessageSid": "SMx"}
    url = settings.base_url.rstrip("/") + WEBHOOK
    forged = client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": "AAAA"})
    assert forged.status_code == 403
    tampered = client.post(
        WEBHOOK,
        data={**params, "From": "+14155550103"},
        headers={"X-Twilio-Signature": sms.signature(TOKEN, url, params)},
    )
    assert tampered.status_code == 403
    assert client.post(WEBHOOK, data=params).status_code == 403  # unsigned
    assert db.scalars(select(SmsOptOut)).all() == []
    good = client.post(
        WEBHOOK, data=params, headers={"X-Twilio-Signature": sms.signature(TOKEN, url, params)}
    )
    assert good.status_code == 200 and "<Response>" in good.text
    assert [o.phone for o in db.scalars(select(SmsOptOut))] == ["+14155550104"]
    # A repeat is harmless.
    again = client.post(
        WEBHOOK, data=params, headers={"X-Twilio-Signature": sms.signature(TOKEN, url, params)}
    )
    assert again.status_code == 200

    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = campaigns.create(
        db, u.org, vote, form(reach=Reach.SMS, both_channels=BothChannels.SMS), actor=u.staff
    )
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    queued = set(db.scalars(select(Message.to_address)))
    assert queued == {"+14155550103"}  # the opted-out phone is not even queued

    start = {**params, "Body": "START"}
    back = client.post(
        WEBHOOK, data=start, headers={"X-Twilio-Signature": sms.signature(TOKEN, url, start)}
    )
    assert back.status_code == 200
    assert db.scalars(select(SmsOptOut)).all() == []


def test_an_opt_out_after_queuing_is_honoured_at_send_time(
    db: Session, sessions: sessionmaker[Session], settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings(settings, fake_twilio)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = campaigns.create(
        db, u.org, vote, form(reach=Reach.SMS, both_channels=BothChannels.SMS), actor=u.staff
    )
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    db.add(SmsOptOut(phone="+14155550104"))
    db.commit()
    send_everything(_sms_box(sessions, settings))
    assert [r.form["To"][0] for r in fake_twilio.requests] == ["+14155550103"]
    db.expire_all()
    skipped = db.scalars(select(Message).where(Message.status == MessageStatus.SKIPPED)).one()
    assert skipped.to_address == "+14155550104"


def test_the_webhook_is_off_without_a_gateway_token(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post(WEBHOOK, data={"From": "+1", "Body": "STOP"}).status_code == 404
