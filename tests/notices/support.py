"""A real SMTP server in the test process (aiosmtpd), and an open vote whose voters have
email addresses and phones, for the notices tests."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from ratify.settings import Settings
from ratify.votes import credentials
from ratify.votes.models import Vote, Voter
from tests.votes.support import Union, make_union
from tests.votes.test_casting import open_vote, voter


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class SmtpSink:
    """What arrived, in order. ``refuse`` maps an address to the RCPT answer it gets;
    ``fail_data`` answers the next so many DATA commands with a temporary failure."""

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    fail_data: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.sink.refuse:
            return self.sink.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink.lock:
            if self.sink.fail_data > 0:
                self.sink.fail_data -= 1
                return "451 4.3.0 try again later"
            raw = bytes(envelope.original_content or b"")
            message = email.message_from_bytes(raw, policy=email.policy.default)
            self.sink.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    message,  # type: ignore[arg-type]
                    raw,
                )
            )
            return f"250 2.0.0 Ok: queued as Q{len(self.sink.received)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(
        _Handler(sink), hostname=sink.host, port=sink.port, enable_SMTPUTF8=True
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def mail_settings(settings: Settings, sink: SmtpSink) -> Settings:
    return replace(
        settings,
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_security="none",
        mail_from="Votes <votes@ratify.test>",
        email_per_second=10_000.0,
    )


def open_vote_with_contacts(db: DbSession, secret_key: str) -> tuple[Union, Vote]:
    """RN 1001-1006 and TECH 2001-2003 may vote. 1001 and 1002 share one email address;
    1003 has email and a phone; 1004 a phone only; 1005 and 1006 neither; TECH members have
    email; 1001 reads Spanish."""
    u = make_union(db)
    by_number = {m.member_number: m for m in u.members}
    by_number["1001"].email = "family@example.org"
    by_number["1001"].preferred_language = "es"
    by_number["1001"].first_name = "José"
    by_number["1002"].email = "family@example.org"
    by_number["1003"].email = "n1003@example.org"
    by_number["1003"].phone = "+14155550103"
    by_number["1004"].phone = "+14155550104"
    for number in ("2001", "2002", "2003"):
        by_number[number].email = f"t{number}@example.org"
    db.flush()
    return u, open_vote(db, u, secret_key)


def voter_of(db: DbSession, vote: Vote, member_number: str) -> Voter:
    return voter(db, vote, member_number)


def link_of(settings: Settings, voter: Voter) -> str:
    credential = credentials.Minter(settings.secret_key, voter.vote_id).credential(
        voter.id, voter.credential_issue
    )
    return credentials.link(settings.base_url, credential)


def register_credentials(ledger: object, db: DbSession, settings: Settings, vote: Vote) -> int:
    """Put every voter's current credential in the run's ledger: the session's log check then
    fails if any of them reached the application or access log."""
    count = 0
    for listed in db.scalars(select(Voter).where(Voter.vote_id == vote.id)):
        ledger.add(link_of(settings, listed).rsplit("/", 1)[1])  # type: ignore[attr-defined]
        count += 1
    return count


def send_everything(box: Any) -> None:
    """Run an outbox (``notices.outbox.Outbox``) until nothing is ready, then close it."""
    while box.run_once():
        pass
    box.close()
