"""A real `ratify worker` process sending to the test's SMTP server is killed with SIGKILL
mid-batch; a second one finishes once the first one's lease has run out. Nothing marked sent
is sent again, nothing is lost, and at most the one message in flight at the kill went twice
(under the same Message-ID)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.db import unit_of_work, utcnow
from ratify.notices import campaigns
from ratify.notices.models import Message, MessageStatus, Reach
from ratify.settings import Settings
from tests.notices.support import SmtpSink, open_vote_with_contacts, smtp_sink
from tests.notices.test_outbox import form

__all__ = ["smtp_sink"]


def _worker(settings: Settings, sink: SmtpSink, per_second: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RATIFY_DATABASE_URL": settings.database_url,
        "RATIFY_SECRET_KEY": settings.secret_key,
        "RATIFY_VAR_DIR": str(settings.var_dir),
        "RATIFY_BASE_URL": settings.base_url,
        "RATIFY_SMTP_HOST": sink.host,
        "RATIFY_SMTP_PORT": str(sink.port),
        "RATIFY_SMTP_SECURITY": "none",
        "RATIFY_MAIL_FROM": "Votes <votes@ratify.test>",
        "RATIFY_EMAIL_PER_SECOND": str(per_second),
        "RATIFY_WORKER_POLL_SECONDS": "0.1",
        "RATIFY_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ratify", "worker"], env=env, stdout=subprocess.DEVNULL
    )


def _sent(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        return int(db.scalar(select(func.count()).where(Message.status == MessageStatus.SENT)) or 0)


def _wait(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_worker_loses_nothing_and_resends_nothing_marked_sent(
    live_sessions: sessionmaker[Session], live_settings: Settings, smtp_sink: SmtpSink
) -> None:
    with unit_of_work(live_sessions) as db:
        u, vote = open_vote_with_contacts(db, live_settings.secret_key)
        for _ in range(10):  # 60 messages
            campaign = campaigns.create(db, u.org, vote, form(reach=Reach.EMAIL), actor=u.staff)
            campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    first = _worker(live_settings, smtp_sink, per_second=20)
    try:
        _wait(lambda: _sent(live_sessions) >= 10)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    with live_sessions() as db:
        sent_before = {
            m.id: m for m in db.scalars(select(Message).where(Message.status == MessageStatus.SENT))
        }
        left = db.scalar(select(func.count()).where(Message.status != MessageStatus.SENT))
    assert 10 <= len(sent_before) < 60 and left, "the kill came mid-batch"
    arrived_before = Counter(r.message["Message-ID"] for r in smtp_sink.received)

    # Its lease would run out in 2 minutes; the test does not wait that long.
    with unit_of_work(live_sessions) as db:
        db.execute(
            update(Message)
            .where(Message.status == MessageStatus.SENDING)
            .values(locked_until=utcnow())
        )
    second = _worker(live_settings, smtp_sink, per_second=1000)
    try:
        _wait(lambda: _sent(live_sessions) == 60)
    finally:
        second.terminate()
        second.wait(timeout=10)
    counts = Counter(r.message["Message-ID"] for r in smtp_sink.received)
    assert len(counts) == 60  # nothing lost
    twice = [mid for mid, n in counts.items() if n > 1]
    assert len(twice) <= 1 and all(counts[mid] == 2 for mid in twice)
    # What was marked sent before the kill never went again.
    with live_sessions() as db:
        sent_ids = {
            m.id: m.provider_id
            for m in db.scalars(select(Message).where(Message.id.in_(list(sent_before))))
        }
    assert sent_ids == {i: m.provider_id for i, m in sent_before.items()}
    for mid in twice:
        assert arrived_before[mid] == 1  # the one in flight at the kill…
        assert int(mid.split(".")[1]) not in sent_before  # …which was not marked sent
