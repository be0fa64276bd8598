"""An offer decision's links reach people through Notices: by email where they gave one, by
text where they gave only a phone, each with their own link, in words that fit a community
organization (no "union")."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.notices import campaigns, outbox, sms
from ratify.notices.models import BothChannels, Message, MessageStatus
from ratify.rosters.models import Member
from ratify.settings import Settings
from ratify.votes.models import Voter, VoterStatus
from tests.community.test_decision_vote import make_community_offer, open_decision_vote
from tests.notices.support import link_of, mail_settings, send_everything, smtp_sink
from tests.notices.test_outbox import form
from tests.notices.test_sms import FakeTwilio, fake_twilio
from tests.notices.test_sms_delivery import sms_settings

__all__ = ["fake_twilio", "smtp_sink"]


def test_links_to_a_decision_vote_go_out_by_email_and_text(
    db: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp_sink,  # type: ignore[no-untyped-def]
    fake_twilio: FakeTwilio,
    secret_ledger,  # type: ignore[no-untyped-def]
) -> None:
    settings = sms_settings(mail_settings(settings, smtp_sink), fake_twilio)
    org, leader, committee, _, people_in, _, offer = make_community_offer(db)
    # Two of the tenants gave an email too (they get email; the rest texts).
    emailed = [people_in[0].member_id, people_in[1].member_id]
    for n, member_id in enumerate(emailed):
        db.execute(update(Member).where(Member.id == member_id).values(email=f"t{n}@example.org"))
    vote = open_decision_vote(db, settings, org, leader, committee, offer)
    eligible = db.scalars(
        select(Voter).where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
    ).all()
    for v in eligible:
        secret_ledger.add(link_of(settings, v).rsplit("/", 1)[1])
    campaign = campaigns.create(db, org, vote, form(both_channels=BothChannels.EMAIL), actor=leader)
    campaigns.send_now(db, org, vote, campaign, actor=leader)
    db.commit()
    gateway = sms.TwilioGateway.from_settings(settings)
    assert gateway is not None
    senders = [outbox.email_sender(settings), outbox.sms_sender(settings, gateway)]
    send_everything(outbox.Outbox(sessions, settings, senders, worker_id="w"))

    by_member = {v.member_id: v for v in eligible}
    assert {a for r in smtp_sink.received for a in r.rcpt_tos} == {
        "t0@example.org",
        "t1@example.org",
    }
    for n, member_id in enumerate(emailed):
        (received,) = smtp_sink.to(f"t{n}@example.org")
        body = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert link_of(settings, by_member[member_id]) in body
        assert f"not even {org.name}" in body and "union" not in body
    texted = {r.form["To"][0]: r.form["Body"][0] for r in fake_twilio.requests}
    phones = dict(
        db.execute(select(Member.id, Member.phone).where(Member.organization_id == org.id)).all()
    )
    expected = {phones[v.member_id] for v in eligible if v.member_id not in emailed}
    assert set(texted) == expected and len(expected) == 4
    for v in eligible:
        if v.member_id not in emailed:
            assert link_of(settings, v) in texted[phones[v.member_id]]
    db.expire_all()
    assert {m.status for m in db.scalars(select(Message))} == {MessageStatus.SENT}
