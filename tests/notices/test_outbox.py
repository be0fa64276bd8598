"""The outbox: written in the action's transaction, sent at most once, retried and dead-
lettered, to a real SMTP server in the test process."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.db import unit_of_work, utcnow
from ratify.jobs import registry
from ratify.jobs.worker import Worker
from ratify.notices import campaigns, outbox
from ratify.notices.models import (
    Audience,
    BothChannels,
    Campaign,
    CampaignStatus,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    Reach,
)
from ratify.settings import Settings
from ratify.votes import casting
from ratify.votes.models import Vote, VoteStatus
from tests.conftest import SecretLedger
from tests.notices.support import (
    SmtpSink,
    link_of,
    mail_settings,
    open_vote_with_contacts,
    register_credentials,
    send_everything,
    smtp_sink,
    voter_of,
)
from tests.votes.support import Union

__all__ = ["smtp_sink"]
ON_POSTGRES = os.environ.get("RATIFY_TEST_DB") == "postgresql"


def form(kind: MessageKind = MessageKind.ANNOUNCEMENT, **changes: object) -> campaigns.CampaignForm:
    base = campaigns.CampaignForm(
        kind=kind,
        name="Voting is open",
        audience=Audience.ALL,
        reach=Reach.ALL,
        tally_group=None,
        both_channels=BothChannels.EMAIL,
        letters=True,
        texts=campaigns.default_texts(kind, ["en", "es"]),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def outbox_for(sessions: sessionmaker[Session], settings: Settings, name: str) -> outbox.Outbox:
    return outbox.Outbox(sessions, settings, [outbox.email_sender(settings)], worker_id=name)


def statuses(db: Session) -> dict[str, MessageStatus]:
    rows = db.execute(select(Message.to_address, Message.status, Message.channel)).all()
    return {f"{channel.value}:{address}": status for address, status, channel in rows}


def queued_announcement(db: Session, u: Union, vote: Vote, **changes: object) -> Campaign:
    campaign = campaigns.create(db, u.org, vote, form(**changes), actor=u.staff)
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    db.flush()
    return campaign


def test_a_rolled_back_action_leaves_no_message(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with unit_of_work(sessions) as db:
        u, vote = open_vote_with_contacts(db, settings.secret_key)
        campaign_id, vote_id = campaigns.create(db, u.org, vote, form(), actor=u.staff).id, vote.id
    with pytest.raises(RuntimeError), unit_of_work(sessions) as db:
        campaign = db.get_one(Campaign, campaign_id)
        campaigns.send_now(db, u.org, db.get_one(Vote, vote_id), campaign, actor=u.staff)
        assert db.scalar(select(Message.id).limit(1)) is not None  # written, then…
        raise RuntimeError("the action failed after queuing")
    with unit_of_work(sessions) as db:
        assert db.scalars(select(Message)).all() == []
        assert db.get_one(Campaign, campaign_id).status == CampaignStatus.DRAFT


def test_a_reissued_link_is_noticed_in_the_same_transaction(
    db: Session, settings: Settings
) -> None:
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    with pytest.raises(RuntimeError), db.begin_nested():
        casting.reissue(
            db, u.org, vote, voter_of(db, vote, "1003"), actor=u.staff,
            secret_key=settings.secret_key,
        )  # fmt: skip
        assert db.scalars(select(Message)).all() != []
        raise RuntimeError("rolled back")
    assert db.scalars(select(Message)).all() == []
    db.expire_all()
    casting.reissue(
        db, u.org, vote, voter_of(db, vote, "1003"), actor=u.staff,
        secret_key=settings.secret_key,
    )  # fmt: skip
    (message,) = db.scalars(select(Message)).all()
    assert (message.kind, message.channel) == (MessageKind.LINK_REISSUED, MessageChannel.EMAIL)
    assert message.credential_issue == 2


def test_announcement_arrives_with_headers_language_and_its_own_link(
    db: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp_sink: SmtpSink,
    secret_ledger: SecretLedger,
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    queued_announcement(db, u, vote)
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))

    family = smtp_sink.to("family@example.org")
    assert len(family) == 2  # one shared address, one message per member
    links = {link_of(settings, voter_of(db, vote, n)) for n in ("1001", "1002")}
    assert register_credentials(secret_ledger, db, settings, vote) >= 9
    bodies = [r.message.get_body(("plain",)).get_content() for r in family]  # type: ignore[union-attr]
    assert {link for link in links for body in bodies if link in body} == links
    assert not any(all(link in body for link in links) for body in bodies)

    spanish = next(r for r in family if "José" in str(r.message["To"]))
    message = spanish.message
    assert (
        message["Subject"] == "Vote ahora: 2027 contract" or "2027 contract" in message["Subject"]
    )
    assert message["Content-Language"] == "es"
    head = spanish.raw.split(b"\r\n\r\n")[0].decode("ascii")  # headers are ASCII
    assert "=?utf-8?" in head.lower()  # the name encoded
    assert b"\r\n" in spanish.raw and b"\n\n" not in spanish.raw.replace(b"\r\n", b"")
    assert message["To"].addresses[0].display_name == "José Last1001"
    assert message["From"].addresses[0].addr_spec == "votes@ratify.test"
    assert message["From"].addresses[0].display_name == u.org.name
    assert message["Message-ID"].startswith("<notice.") and message["Date"]
    assert spanish.mail_from == "votes@ratify.test"
    html_part = message.get_body(("html",))
    assert html_part is not None
    spanish_link = link_of(settings, voter_of(db, vote, "1001"))
    assert f'href="{spanish_link}"' in html_part.get_content()
    english = next(r for r in family if "First1002" in str(r.message["To"]))
    assert english.message["Content-Language"] == "en"

    # 1003 has both (the campaign chose email); 1004 a phone only: no SMS sender here;
    # 1005 and 1006 neither: letters. Everyone with email got exactly one message.
    assert len(smtp_sink.received) == 6
    assert {a for r in smtp_sink.received for a in r.rcpt_tos} == {
        "family@example.org", "n1003@example.org",
        "t2001@example.org", "t2002@example.org", "t2003@example.org",
    }  # fmt: skip
    db.expire_all()
    found = statuses(db)
    assert found["sms:+14155550104"] == MessageStatus.QUEUED
    letters = db.scalars(select(Message).where(Message.channel == MessageChannel.LETTER)).all()
    assert sorted(voter_of(db, vote, n).id for n in ("1005", "1006")) == sorted(
        m.voter_id
        for m in letters  # type: ignore[misc]
    )
    sent = db.scalars(select(Message).where(Message.status == MessageStatus.SENT)).all()
    assert len(sent) == 6 and all(
        m.provider_id and m.provider_id.startswith("2.0.0 Ok") for m in sent
    )


def test_no_credential_is_kept_in_the_outbox_or_its_errors(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    queued_announcement(db, u, vote)
    smtp_sink.refuse["t2001@example.org"] = "550 5.1.1 no such user"
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    db.expire_all()
    credentials_ = [
        link_of(settings, voter_of(db, vote, m.member_number)).rsplit("/", 1)[1]
        for m in u.members
        if m.member_number != "9001"
    ]
    rows = [repr(tuple(row)) for row in db.execute(select(Message.__table__)).all()]
    assert len(rows) >= 9
    assert not [c for c in credentials_ if any(c in row for row in rows)]
    bounced = db.scalars(select(Message).where(Message.status == MessageStatus.BOUNCED)).one()
    assert bounced.to_address == "t2001@example.org"
    assert bounced.last_error is not None and "550" in bounced.last_error


def test_reminders_reach_only_those_who_have_not_voted_when_sent(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    # 2001 voted before the reminder was queued; 2002 after it was queued, before it went.
    db.execute(update(type(voter_of(db, vote, "2001"))).where(
        type(voter_of(db, vote, "2001")).id == voter_of(db, vote, "2001").id
    ).values(has_voted=True))  # fmt: skip
    campaign = campaigns.create(
        db, u.org, vote, form(MessageKind.REMINDER, audience=Audience.NOT_VOTED), actor=u.staff
    )
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    voter_2002 = voter_of(db, vote, "2002")
    voter_2002.has_voted = True
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    recipients = {a for r in smtp_sink.received for a in r.rcpt_tos}
    assert "t2001@example.org" not in recipients  # never queued
    assert "t2002@example.org" not in recipients  # skipped at send time
    assert "t2003@example.org" in recipients
    db.expire_all()
    assert statuses(db)["email:t2002@example.org"] == MessageStatus.SKIPPED
    assert "email:t2001@example.org" not in statuses(db)


def test_a_member_with_no_email_or_phone_lands_on_the_letter_list(
    db: Session, settings: Settings
) -> None:
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = campaigns.create(db, u.org, vote, form(reach=Reach.LETTER_ONLY), actor=u.staff)
    assert campaigns.reach_counts(db, campaign)[MessageChannel.LETTER] == 2
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    rows = db.execute(select(Message.channel, Message.voter_id)).all()
    assert {channel for channel, _ in rows} == {MessageChannel.LETTER}
    assert {voter for _, voter in rows} == {voter_of(db, vote, n).id for n in ("1005", "1006")}


def test_members_with_both_channels_get_what_the_campaign_chose(
    db: Session, settings: Settings
) -> None:
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    for both, expected in (
        (BothChannels.EMAIL, {MessageChannel.EMAIL}),
        (BothChannels.SMS, {MessageChannel.SMS}),
        (BothChannels.BOTH, {MessageChannel.EMAIL, MessageChannel.SMS}),
    ):
        campaign = campaigns.create(db, u.org, vote, form(both_channels=both), actor=u.staff)
        campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
        got = set(
            db.scalars(
                select(Message.channel).where(
                    Message.campaign_id == campaign.id,
                    Message.voter_id == voter_of(db, vote, "1003").id,
                )
            )
        )
        assert got == expected, both
        # 1004 has only a phone: a text whatever the choice.
        only_phone = db.scalars(
            select(Message.channel).where(
                Message.campaign_id == campaign.id,
                Message.voter_id == voter_of(db, vote, "1004").id,
            )
        ).all()
        assert only_phone == [MessageChannel.SMS]


def test_a_temporary_failure_is_retried_later_and_then_sent(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH")
    smtp_sink.fail_data = 1
    db.commit()
    box = outbox_for(sessions, settings, "w1")
    while box.run_once():
        pass
    db.expire_all()
    waiting = db.scalars(select(Message).where(Message.status == MessageStatus.QUEUED)).one()
    assert waiting.attempts == 1 and waiting.run_after > utcnow()
    assert waiting.last_error is not None and "451" in waiting.last_error
    assert len(smtp_sink.received) == 2
    db.execute(update(Message).values(run_after=utcnow() - timedelta(seconds=1)))
    db.commit()
    while box.run_once():
        pass
    box.close()
    db.expire_all()
    assert {m.status for m in db.scalars(select(Message))} == {MessageStatus.SENT}
    assert len(smtp_sink.received) == 3


def test_a_message_failing_every_attempt_becomes_a_dead_letter(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH")
    smtp_sink.fail_data = 1000
    db.commit()
    box = outbox_for(sessions, settings, "w1")
    for _ in range(5):
        while box.run_once():
            pass
        db.execute(update(Message).values(run_after=utcnow() - timedelta(seconds=1)))
        db.commit()
    box.close()
    db.expire_all()
    dead = db.scalars(select(Message)).all()
    assert {m.status for m in dead} == {MessageStatus.DEAD}
    assert {m.attempts for m in dead} == {5}
    # Once the server is fixed, staff queue the dead letters again.
    smtp_sink.fail_data = 0
    assert outbox.retry_dead(db, campaign.id) == 3
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    assert len(smtp_sink.received) == 3


def test_an_unreachable_mail_server_is_a_temporary_failure(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = replace(mail_settings(settings, smtp_sink), smtp_port=1)  # nothing listens
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH")
    db.commit()
    box = outbox_for(sessions, settings, "w1")
    box.run_once()
    box.close()
    db.expire_all()
    rows = db.scalars(select(Message)).all()
    assert {m.status for m in rows} == {MessageStatus.QUEUED}
    assert all(m.attempts == 1 and m.last_error for m in rows)


def test_a_worker_killed_mid_batch_loses_nothing_and_resends_nothing_sent(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    """The first worker claims the whole batch, sends two and dies (its lease is left to run
    out). The second takes over the rest once the lease has run out: every member gets one
    message, the two sent are not sent again."""
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    queued_announcement(db, u, vote, reach=Reach.EMAIL)
    db.commit()
    dying = outbox_for(sessions, settings, "dying")
    claimed = dying.claim(MessageChannel.EMAIL, 100)
    assert len(claimed) == 6
    with sessions() as s:
        messages = {m.id: m for m in s.scalars(select(Message).where(Message.id.in_(claimed)))}
        made = outbox.render_batch(s, dying.composer, list(messages.values()))
    for message_id in claimed[:2]:
        with dying._sent_marker() as mark:
            dying._send_one(
                dying.senders[MessageChannel.EMAIL], messages[message_id], made[message_id], mark
            )
    dying.close()  # …and the process is gone

    other = outbox_for(sessions, settings, "other")
    assert other.claim(MessageChannel.EMAIL, 100) == []  # the lease still holds
    db.execute(update(Message).where(Message.locked_by == "dying").values(
        locked_until=utcnow() - timedelta(seconds=1)
    ))  # fmt: skip
    db.commit()
    while other.run_once():
        pass
    other.close()
    counts: dict[str, int] = {}
    for r in smtp_sink.received:
        key = r.message["Message-ID"]
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 6 and set(counts.values()) == {1}
    db.expire_all()
    assert {m.status for m in db.scalars(select(Message))} == {MessageStatus.SENT}


def test_worker_runs_the_outbox_and_scheduled_campaigns(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = campaigns.create(db, u.org, vote, form(reach=Reach.EMAIL), actor=u.staff)
    campaigns.schedule(db, u.org, vote, campaign, utcnow() + timedelta(hours=1), actor=u.staff)
    db.commit()
    worker = Worker(
        sessions,
        handlers=registry.handlers(settings),
        ticks=registry.ticks(settings),
        pollers=registry.pollers(settings, sessions, "w"),
        worker_id="w",
    )
    worker.run_due_ticks()
    worker.drain()
    assert smtp_sink.received == []  # not yet
    db.execute(update(Campaign).values(send_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    campaigns.start_due(db)
    db.commit()
    worker.drain()
    worker.close()
    assert len(smtp_sink.received) == 6
    db.expire_all()
    assert db.get_one(Campaign, campaign.id).status == CampaignStatus.QUEUED


def test_a_big_list_is_queued_by_a_worker_job(
    db: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(campaigns, "IN_REQUEST_VOTERS", 3)
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = queued_announcement(db, u, vote, reach=Reach.EMAIL)
    assert campaign.status == CampaignStatus.QUEUING
    assert db.scalars(select(Message)).all() == []
    db.commit()
    worker = Worker(
        sessions,
        handlers=registry.handlers(settings),
        pollers=registry.pollers(settings, sessions, "w"),
        worker_id="w",
    )
    worker.drain()
    worker.close()
    db.expire_all()
    campaign = db.get_one(Campaign, campaign.id)
    assert (campaign.status, campaign.queued_count) == (CampaignStatus.QUEUED, 6)
    assert len(smtp_sink.received) == 6


def test_placeholders_are_checked_when_a_text_is_saved(db: Session, settings: Settings) -> None:
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    texts_ = campaigns.default_texts(MessageKind.ANNOUNCEMENT, ["en", "es"])
    texts_["email"]["en"]["body"] = "Hello {name}, {secret_key} {link}"
    texts_["sms"]["es"]["body"] = "Vote: {vote}"
    with pytest.raises(campaigns.CampaignInvalid) as refused:
        campaigns.create(db, u.org, vote, form(texts=texts_), actor=u.staff)
    assert set(refused.value.errors) >= {"email.en.body", "sms.es.body"}
    assert refused.value.errors["email.en.body.found"] == "{secret_key}"
    assert db.scalars(select(Campaign)).all() == []


@pytest.mark.postgres_only
@pytest.mark.skipif(not ON_POSTGRES, reason="row locks: SKIP LOCKED")
def test_two_workers_never_send_the_same_message_twice(
    live_sessions: sessionmaker[Session], live_settings: Settings, smtp_sink: SmtpSink
) -> None:
    import threading

    settings = mail_settings(live_settings, smtp_sink)
    with unit_of_work(live_sessions) as db:
        u, vote = open_vote_with_contacts(db, settings.secret_key)
        for _ in range(40):  # more work than one batch, to make the workers overlap
            campaign = campaigns.create(db, u.org, vote, form(reach=Reach.EMAIL), actor=u.staff)
            campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    boxes = [outbox_for(live_sessions, settings, f"w{n}") for n in range(2)]
    start = threading.Barrier(2)

    def run(box: outbox.Outbox) -> None:
        start.wait()
        while box.drain_batch(MessageChannel.EMAIL):
            pass
        box.close()

    threads = [threading.Thread(target=run, args=(box,)) for box in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [r.message["Message-ID"] for r in smtp_sink.received]
    assert len(ids) == 240 and len(set(ids)) == 240
    with unit_of_work(live_sessions) as db:
        by_worker = set(db.scalars(select(Message.locked_by)).all())
        statuses_ = set(db.scalars(select(Message.status)).all())
    assert statuses_ == {MessageStatus.SENT}
    assert by_worker == {"w0", "w1"}  # both took part


def test_a_result_notice_waits_for_certification_and_published_results(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    result_form = form(MessageKind.RESULT, reach=Reach.EMAIL, tally_group="TECH")
    with pytest.raises(campaigns.Conflict):
        campaigns.create(db, u.org, vote, result_form, actor=u.staff)  # still open
    vote.status = VoteStatus.CERTIFIED
    db.flush()
    with pytest.raises(campaigns.Conflict):
        campaigns.create(db, u.org, vote, result_form, actor=u.staff)  # results not published
    u.org.publish_results = True
    db.flush()
    # An announcement is over once voting is.
    with pytest.raises(campaigns.Conflict):
        campaigns.create(db, u.org, vote, form(), actor=u.staff)
    campaign = campaigns.create(db, u.org, vote, result_form, actor=u.staff)
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    assert len(smtp_sink.received) == 3
    mail = smtp_sink.to("t2001@example.org")[0].message
    assert "Result" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert link_of(settings, voter_of(db, vote, "2001")) in body


def test_a_non_ascii_address_goes_by_smtputf8(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    by_number = {m.member_number: m for m in u.members}
    by_number["2001"].email = "josé.núñez@ejemplo.org"
    db.flush()
    queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH")
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    (arrived,) = smtp_sink.to("josé.núñez@ejemplo.org")
    headers = arrived.raw.split(b"\r\n\r\n")[0].decode("utf-8")  # raw UTF-8 (RFC 6532)
    assert "To: First2001 Last2001 <josé.núñez@ejemplo.org>" in headers
    link = link_of(settings, voter_of(db, vote, "2001"))
    assert link in arrived.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_a_text_with_a_line_too_long_for_smtp_is_still_sent_whole(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    """Lines over SMTP's limit cannot go 8-bit as written: the email package then encodes
    the parts (base64)."""
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    texts_ = campaigns.default_texts(MessageKind.ANNOUNCEMENT, ["en", "es"])
    long_line = "Ñandú " * 300
    texts_["email"]["en"]["body"] = f"Hello {{name}}, {long_line}\n\n{{link}}\n"
    queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH", texts=texts_)
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    (arrived,) = smtp_sink.to("t2001@example.org")
    assert all(len(line) <= 998 for line in arrived.raw.split(b"\r\n"))
    body = arrived.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert long_line.strip() in body
    assert link_of(settings, voter_of(db, vote, "2001")) in body


def test_a_line_break_in_a_name_or_title_starts_no_header(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    by_number = {m.member_number: m for m in u.members}
    by_number["2001"].first_name = "Eve\r\nBcc: spy@example.net"
    vote.title = "Contract\r\nX-Injected: yes"
    db.flush()
    texts_ = campaigns.default_texts(MessageKind.ANNOUNCEMENT, ["en", "es"])
    texts_["email"]["en"]["subject"] = "Vote\nBcc: spy@example.net"
    with pytest.raises(campaigns.CampaignInvalid) as refused:
        campaigns.create(db, u.org, vote, form(texts=texts_), actor=u.staff)
    assert "email.en.subject" in refused.value.errors
    queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH")
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    (arrived,) = smtp_sink.to("t2001@example.org")
    assert arrived.rcpt_tos == ["t2001@example.org"]
    assert arrived.message["Bcc"] is None and arrived.message["X-Injected"] is None
    assert arrived.message["Subject"] == "Vote now: Contract X-Injected: yes"


def test_a_refusal_quoting_the_link_keeps_no_credential(
    db: Session, sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    queued_announcement(db, u, vote, reach=Reach.EMAIL, tally_group="TECH")
    link = link_of(settings, voter_of(db, vote, "2001"))
    smtp_sink.refuse["t2001@example.org"] = f"550 5.7.1 listed URL {link}"
    db.commit()
    send_everything(outbox_for(sessions, settings, "w1"))
    db.expire_all()
    bounced = db.scalars(select(Message).where(Message.status == MessageStatus.BOUNCED)).one()
    credential = link.rsplit("/", 1)[1]
    assert bounced.last_error is not None and "[link]" in bounced.last_error
    assert credential not in bounced.last_error


def test_a_worker_on_its_own_connections_marks_each_message_sent_and_leaves_the_pool_as_it_was(
    live_sessions: sessionmaker[Session], settings: Settings, smtp_sink: SmtpSink
) -> None:
    """With a real engine (not the tests' outer transaction) the marks go through one
    autocommitted connection per batch; on PostgreSQL it relaxes synchronous_commit for the
    batch and puts it back before the connection returns to the pool."""
    settings = mail_settings(settings, smtp_sink)
    with unit_of_work(live_sessions) as db:
        u, vote = open_vote_with_contacts(db, settings.secret_key)
        queued_announcement(db, u, vote, reach=Reach.EMAIL)
    box = outbox_for(live_sessions, settings, "w1")
    send_everything(box)
    assert len(smtp_sink.received) == 6
    with live_sessions() as db:
        assert {m.status for m in db.scalars(select(Message))} == {MessageStatus.SENT}
        assert all(m.provider_id for m in db.scalars(select(Message)))
        postgres = db.get_bind().dialect.name == "postgresql"
    if postgres:
        engine = live_sessions.kw["bind"]
        with contextlib.ExitStack() as held:  # every connection the pool has, at once
            conns = [held.enter_context(engine.connect()) for _ in range(engine.pool.size())]
            found = {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in conns}
        assert found == {"on"}
