"""The outbox: notices written in the transaction of the action that causes them, and the
worker loop that sends them.

Sending is at most once per row as far as the channel allows. A worker claims a batch (a
lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write lock otherwise), sends each
message, and marks it sent, with the channel's id for it, in its own transaction at once: a
worker killed mid-batch leaves its sent rows sent and the rest claimable when the lease runs
out. Only the one message in flight at the kill can go twice; an email then carries the same
``Message-ID``, an SMS the same idempotency key. The lease is checked before each send, so a
slow worker never sends a row another has taken over.

The text and the personal link are made here, at send time, for one recipient (DESIGN.md §4
rule 4); nothing of either is stored, logged or kept in an error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from babel import Locale, UnknownLocaleError
from sqlalchemy import Engine, and_, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts.models import PasswordToken, StaffUser
from ratify.db import read_unit_of_work, unit_of_work, utcnow
from ratify.jobs.services import backoff
from ratify.notices import sms, texts
from ratify.notices.email import Email, MailFailed, SmtpMailer, message_id, sender_address
from ratify.notices.models import (
    Campaign,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    SmsOptOut,
)
from ratify.orgs.models import Organization
from ratify.rosters.models import Member
from ratify.settings import Settings
from ratify.votes import credentials
from ratify.votes.models import Vote, Voter, VoterStatus, VoteStatus
from ratify.web.i18n import Formatter

log = structlog.get_logger("ratify.notices")

LEASE = timedelta(minutes=2)
# A batch is what a worker may send within half its lease at its channel's rate.
MAX_BATCH = 200


# -- writing to the outbox (in the caller's transaction) -------------------------------------


def contact_channel(member: Member) -> tuple[MessageChannel, str] | None:
    """Where a one-off notice to a member goes: their email, else their phone."""
    if member.email:
        return MessageChannel.EMAIL, member.email
    if member.phone:
        return MessageChannel.SMS, member.phone
    return None


def notice_language(preferred: str, offered: Sequence[str]) -> str:
    return preferred if preferred in offered else offered[0]


def enqueue_voter_notice(
    db: Session,
    vote: Vote,
    voter: Voter,
    member: Member,
    kind: MessageKind,
    *,
    issue: int | None = None,
) -> Message | None:
    """One notice to one voter by their first channel (none when they have no email or
    phone: staff then hand them the link). Flushed with the caller's transaction."""
    found = contact_channel(member)
    if found is None:
        return None
    channel, address = found
    message = Message(
        organization_id=vote.organization_id,
        kind=kind,
        channel=channel,
        vote_id=vote.id,
        voter_id=voter.id,
        credential_issue=voter.credential_issue if issue is None else issue,
        to_address=address,
        language=notice_language(member.preferred_language, vote.languages),
        status=MessageStatus.QUEUED,
        run_after=utcnow(),
    )
    db.add(message)
    db.flush()
    return message


def enqueue_password_reset(db: Session, user: StaffUser, token: PasswordToken) -> Message:
    message = Message(
        organization_id=None,
        kind=MessageKind.PASSWORD_RESET,
        channel=MessageChannel.EMAIL,
        staff_user_id=user.id,
        password_token_id=token.id,
        to_address=user.email,
        language=user.language or "en",
        status=MessageStatus.QUEUED,
        run_after=utcnow(),
        max_attempts=3,
    )
    db.add(message)
    db.flush()
    return message


def counts(db: Session, campaign_id: uuid.UUID) -> dict[tuple[MessageChannel, MessageStatus], int]:
    return counts_by_campaign(db, [campaign_id]).get(campaign_id, {})


def counts_by_campaign(
    db: Session, campaign_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[tuple[MessageChannel, MessageStatus], int]]:
    """Messages per channel and status of each campaign, in one query for them all."""
    found: dict[uuid.UUID, dict[tuple[MessageChannel, MessageStatus], int]] = {}
    if not campaign_ids:
        return found
    stmt = (
        select(Message.campaign_id, Message.channel, Message.status, func.count())
        .where(Message.campaign_id.in_(list(campaign_ids)))
        .group_by(Message.campaign_id, Message.channel, Message.status)
    )
    for campaign_id, channel, status, n in db.execute(stmt):
        if campaign_id is not None:
            found.setdefault(campaign_id, {})[(channel, status)] = n
    return found


# -- what one message says -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    to_name: str
    subject: str
    body: str
    link: str
    html: str = ""  # the email's HTML part ("" for a text message)


class Skip(Exception):
    """The message is no longer due (the voter voted, the link was replaced, ...)."""


def _formatter(language: str, fallback: str) -> Formatter:
    try:
        Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Formatter(fallback)
    return Formatter(language)


class Composer:
    """Makes each message's text at send time, keeping per-vote keys and rows it has read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._minters: dict[uuid.UUID, credentials.Minter] = {}
        self._windows: dict[tuple[Any, ...], tuple[str, str]] = {}

    def minter(self, vote_id: uuid.UUID) -> credentials.Minter:
        if vote_id not in self._minters:
            self._minters[vote_id] = credentials.Minter(self.settings.secret_key, vote_id)
        return self._minters[vote_id]

    def window(self, org: Organization, vote: Vote, language: str) -> tuple[str, str]:
        """The window as this language writes it, formatted once per vote and language."""
        key = (vote.id, language, vote.opens_at, vote.closes_at, org.timezone)
        if key not in self._windows:
            fmt = _formatter(language, self.settings.default_language)
            self._windows[key] = (
                fmt.datetime(vote.opens_at, "long", tz=org.timezone),
                fmt.datetime(vote.closes_at, "long", tz=org.timezone),
            )
        return self._windows[key]

    def voter_values(
        self, org: Organization, vote: Vote, voter: Voter, member: Member, language: str
    ) -> dict[str, str]:
        credential = self.minter(vote.id).credential(voter.id, voter.credential_issue)
        opens, closes = self.window(org, vote, language)
        return {
            "name": f"{member.first_name} {member.last_name}".strip(),
            "organization": org.name,
            "vote": vote.title,
            "opens": opens,
            "closes": closes,
            "link": credentials.link(self.settings.base_url, credential),
        }


def text_for(
    campaign: Campaign | None, kind: MessageKind, channel: MessageChannel, language: str
) -> texts.Text:
    if campaign is not None:
        own = campaign.texts.get(channel.value, {}).get(language)
        if own:
            return texts.Text(own.get("subject", ""), own.get("body", ""))
    return texts.default_text(kind, channel, language)


def compose_voter_message(
    composer: Composer,
    message: Message,
    voter: Voter,
    member: Member,
    vote: Vote,
    org: Organization,
    campaign: Campaign | None,
) -> Rendered:
    """One voter's notice, or Skip when it is no longer due."""
    if voter.credential_hash is None or voter.status == VoterStatus.EXCLUDED:
        raise Skip("no longer on the voter list")
    if message.kind in (MessageKind.ANNOUNCEMENT, MessageKind.REMINDER) and vote.status not in (
        VoteStatus.SCHEDULED,
        VoteStatus.OPEN,
    ):
        raise Skip("voting is over")
    if message.kind == MessageKind.REMINDER and voter.has_voted:
        raise Skip("voted already")
    if message.kind == MessageKind.LINK_REISSUED and voter.credential_issue != (
        message.credential_issue
    ):
        raise Skip("the link was replaced again since")
    text = text_for(campaign, message.kind, message.channel, message.language)
    values = composer.voter_values(org, vote, voter, member, message.language)
    return Rendered(
        to_name=values["name"],
        subject=texts.fill(text.subject, values),
        body=texts.fill(text.body, values),
        link=values["link"],
        html=texts.fill_html(text.body, values) if message.channel == MessageChannel.EMAIL else "",
    )


def render_batch(
    db: Session, composer: Composer, messages: Sequence[Message]
) -> dict[int, tuple[Rendered, str] | Skip]:
    """Every message of a batch made at once, from one read of its voters and members
    (and of the few votes, organizations and campaigns they belong to): the state each is
    checked against (voted, link reissued, vote closed) is the batch's, read seconds before
    it goes."""
    found: dict[int, tuple[Rendered, str] | Skip] = {}
    voter_ids = {m.voter_id for m in messages if m.voter_id is not None}
    people = {
        voter.id: (voter, member)
        for voter, member in db.execute(
            select(Voter, Member)
            .join(Member, Member.id == Voter.member_id)
            .where(Voter.id.in_(voter_ids))
        )
    }
    vote_ids = {voter.vote_id for voter, _ in people.values()}
    votes = {v.id: v for v in db.scalars(select(Vote).where(Vote.id.in_(vote_ids)))}
    org_ids = {v.organization_id for v in votes.values()}
    orgs = {o.id: o for o in db.scalars(select(Organization).where(Organization.id.in_(org_ids)))}
    campaign_ids = {m.campaign_id for m in messages if m.campaign_id is not None}
    campaigns = {c.id: c for c in db.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))}
    for message in messages:
        try:
            if message.kind == MessageKind.PASSWORD_RESET:
                found[message.id] = (_password_message(db, composer, message), "Ratify")
                continue
            if message.voter_id not in people:
                raise Skip("the voter is gone")
            voter, member = people[message.voter_id]
            vote = votes[voter.vote_id]
            org = orgs[vote.organization_id]
            campaign = campaigns.get(message.campaign_id) if message.campaign_id else None
            rendered = compose_voter_message(composer, message, voter, member, vote, org, campaign)
            found[message.id] = (rendered, org.name)
        except Skip as skip:
            found[message.id] = skip
    return found


def _password_message(db: Session, composer: Composer, message: Message) -> Rendered:
    from ratify.accounts import services as accounts

    token = db.get(PasswordToken, message.password_token_id)
    user = db.get(StaffUser, message.staff_user_id)
    if token is None or user is None or token.used_at is not None:
        raise Skip("the reset link was used or replaced")
    if token.expires_at <= utcnow():
        raise Skip("the reset link expired")
    secret = accounts.derived_token(composer.settings.secret_key, token.id)
    link = f"{composer.settings.base_url.rstrip('/')}/set-password/{secret}"
    text = texts.default_text(message.kind, message.channel, message.language)
    values = {"name": user.name, "link": link}
    return Rendered(
        user.name,
        texts.fill(text.subject, values),
        texts.fill(text.body, values),
        link,
        texts.fill_html(text.body, values),
    )


# -- sending ---------------------------------------------------------------------------------------


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool, bounced: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent
        self.bounced = bounced


Sender = Callable[[Message, Rendered, str], str]


class _Rate:
    """At most ``per_second`` sends, spread evenly (one worker's share of a provider's limit)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_at = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now) + self.interval


@dataclass
class ChannelSender:
    channel: MessageChannel
    send: Sender
    per_second: float
    close: Callable[[], None] = lambda: None
    rate: _Rate = field(init=False)

    def __post_init__(self) -> None:
        self.rate = _Rate(self.per_second)

    @property
    def batch(self) -> int:
        return max(1, min(MAX_BATCH, int(self.per_second * LEASE.total_seconds() / 2)))


def email_sender(settings: Settings, mailer: SmtpMailer | None = None) -> ChannelSender:
    mailer = mailer or SmtpMailer(settings)
    domain = sender_address(settings)[1].rpartition("@")[2] or "localhost"

    def send(message: Message, rendered: Rendered, from_name: str) -> str:
        email = Email(
            to_name=rendered.to_name,
            to_address=message.to_address,
            from_name=from_name,
            subject=rendered.subject,
            text=rendered.body,
            html=rendered.html,
            language=message.language,
            message_id=message_id(settings.secret_key, domain, message.id),
        )
        try:
            return mailer.send(email)
        except MailFailed as exc:
            raise SendFailed(exc.reason, permanent=exc.permanent, bounced=exc.bounced) from None

    return ChannelSender(MessageChannel.EMAIL, send, settings.email_per_second, mailer.close)


def sms_sender(settings: Settings, gateway: sms.SmsGateway) -> ChannelSender:
    def send(message: Message, rendered: Rendered, from_name: str) -> str:
        # The same key on every attempt: the gateway drops a repeat of what it accepted.
        key = message_id(settings.secret_key, "sms", message.id).strip("<>")
        try:
            return gateway.send(to=message.to_address, body=rendered.body, idempotency_key=key)
        except sms.SmsFailed as exc:
            raise SendFailed(exc.reason, permanent=exc.permanent) from None

    close = getattr(gateway, "close", lambda: None)
    return ChannelSender(MessageChannel.SMS, send, settings.sms_per_second, close)


def configured_senders(settings: Settings) -> list[ChannelSender]:
    senders = []
    if settings.smtp_host:
        senders.append(email_sender(settings))
    gateway = sms.TwilioGateway.from_settings(settings)
    if gateway is not None:
        senders.append(sms_sender(settings, gateway))
    return senders


_MARK_SENT = (
    update(Message)
    .where(
        Message.id == bindparam("id_"),
        Message.locked_by == bindparam("me"),
        Message.status == MessageStatus.SENDING,
    )
    .values(
        status=MessageStatus.SENT,
        provider_id=bindparam("provider_id"),
        sent_at=bindparam("sent_at"),
        locked_until=None,
    )
)


class Outbox:
    """One worker's sending loop over the outbox, per channel."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        senders: Iterable[ChannelSender],
        *,
        worker_id: str,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.senders = {s.channel: s for s in senders}
        self.worker_id = worker_id
        self.composer = Composer(settings)

    def claim(self, channel: MessageChannel, limit: int) -> list[int]:
        now = utcnow()
        with unit_of_work(self.sessions) as db:
            ready = (
                select(Message.id)
                .where(
                    Message.channel == channel,
                    Message.status == MessageStatus.QUEUED,
                    Message.run_after <= now,
                )
                .order_by(Message.run_after)
                .limit(limit)
            )
            # A worker that died mid-batch: its lease ran out, its rows are free again.
            abandoned = (
                select(Message.id)
                .where(
                    Message.channel == channel,
                    Message.status == MessageStatus.SENDING,
                    Message.locked_until < now,
                )
                .limit(limit)
            )
            ids: list[int] = []
            for query in (abandoned, ready):
                want = limit - len(ids)
                if want <= 0:
                    break
                found = list(db.scalars(query.limit(want).with_for_update(skip_locked=True)))
                if not found:
                    continue
                db.execute(
                    update(Message)
                    .where(Message.id.in_(found))
                    .values(
                        status=MessageStatus.SENDING,
                        locked_by=self.worker_id,
                        locked_until=now + LEASE,
                        attempts=Message.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                ids.extend(found)
            return ids

    def _finish(self, message_id: int, **values: Any) -> bool:
        with unit_of_work(self.sessions) as db:
            done = db.execute(
                update(Message)
                .where(
                    Message.id == message_id,
                    Message.locked_by == self.worker_id,
                    Message.status == MessageStatus.SENDING,
                )
                .values(locked_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(done, "rowcount", 0)) == 1

    def _release(self, ids: Sequence[int]) -> None:
        """Give back rows this worker claimed but will not send now (its lease is ending)."""
        if not ids:
            return
        with unit_of_work(self.sessions) as db:
            db.execute(
                update(Message)
                .where(
                    Message.id.in_(list(ids)),
                    Message.locked_by == self.worker_id,
                    Message.status == MessageStatus.SENDING,
                )
                .values(
                    status=MessageStatus.QUEUED,
                    locked_until=None,
                    attempts=Message.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )

    def drain_batch(self, channel: MessageChannel) -> int:
        """Claim and send one batch of a channel; how many rows it handled."""
        sender = self.senders.get(channel)
        if sender is None:
            return 0
        ids = self.claim(channel, sender.batch)
        if not ids:
            return 0
        deadline = time.monotonic() + LEASE.total_seconds() * 0.75
        with read_unit_of_work(self.sessions) as db:
            messages = list(db.scalars(select(Message).where(Message.id.in_(ids))))
            opted_out: set[str] = set()
            if channel == MessageChannel.SMS:
                phones = [m.to_address for m in messages]
                opted_out = set(
                    db.scalars(select(SmsOptOut.phone).where(SmsOptOut.phone.in_(phones)))
                )
            made = render_batch(db, self.composer, messages)
            db.expunge_all()  # kept as read, past this read-only transaction
        by_id = {m.id: m for m in messages}
        with self._sent_marker() as mark_sent:
            for position, message_id_ in enumerate(ids):
                if time.monotonic() > deadline:
                    self._release(ids[position:])
                    break
                message = by_id[message_id_]
                outcome = made[message_id_]
                if message.to_address in opted_out:
                    outcome = Skip("the phone opted out of texts")
                self._send_one(sender, message, outcome, mark_sent)
        log.info("notice.batch", channel=channel.value, messages=len(ids))
        return len(ids)

    @contextmanager
    def _sent_marker(self) -> Iterator[Callable[[int, str], bool]]:
        """Marks a message sent, committed at once, on one connection kept for the batch (a
        session per message, with the pool's pre-ping, cost more than the SMTP exchange), in
        autocommit: the UPDATE is its own transaction, one round trip where BEGIN ... COMMIT
        took two (bench/notices.py: about 400 µs a message of the 2.5 ms it took)."""
        bind = self.sessions.kw.get("bind")
        if not isinstance(bind, Engine):  # tests: sessions inside an outer transaction
            yield lambda message_id, provider_id: self._finish(
                message_id, status=MessageStatus.SENT, provider_id=provider_id, sent_at=utcnow()
            )
            return
        with bind.connect() as opened:
            conn = opened.execution_options(isolation_level="AUTOCOMMIT")
            relaxed = conn.dialect.name == "postgresql"
            if relaxed:
                # The mark's commit does not wait for its WAL to reach the disk: a worker that
                # dies loses nothing committed (the server has it), and the rule "at most the
                # message in flight goes twice" holds; only a crash of PostgreSQL itself may
                # forget the last fraction of a second of marks, and those messages go again.
                conn.exec_driver_sql("SET synchronous_commit = off")

            def mark(message_id: int, provider_id: str) -> bool:
                done = conn.execute(
                    _MARK_SENT,
                    {"id_": message_id, "me": self.worker_id, "provider_id": provider_id,
                     "sent_at": utcnow()},
                )  # fmt: skip
                conn.commit()  # nothing to send: the statement committed itself
                return done.rowcount == 1

            try:
                yield mark
            finally:
                if relaxed and not conn.invalidated:
                    conn.exec_driver_sql("RESET synchronous_commit")  # back to the pool as it was

    def _send_one(
        self,
        sender: ChannelSender,
        message: Message,
        outcome: tuple[Rendered, str] | Skip,
        mark_sent: Callable[[int, str], bool],
    ) -> None:
        if isinstance(outcome, Skip):
            self._finish(message.id, status=MessageStatus.SKIPPED, last_error=str(outcome))
            return
        rendered, from_name = outcome
        sender.rate.wait()
        try:
            provider_id = sender.send(message, rendered, from_name)
        except SendFailed as exc:
            # A server may quote what it refused (a spam filter naming the URL): the link's
            # secret part must not reach the outbox row or the log with it.
            secret = rendered.link.rstrip("/").rpartition("/")[2]
            if secret and secret in exc.reason:
                exc.reason = exc.reason.replace(secret, "[link]")
            self._failed(message, exc)
            return
        if not mark_sent(message.id, provider_id):
            log.warning("notice.lease_lost", message_id=message.id, channel=message.channel.value)
        else:
            # Per message at debug level only: at 300,000 messages, the line costs more than
            # the database's own record of it (the row, with the provider's id).
            log.debug(
                "notice.sent", message_id=message.id, channel=message.channel.value,
                kind=message.kind.value,
            )  # fmt: skip

    def _failed(self, message: Message, exc: SendFailed) -> None:
        attempts = message.attempts  # counted when it was claimed
        if exc.bounced:
            status = MessageStatus.BOUNCED
        elif exc.permanent or attempts >= message.max_attempts:
            status = MessageStatus.DEAD
        else:
            status = MessageStatus.QUEUED
        values: dict[str, Any] = {"status": status, "last_error": exc.reason}
        if status == MessageStatus.QUEUED:
            values["run_after"] = utcnow() + backoff(attempts)
        self._finish(message.id, **values)
        log.warning(
            "notice.failed", message_id=message.id, channel=message.channel.value,
            status=status.value, error=exc.reason,
        )  # fmt: skip

    def run_once(self) -> bool:
        """One batch per channel; False when nothing was ready on any."""
        return sum(self.drain_batch(channel) for channel in self.senders) > 0

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()


def retry_dead(db: Session, campaign_id: uuid.UUID) -> int:
    """Queue a campaign's dead letters again (after fixing the mail server, say)."""
    done = db.execute(
        update(Message)
        .where(and_(Message.campaign_id == campaign_id, Message.status == MessageStatus.DEAD))
        .values(status=MessageStatus.QUEUED, attempts=0, run_after=utcnow(), last_error=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0))
