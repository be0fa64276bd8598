"""Announcement emails at scale: 300,000 queued and sent by two ``ratify worker`` processes
into a local SMTP sink, beside plain ``smtplib`` sends from two processes into the same sink.

    .venv/bin/python bench/notices.py [-n 300000] [--smaller] [--raw 20000] [--profile]
        [--postgres URL]

On PostgreSQL only (the outbox's claims are ``FOR UPDATE SKIP LOCKED``), in a scratch database,
``ratify_bench_notices``, made by the Alembic migrations and dropped at the end however the run
ends. Filled by COPY (``ratify.db.copy_rows``), timed but not judged: one union with one
bargaining unit, N members with email addresses (every 500th shares the address of the one
before, as families do; one in five reads Spanish), an open ratification in English and
Spanish, and its N voters on the list (each with a credential hash, all eligible); then the
tables' statistics are refreshed (VACUUM ANALYZE, as autovacuum would after a freeze).

- **sink**: an aiosmtpd server in a process of its own (not sharing a GIL with any sender)
  that accepts each message, answers ``250 OK queued as N`` and keeps only its Message-ID:
  duplicates (the same Message-ID twice) are counted and must be 0.
- **raw**: R messages (``--raw``, 20,000 by default) sent by two processes, half each, with
  plain ``smtplib`` over one kept-open connection per process: messages/s from the moment
  both are connected to the last answer. Each process builds one ``EmailMessage`` of the
  same shape and size as the app's (headers, a text part and an HTML part, a personal link)
  and sends it with only its Message-ID changed: the transport's and the sink's own cost, the
  baseline the goal is set against. Run once before the app's drain and once after it, on
  the same sink; the baseline is their mean, both are printed. Then ``--raw-built`` messages
  (5,000) the same way but each built anew with the standard library's ``email`` package, as
  the app must (a personal link in each): what building costs, printed beside.
- **enqueue**: a campaign made with ``campaigns.create`` (announcement, everyone, email),
  then ``campaigns.queue`` and the commit timed: its INSERT ... SELECT per channel and its
  count (what ``send_now`` or the worker's ``queue_job`` does for a big list).
- **drain**: two ``python -m ratify worker`` processes, configured only by ``RATIFY_*``
  variables (the sink as SMTP server, no TLS, RATIFY_EMAIL_PER_SECOND very high so the rate
  limit never waits, JSON logs to a file as in production), started once the campaign is
  queued and stopped once the outbox holds no queued or sending rows. Messages/s from the
  first claim (the earliest lease seen, less its length) to the last ``sent_at``; the CPU
  time the workers, PostgreSQL (all its processes) and the sink used per message, from
  /proc, beside the raw senders' and the sink's per message, and PostgreSQL's transactions per
  message (its own counters).

Prints app/raw and whether the goals are met: enqueue under 30 s; sending at 40% or more of
the raw baseline. ``--profile`` runs the workers under cProfile (slower: for where the time
goes, not for the figures) and prints the send path's steps per message. ``--drain-limit S``
stops the drain S seconds after the first claim (a slow sender would otherwise take hours on
300,000) and reports the rate over what was sent by then. ``--smaller`` is
``-n 20000 --raw 10000``. The sink is one process on one core: when it is busy most of the
time in the raw run (printed), the raw baseline is the sink's ceiling more than smtplib's.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import pstats
import re
import secrets
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cast_load import _all_processes, free_port, scratch_database

from ratify.accounts.services import create_user
from ratify.db import (
    ascending_uuids,
    copy_rows,
    create_db_engine,
    make_sessionmaker,
    unit_of_work,
    utcnow,
)
from ratify.migrations import upgrade
from ratify.notices import campaigns
from ratify.notices.models import (
    Audience,
    BothChannels,
    Campaign,
    CampaignStatus,
    Message,
    MessageKind,
    MessageStatus,
    Reach,
)
from ratify.notices.outbox import LEASE
from ratify.orgs.models import OrgKind
from ratify.orgs.services import create_organization
from ratify.rosters.models import Member
from ratify.rosters.services import UnitFields, create_unit
from ratify.votes import services as votes
from ratify.votes.models import Vote, VoteKind, Voter, VoterStatus, VoteStatus

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_NAME = "ratify_bench_notices"
WORKERS = 2
ENQUEUE_GOAL_S = 30.0
RATIO_GOAL = 0.40
MAIL_FROM = "Bench Union Votes <votes@ratify.test>"
DRAIN_STALL_S = 120  # no progress this long: stop and report what is left
HOST = "127.0.0.1"
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


# -- the sink: an SMTP server in a process of its own ------------------------------------------


class _SinkHandler:
    """Accepts every message, keeps its Message-ID only; counts repeats."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.seen: set[bytes] = set()
            self.count = 0
            self.duplicates = 0
            self.without_id = 0
            self.size = 0
            self.first = 0.0
            self.last = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        now = time.time()
        with self.lock:
            self.count += 1
            self.size += len(content)
            self.first = self.first or now
            self.last = now
            found = MESSAGE_ID.search(content)
            if found is None:
                self.without_id += 1
            elif found.group(1) in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(found.group(1))
            return f"250 OK queued as {self.count}"

    def stats(self) -> dict[str, float]:
        with self.lock:
            return {"count": self.count, "distinct": len(self.seen), "duplicates": self.duplicates,
                    "without_id": self.without_id, "size": self.size, "first": self.first,
                    "last": self.last}  # fmt: skip


def sink_main(port: int, conn: Connection) -> None:
    """The sink process: serves until told "stop"; answers "stats" and "reset"."""
    from aiosmtpd.controller import Controller

    handler = _SinkHandler()
    controller = Controller(handler, hostname=HOST, port=port, ready_timeout=30)
    controller.start()
    conn.send("ready")
    try:
        while True:
            command = conn.recv()
            if command == "stop":
                break
            if command == "reset":
                handler.reset()
                conn.send("ok")
            elif command == "stats":
                conn.send(handler.stats())
    finally:
        controller.stop()


class Sink:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.conn, child = context.Pipe()
        self.process = context.Process(target=sink_main, args=(self.port, child), daemon=True)
        self.process.start()
        if not self.conn.poll(60) or self.conn.recv() != "ready":
            raise SystemExit("the SMTP sink did not start")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def stats(self) -> dict[str, float]:
        self.conn.send("stats")
        found: dict[str, float] = self.conn.recv()
        return found

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# -- CPU from /proc ----------------------------------------------------------------------------


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far."""
    return sum(t for pid, (_, _, t) in _all_processes().items() if pid in pids) / TICK


class PostgresCpu:
    """CPU seconds PostgreSQL's processes (all of them: other databases' too) used since
    ``start``, sampled often enough that a backend which ends meanwhile (the pool recycles its
    connections every 30 minutes) keeps what it used up to its last sample."""

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}

    def start(self) -> None:
        self.first, self.last = {}, {}
        for pid, (comm, _, ticks) in _all_processes().items():
            if comm.startswith("postgres"):
                self.first[pid] = self.last[pid] = ticks

    def sample(self) -> None:
        for pid, (comm, _, ticks) in _all_processes().items():
            if comm.startswith("postgres"):
                self.first.setdefault(pid, 0)  # born since the start: all it used counts
                self.last[pid] = ticks

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last) / TICK


XACTS = text(
    "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
)


# -- raw: plain smtplib from two processes -----------------------------------------------------


BODY = (
    "Hello {name},\n\n"
    "Bench Union is holding a secret-ballot vote: 2027 contract.\n\n"
    "Voting is open from {opens} until {closes}.\n\n"
    "Your personal link to vote (it is yours alone: do not forward it):\n"
    "{link}\n\n"
    "Open it on your phone or computer, confirm who you are, read the summary and vote. "
    "Your vote is secret: nobody, not even the union, can see how you voted. Keep the "
    "receipt code you are shown at the end.\n"
)


def raw_message(n: int) -> tuple[str, bytes]:
    """(recipient, bytes) of a message shaped and sized like the app's announcement."""
    to = f"m{n}@members.example"
    link = f"https://votes.example.org/v/{secrets.token_urlsafe(32)}"
    body = BODY.format(name=f"Pat Bench{n}", opens="June 1, 2027 at 9:00:00 AM UTC",
                       closes="June 8, 2027 at 9:00:00 AM UTC", link=link)  # fmt: skip
    paragraphs = "\n".join(
        "<p>" + block.replace("\n", "<br>\n") + "</p>" for block in body.strip().split("\n\n")
    ).replace(link, f'<a href="{link}">{link}</a>')
    html = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
            '<body style="font-family: sans-serif; font-size: 16px; line-height: 1.5">\n'
            f"{paragraphs}\n</body></html>\n")  # fmt: skip
    message = EmailMessage()
    message["From"] = Address("Bench Union", "votes", "ratify.test")
    message["To"] = Address(f"Pat Bench{n}", f"m{n}", "members.example")
    message["Subject"] = "Vote now: 2027 contract"
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<raw.{n}.{secrets.token_hex(8)}@ratify.test>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    message.add_alternative(html, subtype="html")
    message["Content-Language"] = "en"
    return to, message.as_bytes(policy=SMTP)


def raw_sender(port: int, first: int, count: int, built: bool, go: Any, results: Any) -> None:
    """One raw sending process: connect, wait for the others, send ``count`` messages. Each
    one built anew when ``built``; else one built once, only its Message-ID changed per send."""
    smtp = smtplib.SMTP(HOST, port, timeout=30)
    smtp.ehlo()
    to, template = raw_message(0)
    marker = re.search(rb"<raw\.(0)\.", template)
    assert marker is not None
    head, tail = template[: marker.start(1)], template[marker.end(1) :]
    go.wait()
    cpu = time.process_time()
    for n in range(first, first + count):
        if built:
            to, data = raw_message(n)
        else:
            data = head + str(n).encode() + tail
        smtp.sendmail("votes@ratify.test", [to], data)
    results.put((time.time(), time.process_time() - cpu))
    smtp.quit()


@dataclass(frozen=True)
class Phase:
    messages: int
    seconds: float
    sender_cpu: float  # the senders' (raw) or the workers' (app) CPU seconds
    sink_cpu: float
    postgres_cpu: float = 0.0
    size: float = 0.0  # mean bytes per message, as the sink got them

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def run_raw(sink: Sink, total: int, offset: int, *, built: bool = False) -> Phase:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    results = context.Queue()
    halves = [total // 2, total - total // 2]
    processes = [
        context.Process(target=raw_sender, args=(sink.port, offset + sum(halves[:k]), half, built, go, results))
        for k, half in enumerate(halves)
    ]  # fmt: skip
    sink.reset()
    for p in processes:
        p.start()
    time.sleep(2)  # both import and connect before the start
    sink_before = cpu_seconds([sink.pid])
    start = time.time()
    go.set()
    ended = [results.get(timeout=600) for _ in processes]
    for p in processes:
        p.join(30)
    seconds = max(end for end, _ in ended) - start
    got = sink.stats()
    if got["count"] != total or got["duplicates"] or got["without_id"]:
        raise SystemExit(f"raw: the sink got {got}, not {total} distinct messages")
    return Phase(total, seconds, sum(c for _, c in ended), cpu_seconds([sink.pid]) - sink_before,
                 size=got["size"] / total)  # fmt: skip


# -- fill --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    org_id: uuid.UUID
    vote_id: uuid.UUID
    staff_id: uuid.UUID
    voters: int


FIRST_NAMES = ["Pat", "Sam", "José", "Ana", "Lee", "Kim", "Noor", "Chris", "María", "Dana"]


def fill(engine: Engine, n: int) -> Made:
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        org = create_organization(session, slug="bench", name="Bench Union", kind=OrgKind.UNION)
        create_unit(session, org, actor=None, fields=UnitFields("U01", "Unit U01", "", ""))
        staff = create_user(session, email="staff@bench.example", name="Bench Staff")
        vote = votes.create_vote(session, org, actor=staff, kind=VoteKind.RATIFICATION,
                                 title="2027 contract", languages=["en", "es"])  # fmt: skip
        now = utcnow()
        session.execute(
            update(Vote)
            .where(Vote.id == vote.id)
            .values(
                status=VoteStatus.OPEN,
                scheduled_at=now - timedelta(minutes=5),
                opens_at=now - timedelta(minutes=1),
                opened_at=now - timedelta(minutes=1),
                closes_at=now + timedelta(days=7),
            )
        )
        member_ids = ascending_uuids(n)
        member_columns = [c.name for c in Member.__table__.columns if not c.nullable]

        def email(k: int) -> str:
            return f"m{k - 1 if k % 500 == 499 else k}@members.example"

        def members() -> Iterator[list[object]]:
            for k, member_id in enumerate(member_ids):
                first, last = FIRST_NAMES[k % len(FIRST_NAMES)], f"Bench{k}"
                values = {"id": member_id, "organization_id": org.id,
                          "member_number": str(100000 + k), "first_name": first,
                          "last_name": last, "sort_name": f"{last} {first}".lower(),
                          "email": email(k), "preferred_language": "es" if k % 5 == 2 else "",
                          "created_at": now, "updated_at": now}  # fmt: skip
                yield [values.get(name, "") for name in member_columns]

        copy_rows(session, Member, member_columns, members())
        voter_columns = ["id", "vote_id", "member_id", "member_number", "tally_group", "status",
                         "reason", "credential_hash"]  # fmt: skip

        def voter_rows() -> Iterator[list[object]]:
            for k, member_id in enumerate(member_ids):
                yield [uuid.uuid4().hex, vote.id, member_id, str(100000 + k), "U01",
                       VoterStatus.ELIGIBLE.value, "", secrets.token_hex(32)]  # fmt: skip

        copy_rows(session, Voter, voter_columns, voter_rows())
        made = Made(org.id, vote.id, staff.id, n)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) members, voters"))
    return made


def announcement() -> campaigns.CampaignForm:
    return campaigns.CampaignForm(
        kind=MessageKind.ANNOUNCEMENT,
        name="Voting is open",
        audience=Audience.ALL,
        reach=Reach.ALL,
        tally_group=None,
        both_channels=BothChannels.EMAIL,
        letters=True,
        texts=campaigns.default_texts(MessageKind.ANNOUNCEMENT, ["en", "es"]),
    )


@dataclass(frozen=True)
class Enqueued:
    campaign_id: uuid.UUID
    queued: int
    queue_s: float  # campaigns.queue: the INSERT ... SELECTs and the count
    commit_s: float
    count_s: float  # the count alone, run again after the commit

    @property
    def seconds(self) -> float:
        return self.queue_s + self.commit_s


def enqueue(engine: Engine, made: Made) -> Enqueued:
    from ratify.accounts.models import StaffUser
    from ratify.orgs.models import Organization

    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        org = session.get_one(Organization, made.org_id)
        vote = votes.get_vote(session, org, made.vote_id)
        staff = session.get_one(StaffUser, made.staff_id)
        campaign_id = campaigns.create(session, org, vote, announcement(), actor=staff).id
    session = factory()
    try:
        org = session.get_one(Organization, made.org_id)
        vote = votes.get_vote(session, org, made.vote_id)
        campaign = session.get_one(Campaign, campaign_id)
        start = time.perf_counter()
        queued = campaigns.queue(session, campaign, vote)
        campaign.queued_count = queued
        campaign.status = CampaignStatus.QUEUED
        campaign.queued_at = utcnow()
        session.flush()
        queue_s = time.perf_counter() - start
        start = time.perf_counter()
        session.commit()
        commit_s = time.perf_counter() - start
    finally:
        session.close()
    with engine.connect() as conn:
        start = time.perf_counter()
        conn.execute(select(func.count()).where(Message.campaign_id == campaign_id)).scalar()
        count_s = time.perf_counter() - start
    return Enqueued(campaign_id, queued, queue_s, commit_s, count_s)


# -- drain: two `ratify worker` processes ------------------------------------------------------


def worker_env(url: str, sink: Sink, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RATIFY_ENV": "production",
        "RATIFY_DATABASE_URL": url,
        "RATIFY_SECRET_KEY": secrets.token_urlsafe(48),
        "RATIFY_BASE_URL": "https://votes.example.org",
        "RATIFY_VAR_DIR": str(var_dir),
        "RATIFY_SMTP_HOST": HOST,
        "RATIFY_SMTP_PORT": str(sink.port),
        "RATIFY_SMTP_SECURITY": "none",
        "RATIFY_MAIL_FROM": MAIL_FROM,
        "RATIFY_EMAIL_PER_SECOND": "1000000",
        "RATIFY_LOG_FORMAT": "json",
        "RATIFY_WORKER_POLL_SECONDS": "0.2",
    }


@contextlib.contextmanager
def workers(env: dict[str, str], directory: Path, profile: bool) -> Iterator[list[int]]:
    """WORKERS ``ratify worker`` processes, each in its own process group, logging to a file;
    stopped (SIGTERM, as a deployment would) when the block ends, however it ends."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for k in range(WORKERS):
            command = [sys.executable, "-m", "ratify", "worker"]
            if profile:
                command[1:1] = ["-m", "cProfile", "-o", str(directory / f"worker{k}.prof")]
            log = (directory / f"worker{k}.log").open("wb")
            procs.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log,  # noqa: S603
                                          stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
            log.close()
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


@dataclass(frozen=True)
class Drained:
    phase: Phase
    statuses: dict[str, int]
    startup_s: float  # from starting the processes to their first claim
    wall_s: float  # from starting the processes to the end (outbox empty, or the limit)
    duplicates: int
    distinct: int
    sink_rate: float  # first to last arrival at the sink
    commits: int  # PostgreSQL transactions committed and rolled back during the drain
    rollbacks: int


def drain(engine: Engine, url: str, sink: Sink, queued: Enqueued, *, profile: bool,
          directory: Path, limit: float = 0.0) -> Drained:  # fmt: skip
    env = worker_env(url, sink, directory)
    sending = select(func.min(Message.locked_until)).where(
        Message.channel == "email", Message.status == MessageStatus.SENDING
    )
    sink.reset()
    spawned = time.time()
    first_claim: datetime | None = None
    seen_at = 0.0
    cpu_start = (0.0, 0.0)
    postgres = PostgresCpu()
    xacts_start: tuple[int, ...] = (0, 0)
    with workers(env, directory, profile) as pids, engine.connect() as conn:
        # The earliest lease seen while the first batches are in flight (its rows stay
        # "sending" for as long as a batch takes to send: polled far more often than that).
        deadline = time.monotonic() + 120
        while first_claim is None or time.monotonic() < seen_at + 1.0:
            if time.monotonic() > deadline:
                raise SystemExit("the workers claimed nothing in 120 s: see " + str(directory))
            until = conn.execute(sending).scalar()
            conn.commit()
            if until is not None:
                claim = until - LEASE
                if first_claim is None:
                    seen_at = time.monotonic()
                    cpu_start = cpu_seconds(pids), cpu_seconds([sink.pid])
                    postgres.start()
                    xacts_start = tuple(conn.execute(XACTS).one())
                first_claim = min(first_claim or claim, claim)
            time.sleep(0.02)
        # Done when the sink has them all and the outbox has nothing left in flight.
        left = select(func.count()).where(
            Message.campaign_id == queued.campaign_id,
            Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]),
        )
        progress, moved_at = 0, time.monotonic()
        while True:
            time.sleep(0.5)
            postgres.sample()
            got = int(sink.stats()["count"])
            if got != progress:
                progress, moved_at = got, time.monotonic()
            if limit and time.monotonic() - seen_at > limit:
                print(f"  drain stopped after {limit:.0f} s (--drain-limit), {got:,} sent")
                break
            if got >= queued.queued or time.monotonic() - moved_at > DRAIN_STALL_S:
                remaining = conn.execute(left).scalar()
                conn.commit()
                if not remaining:
                    break
                if time.monotonic() - moved_at > DRAIN_STALL_S:
                    print(f"  drain stalled: {remaining:,} rows still queued or sending")
                    break
        wall_s = time.time() - spawned
        time.sleep(1.5)  # PostgreSQL publishes its counters about once a second
        xacts = [b - a for a, b in zip(xacts_start, conn.execute(XACTS).one(), strict=True)]
        postgres.sample()
        cpu_end = cpu_seconds(pids), cpu_seconds([sink.pid])
        by_status = dict(conn.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == queued.campaign_id)
            .group_by(Message.status)
        ).all())  # fmt: skip
        last_sent = conn.execute(
            select(func.max(Message.sent_at)).where(Message.campaign_id == queued.campaign_id)
        ).scalar()
        got_stats = sink.stats()
    # Once the workers have stopped (each ends the batch it is on): all that arrived, all sent.
    final = sink.stats()
    with engine.connect() as conn:
        sent_in_the_end = conn.execute(
            select(func.count()).where(
                Message.campaign_id == queued.campaign_id, Message.status == MessageStatus.SENT
            )
        ).scalar()
    if final["count"] != sent_in_the_end:
        print(
            f"  the sink got {final['count']:,} messages, the outbox marked {sent_in_the_end:,} sent"
        )
    sent = by_status.get(MessageStatus.SENT, 0)
    assert first_claim is not None and last_sent is not None
    seconds = (last_sent - first_claim).total_seconds()
    phase = Phase(sent, seconds, cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1],
                  postgres.seconds(), size=got_stats["size"] / max(1, got_stats["count"]))  # fmt: skip
    sink_span = got_stats["last"] - got_stats["first"]
    return Drained(
        phase=phase,
        statuses={str(k.value): v for k, v in by_status.items()},
        startup_s=first_claim.timestamp() - spawned,
        wall_s=wall_s,
        duplicates=int(final["duplicates"]),
        distinct=int(final["distinct"]),
        sink_rate=got_stats["count"] / sink_span if sink_span > 0 else 0.0,
        commits=xacts[0],
        rollbacks=xacts[1],
    )


# -- the send path, from cProfile --------------------------------------------------------------

# (label, file, function, only when called from this function)
STEPS = [
    ("run_forever (everything)", "ratify/jobs/worker.py", "run_forever", None),
    ("  worker jobs + ticks between batches", "ratify/jobs/worker.py", "run_once", None),
    ("  Outbox.claim", "ratify/notices/outbox.py", "claim", None),
    ("  Outbox.drain_batch", "ratify/notices/outbox.py", "drain_batch", None),
    ("    render_batch (one read per batch)", "ratify/notices/outbox.py", "render_batch", None),
    ("      voter_values (link, dates)", "ratify/notices/outbox.py", "voter_values", None),
    ("    _send_one", "ratify/notices/outbox.py", "_send_one", None),
    ("      email_sender.send", "ratify/notices/outbox.py", "send", None),
    ("        texts.to_html", "ratify/notices/texts.py", "to_html", None),
    ("        email.build (EmailMessage)", "ratify/notices/email.py", "build", None),
    ("        as_bytes", "email/message.py", "as_bytes", "send"),
    ("        SMTP conversation", "ratify/notices/email.py", "_converse", None),
    ("      _finish (its own transaction)", "ratify/notices/outbox.py", "_finish", None),
    ("        the UPDATE", "sqlalchemy/orm/session.py", "execute", "_finish"),
    ("      log.info (all)", "structlog/stdlib.py", "info", None),
    ("  psycopg: all statements", "psycopg/cursor.py", "execute", None),
    ("  psycopg: all commits", "psycopg/connection.py", "commit", None),
    ("  psycopg: all rollbacks", "psycopg/connection.py", "rollback", None),
    ("  SQLAlchemy Session() made", "sqlalchemy/orm/session.py", "__init__", None),
]


def _cumulative(
    table: dict[Any, Any], path: str, name: str, caller: str | None
) -> tuple[float, int]:
    seconds, calls = 0.0, 0
    for (filename, _, function), (_, n, _own, total, callers) in table.items():
        if not (filename.endswith(path) and function == name):
            continue
        if caller is None:
            seconds, calls = seconds + total, calls + n
            continue
        for (_, _, by), figures in callers.items():
            if by == caller:
                seconds, calls = seconds + figures[3], calls + figures[1]
    return seconds, calls


def show_profile(directory: Path, messages: int) -> None:
    files = sorted(str(p) for p in directory.glob("worker*.prof"))
    if not files:
        print("  (no profile written)")
        return
    stats = pstats.Stats(*files)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    print(f"\n  where the workers' time goes (cProfile, wall clock, both workers, per message "
          f"sent; {messages:,} messages):")  # fmt: skip
    for label, path, name, caller in STEPS:
        seconds, calls = _cumulative(table, path, name, caller)
        print(f"    {label:<42} {seconds / messages * 1e6:8.0f} µs  {calls / messages:6.2f} calls")
    print("\n  top 15 functions by own time:")
    stats.sort_stats("tottime").print_stats(15)


# -- the run -----------------------------------------------------------------------------------


def per_message(seconds: float, messages: int) -> str:
    return f"{seconds / messages * 1e6:7.0f} µs" if messages else "      -"


def run(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    engine = create_db_engine(url, pool_size=2)
    sink = Sink()
    try:
        start = time.perf_counter()
        made = fill(engine, args.messages)
        print(f"\nPostgreSQL: {made.voters:,} members with email and as many voters on an open "
              f"vote; filled in {time.perf_counter() - start:.1f} s")  # fmt: skip

        raw_before = run_raw(sink, args.raw, 0)
        print(f"  raw smtplib, 2 processes, {args.raw:,} messages: {raw_before.rate:6.0f} msg/s")

        queued = enqueue(engine, made)
        print(f"  enqueue ({queued.queued:,} messages): {queued.seconds:.2f} s (campaigns.queue "
              f"{queued.queue_s:.2f} s, of which the count about {queued.count_s:.2f} s; commit "
              f"{queued.commit_s:.2f} s)")  # fmt: skip

        with tempfile.TemporaryDirectory(prefix="ratify-bench-notices-") as directory:
            drained = drain(engine, url, sink, queued, profile=args.profile,
                            directory=Path(directory), limit=args.drain_limit)  # fmt: skip
            app = drained.phase
            print(f"  app, 2 ratify workers: {app.messages:,} sent in {app.seconds:.1f} s "
                  f"(first claim to last sent): {app.rate:6.0f} msg/s")  # fmt: skip
            print(f"    workers started to first claim {drained.startup_s:.1f} s; to the end "
                  f"{drained.wall_s:.1f} s; at the sink {drained.sink_rate:.0f} msg/s")  # fmt: skip
            print(f"    outbox: {drained.statuses}; sink, once the workers stopped: "
                  f"{drained.distinct:,} distinct Message-IDs, {drained.duplicates} "
                  "duplicates")  # fmt: skip
            print(f"    PostgreSQL transactions per message sent: "
                  f"{drained.commits / app.messages:.2f} committed, "
                  f"{drained.rollbacks / app.messages:.2f} rolled back")  # fmt: skip
            if args.profile:
                show_profile(Path(directory), app.messages)

        raw_after = run_raw(sink, args.raw, args.raw)
        print(f"  raw smtplib again after the drain:       {raw_after.rate:6.0f} msg/s")
        built = run_raw(sink, args.raw_built, 2 * args.raw, built=True) if args.raw_built else None
        if built is not None:
            print(f"  raw, each message built anew ({args.raw_built:,}): {built.rate:6.0f} msg/s")
        raw_rate = (raw_before.rate + raw_after.rate) / 2

        raw_n = raw_before.messages + raw_after.messages
        raw_s = raw_before.seconds + raw_after.seconds
        raw_cpu = raw_before.sender_cpu + raw_after.sender_cpu
        raw_sink = raw_before.sink_cpu + raw_after.sink_cpu
        b = built or Phase(0, 1.0, 0.0, 0.0)
        print("\n  CPU per message          app (2 workers)    raw    raw, built anew")
        print(f"    senders / workers    {per_message(app.sender_cpu, app.messages)}  "
              f"{per_message(raw_cpu, raw_n)}  {per_message(b.sender_cpu, b.messages)}")  # fmt: skip
        print(f"    PostgreSQL           {per_message(app.postgres_cpu, app.messages)}")
        print(f"    sink                 {per_message(app.sink_cpu, app.messages)}  "
              f"{per_message(raw_sink, raw_n)}  {per_message(b.sink_cpu, b.messages)}")  # fmt: skip
        print(f"    mean size            {app.size:7.0f} B   {raw_before.size:7.0f} B   "
              f"{b.size:7.0f} B")  # fmt: skip
        print(f"    sink busy (share of one core): app {app.sink_cpu / app.seconds:.0%}, raw "
              f"{raw_sink / raw_s:.0%}, raw built anew {b.sink_cpu / b.seconds:.0%}")  # fmt: skip

        ratio = app.rate / raw_rate
        print(f"\n  app / raw (mean of both raw runs, {raw_rate:.0f} msg/s): {ratio:.2f}")
        if built is not None:
            print(f"  app / raw built anew ({built.rate:.0f} msg/s): {app.rate / built.rate:.2f}")
        enqueue_ok = queued.seconds < ENQUEUE_GOAL_S
        ratio_ok = ratio >= RATIO_GOAL
        print(f"  goal: enqueue under {ENQUEUE_GOAL_S:.0f} s: {'met' if enqueue_ok else 'NOT met'}")
        print(f"  goal: sending at >= {RATIO_GOAL:.0%} of raw: {'met' if ratio_ok else 'NOT met'}")
        print(f"  duplicates: {drained.duplicates} ({'ok' if not drained.duplicates else 'NOT 0'})")
        if args.drain_limit == 0 and drained.statuses.get("sent", 0) != queued.queued:
            print(f"  NOT all sent: {drained.statuses}")
            raise SystemExit(1)
        if drained.duplicates:
            raise SystemExit(1)
    finally:
        sink.stop()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=300_000,
                        help="members, voters and so announcement emails")  # fmt: skip
    parser.add_argument("--raw", type=int, default=20_000, help="messages in each raw run")
    parser.add_argument("--raw-built", type=int, default=5_000,
                        help="messages in the raw run that builds each one anew (0: none)")  # fmt: skip
    parser.add_argument("--drain-limit", type=float, default=0.0, metavar="SECONDS",
                        help="stop the drain this long after the first claim (0: when empty)")  # fmt: skip
    parser.add_argument("--smaller", action="store_true", help="-n 20000 --raw 10000")
    parser.add_argument("--profile", action="store_true", help="the workers under cProfile")
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_URL,
                        help=f"the server for the scratch database (default {DEFAULT_URL})")  # fmt: skip
    args = parser.parse_args()
    if args.smaller:
        args.messages, args.raw = 20_000, 10_000
    started = datetime.now(UTC)
    with scratch_database(args.postgres, DB_NAME) as url:
        run(url, args)
    print(f"\n  (whole run {(datetime.now(UTC) - started).total_seconds():.0f} s)")


if __name__ == "__main__":
    main()
