"""Casting under load, through the real HTTP path, against a raw cast endpoint in the same run.

    .venv/bin/python bench/cast_load.py [--voters 20000] [--concurrency 64] [--rounds 3] --postgres URL

Makes a scratch PostgreSQL database (dropped at the end), a union with N members (a roster
import), a ratification vote with the `member_last4` second factor, scheduled (the voter list
frozen) and open. Starts the app (`ratify serve --workers 2`) on a free loopback port and:

- the whole journey for half the voters: link -> second factor -> ballot -> review -> cast ->
  receipt, with voters/s, requests/s and p50/p99 of the journey and of each step;
- the cast request alone for the other half: they sign in and open the ballot first
  (cookies, CSRF token and what the ballot form sends for their choice kept), then only their
  POST /v/cast requests are fired: casts/s and p50/p99, in `--rounds` rounds (3 by default),
  a third of them each.

Beside it a minimal Starlette app defined here (served the same way: `ratify.serving.run`,
uvicorn with 2 workers) whose POST endpoint does the raw cast transaction on psycopg
(conditional voter update, ballot insert, receipt insert, commit). Both servers stay up; the
raw endpoint casts each round's voters just before Ratify's round and once more after the
last (the ballot box emptied and the voters reset after every phase), so that each of
Ratify's rounds is set beside the mean of the raw phases either side of it: the load of
other work on a shared, noisy machine drifts over a run. The ratio of Ratify's cast
throughput to the raw endpoint's is the figure that matters; the median over the rounds is
printed, with each round's. Every phase checks that ballots = receipts = voters marked voted
= successful casts; the run exits non-zero on a mismatch or on any 5xx. The CPU time each
app worker, PostgreSQL, the load client and the whole machine used in each phase is printed
too, and the app CPU per cast of both apps: on a busy shared machine their ratio is steadier
than the ratio of throughputs. The absolute goals (500 voters/s, p99 under 100 ms) were set
beside a raw endpoint at 4,300 casts/s and p99 45 ms: they are also printed scaled to this
run's raw endpoint, for a machine slower or busier than that one.

The load client is asyncio with one keep-alive HTTP/1.1 connection per concurrent client and
no parsing beyond the status line, a few headers and (where needed) a regex on the body, so
that it takes as little of the shared CPU as possible (its CPU time is printed beside the
servers' and PostgreSQL's). A connection serves 25 requests (`--requests-per-connection`) and
is then made again: with a handful of long-lived connections the kernel may hand them all to
one worker, while phones each bring their own. By default each voter comes from its own client address (the app
trusts X-Forwarded-For from 127.0.0.1, as behind a reverse proxy); `--one-address` sends all
voters from 127.0.0.1, as a worksite behind one NAT would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_NAME = "ratify_bench_cast"
WORKERS = 2
PHASE_SECONDS = 600  # no phase runs longer than this, whatever happens
REQUEST_SECONDS = 30
CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
RECEIPT = re.compile(rb'<p class="receipt"><code>([^<]+)</code>')
CHOICE = re.compile(rb'name="choice" value="([^"]+)"')  # what the ballot's radios (or review) send
# What the issue's raw endpoint reached on its machine: the goals' 500 voters/s and 100 ms
# are put beside it, so the same goals scaled to this run's raw endpoint are printed too.
REFERENCE_RAW_CASTS = 4300
REFERENCE_RAW_P99 = 45.0
RAW_KEYS = ("yes", "no")  # the raw endpoint stores the option key itself
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# -- the raw endpoint: a minimal Starlette app doing only the cast transaction ------------------

RAW_POOL_SIZE = 10  # what each Ratify process keeps (RATIFY_DB_POOL_SIZE)
_raw_pool: asyncio.Queue[Any] | None = None
RAW_UPDATE = (
    "UPDATE voters SET has_voted = true, channel = 'online', voted_hour = %s"
    " WHERE id = %s AND vote_id = %s AND credential_issue = %s AND status = 'eligible'"
    " AND has_voted = false RETURNING tally_group"
)
RAW_BALLOT = "INSERT INTO ballots (id, vote_id, tally_group, choice) VALUES (%s, %s, %s, %s)"
RAW_RECEIPT = "INSERT INTO receipts (code, vote_id, tally_group) VALUES (%s, %s, %s)"
RECEIPT_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@asynccontextmanager
async def _raw_lifespan(_app: Any) -> AsyncIterator[None]:
    """A simple pool per process (psycopg_pool is not installed): connections made before the
    first request, handed out through a queue."""
    import psycopg

    global _raw_pool
    _raw_pool = asyncio.Queue()
    conns = [await psycopg.AsyncConnection.connect(os.environ["RAW_CAST_DSN"]) for _ in range(RAW_POOL_SIZE)]  # fmt: skip
    for conn in conns:
        _raw_pool.put_nowait(conn)
    try:
        yield
    finally:
        for conn in conns:
            await conn.close()


async def _raw_cast(request: Any) -> Any:
    from starlette.responses import HTMLResponse, PlainTextResponse

    form = parse_qs((await request.body()).decode())
    voter, vote, issue, choice = (form[k][0] for k in ("voter", "vote", "issue", "choice"))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert _raw_pool is not None
    conn = await _raw_pool.get()
    try:
        async with conn.cursor() as cur:
            await cur.execute(RAW_UPDATE, (hour, voter, vote, int(issue)))
            row = await cur.fetchone()
            if row is None:
                await conn.rollback()
                return PlainTextResponse("already voted", status_code=409)
            await cur.execute(RAW_BALLOT, (uuid.uuid4(), vote, row[0], choice))
            code = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(16))
            await cur.execute(RAW_RECEIPT, (code, vote, row[0]))
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise
    finally:
        _raw_pool.put_nowait(conn)
    return HTMLResponse(f'<p class="receipt"><code>{code}</code></p>')


async def _raw_health(_request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


def _make_raw_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(
        routes=[Route("/cast", _raw_cast, methods=["POST"]), Route("/healthz", _raw_health)],
        lifespan=_raw_lifespan,
    )


def raw_app_factory() -> Any:
    """What uvicorn's workers import: ``cast_load:raw_app_factory``."""
    return _make_raw_app()


def serve_raw(port: int) -> None:
    """The raw app, served as ``ratify serve`` serves Ratify: ``ratify.serving.run`` (uvicorn,
    with TCP_NODELAY kept on every connection), WORKERS workers, no access log."""
    from ratify import serving

    sys.path.insert(0, str(ROOT / "bench"))
    serving.run(
        "cast_load:raw_app_factory", factory=True, host="127.0.0.1", port=port,
        workers=WORKERS, access_log=False, server_header=False, proxy_headers=False,
        log_level="warning",
    )  # fmt: skip


# -- the load client ---------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection. Parses the status, Content-Length, Location and
    Set-Cookie; reads the body only as bytes."""

    def __init__(self, port: int, reuse: int) -> None:
        self.port = port
        self.reuse = reuse  # requests on one connection before it is closed and made again
        self.used = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None
        self.used = 0

    async def connect(self) -> None:
        """Open the connection now, if it is not open (``request`` would open it lazily)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(
        self,
        method: str,
        path: str,
        *,
        cookies: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        address: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, {location, set-cookie name -> value}, body). Reconnects once when a
        kept-alive connection turns out to be closed."""
        body = urlencode(form).encode() if form is not None else b""
        head = [f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"]
        if cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "\r\n")
        if address:
            head.append(f"X-Forwarded-For: {address}\r\n")
        if form is not None:
            head.append(
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n"
            )
        data = "".join(head).encode() + b"\r\n" + body
        for attempt in (1, 2):
            await self.connect()
            try:
                assert self.reader is not None and self.writer is not None
                self.writer.write(data)
                response = await self._response(self.reader)
                self.used += 1
                if self.used >= self.reuse:
                    await self.close()
                return response
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0][9:12])
        length = 0
        found: dict[str, str] = {}
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"set-cookie":
                cookie = value.strip().split(b";", 1)[0].decode()
                key, _, val = cookie.partition("=")
                found[key] = val
            elif lower in (b"location", b"retry-after"):
                found[lower.decode()] = value.strip().decode()
            elif lower == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lower == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected here")
        payload = await reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, found, payload


@dataclass
class Phase:
    """Latencies (seconds) per step, statuses, failures, and the phase's wall time."""

    name: str
    steps: dict[str, list[float]] = field(default_factory=dict)
    whole: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    done: int = 0
    requests: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def fail(self, what: str, status: int, body: bytes = b"") -> None:
        self.failures[f"{what}: {status}"] += 1
        if len(self.samples) < 5:
            snippet = re.sub(rb"\s+", b" ", body[:4000]).decode(errors="replace")
            message = re.search(r'<p class="(?:error|problem)[^"]*"[^>]*>(.*?)</p>', snippet)
            self.samples.append(
                f"{what} -> {status}: {(message.group(1) if message else snippet[:300]).strip()}"
            )

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Timed:
    """Requests on one client, each timed into a phase."""

    def __init__(self, client: Client, phase: Phase) -> None:
        self.client = client
        self.phase = phase

    async def __call__(self, step: str, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        start = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                result = await self.client.request(method, path, **kwargs)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, RuntimeError) as exc:
            await self.client.close()
            self.phase.requests += 1
            self.phase.failures[f"{step}: {exc.__class__.__name__}"] += 1
            return 0, {}, b""
        self.phase.steps.setdefault(step, []).append(time.perf_counter() - start)
        self.phase.requests += 1
        self.phase.statuses[result[0]] += 1
        return result


@dataclass
class Voter:
    id: uuid.UUID
    issue: int
    answer: str  # the second factor: the last 4 of the member number
    link: str
    address: str
    pick: int  # which option: 0 (yes) or 1 (no)
    choice: str = ""  # what the pages' forms send for it
    cookies: dict[str, str] = field(default_factory=dict)
    token: str = ""
    receipt: str = ""


async def run_clients(
    port: int,
    phase: Phase,
    items: Sequence[Voter],
    concurrency: int,
    work: Callable[[Timed, Voter], Any],
    reuse: int,
) -> None:
    """``work`` for every voter, on ``concurrency`` keep-alive connections, within
    PHASE_SECONDS."""
    queue = iter(items)
    deadline = time.perf_counter() + PHASE_SECONDS

    async def one_client() -> None:
        client = Client(port, reuse)
        timed = Timed(client, phase)
        try:
            for voter in queue:
                if time.perf_counter() > deadline:
                    phase.failures["phase time limit"] += 1
                    return
                await work(timed, voter)
        finally:
            await client.close()

    cpu = CpuMeter()
    process_start = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(min(concurrency, len(items)))))
    phase.seconds = time.perf_counter() - start
    phase.client_cpu = time.process_time() - process_start
    phase.cpu = cpu.stop()


async def journey(timed: Timed, v: Voter) -> None:
    """Link -> second factor -> ballot -> review -> cast -> receipt."""
    start = time.perf_counter()
    status, got, body = await timed("link", "GET", v.link, address=v.address)
    token = CSRF.search(body) if status == 200 else None
    if token is None:
        return timed.phase.fail("link", status, body)
    v.cookies.update((k, got[k]) for k in got if k.startswith("ratify_"))
    form = {"csrf_token": token.group(1).decode(), "answer": v.answer, "lang": "en"}
    status, got, body = await timed("second factor", "POST", v.link, cookies=v.cookies, form=form, address=v.address)  # fmt: skip
    if status != 303 or got.get("location") != "/v/ballot" or "ratify_voter" not in got:
        return timed.phase.fail("second factor", status, body)
    v.cookies["ratify_voter"] = got["ratify_voter"]
    status, _, body = await timed("ballot", "GET", "/v/ballot", cookies=v.cookies, address=v.address)  # fmt: skip
    marks = CHOICE.findall(body) if status == 200 else []
    if len(marks) < 2:
        return timed.phase.fail("ballot", status, body)
    v.choice = marks[v.pick].decode()
    form = {"csrf_token": form["csrf_token"], "choice": v.choice, "lang": "en"}
    status, _, body = await timed("review", "POST", "/v/review", cookies=v.cookies, form=form, address=v.address)  # fmt: skip
    confirm = CHOICE.search(body) if status == 200 and b"/v/cast" in body else None
    if confirm is None:
        return timed.phase.fail("review", status, body)
    form["choice"] = confirm.group(1).decode()  # the review form's hidden field, as a browser would
    status, _, body = await timed("cast", "POST", "/v/cast", cookies=v.cookies, form=form, address=v.address)  # fmt: skip
    receipt = RECEIPT.search(body) if status == 200 else None
    if receipt is None:
        return timed.phase.fail("cast", status, body)
    v.receipt = receipt.group(1).decode()
    timed.phase.whole.append(time.perf_counter() - start)
    timed.phase.done += 1


async def sign_in(timed: Timed, v: Voter) -> None:
    """Link -> second factor -> ballot, keeping the cookies, the CSRF token and what the
    ballot form sends for the voter's choice, for the cast."""
    status, got, body = await timed("link", "GET", v.link, address=v.address)
    token = CSRF.search(body) if status == 200 else None
    if token is None:
        return timed.phase.fail("link", status, body)
    v.cookies.update((k, got[k]) for k in got if k.startswith("ratify_"))
    v.token = token.group(1).decode()
    form = {"csrf_token": v.token, "answer": v.answer, "lang": "en"}
    status, got, body = await timed("second factor", "POST", v.link, cookies=v.cookies, form=form, address=v.address)  # fmt: skip
    if status != 303 or "ratify_voter" not in got:
        return timed.phase.fail("second factor", status, body)
    v.cookies["ratify_voter"] = got["ratify_voter"]
    status, _, body = await timed("ballot", "GET", "/v/ballot", cookies=v.cookies, address=v.address)  # fmt: skip
    marks = CHOICE.findall(body) if status == 200 else []
    if len(marks) < 2:
        v.token = ""
        return timed.phase.fail("ballot", status, body)
    v.choice = marks[v.pick].decode()
    timed.phase.done += 1


async def cast_only(timed: Timed, v: Voter) -> None:
    if not v.token:
        return  # its sign-in failed (counted there)
    form = {"csrf_token": v.token, "choice": v.choice, "lang": "en"}
    status, _, body = await timed("cast", "POST", "/v/cast", cookies=v.cookies, form=form, address=v.address)  # fmt: skip
    receipt = RECEIPT.search(body) if status == 200 else None
    if receipt is None:
        return timed.phase.fail("cast", status, body)
    v.receipt = receipt.group(1).decode()
    timed.phase.done += 1


def raw_caster(vote_id: uuid.UUID) -> Callable[[Timed, Voter], Any]:
    async def raw_cast(timed: Timed, v: Voter) -> None:
        form = {"voter": str(v.id), "vote": str(vote_id), "issue": str(v.issue), "choice": RAW_KEYS[v.pick]}  # fmt: skip
        status, _, body = await timed("cast", "POST", "/cast", form=form)
        receipt = RECEIPT.search(body) if status == 200 else None
        if receipt is None:
            return timed.phase.fail("raw cast", status, body)
        v.receipt = receipt.group(1).decode()
        timed.phase.done += 1

    return raw_cast


# -- CPU: who used the two cores ---------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(command, parent, user + system ticks) of one process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return comm, int(rest[1]), int(rest[11]) + int(rest[12])


def _helper(pid: int) -> bool:
    """multiprocessing's resource tracker, which uvicorn's supervisor also starts."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def _all_processes() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            found[int(entry)] = stat
    return found


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) ticks of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of a uvicorn supervisor, not multiprocessing's resource tracker."""
    return sorted(pid for pid, (_, parent, _t) in _all_processes().items() if parent == supervisor and not _helper(pid))  # fmt: skip


SERVER_PIDS: list[int] = []  # the app server being measured: its supervisor first


class CpuMeter:
    """CPU seconds used during a phase by the app's worker processes, by PostgreSQL (all of
    its processes: other databases' too), and by the whole machine."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.before = _all_processes()
        self.machine = _busy_ticks()

    def stop(self) -> dict[str, float]:
        after = _all_processes()
        busy, total = _busy_ticks()
        used: dict[str, float] = {}
        workers = [pid for pid, (_, parent, _t) in after.items() if SERVER_PIDS and parent == SERVER_PIDS[0] and not _helper(pid)]  # fmt: skip
        for n, pid in enumerate(sorted(workers), 1):
            earlier = self.before[pid][2] if pid in self.before else 0
            used[f"app worker {n}"] = (after[pid][2] - earlier) / self.tick
        pg = sum(
            t - (self.before[pid][2] if pid in self.before else 0)
            for pid, (comm, _, t) in after.items()
            if comm.startswith("postgres")
        )
        used["postgres"] = pg / self.tick
        used["machine busy"] = (busy - self.machine[0]) / self.tick
        used["machine total"] = (total - self.machine[1]) / self.tick
        return used


# -- set-up ------------------------------------------------------------------------------------


def roster_csv(n: int) -> bytes:
    rows = ["Member ID,First Name,Last Name,Email,Hire Date,Status,Worksite"]
    rows += [
        f"{100000 + i},First{i},Last{i},m{i}@members.example,2015-01-1{i % 9},member,Site {i % 40}"
        for i in range(n)
    ]
    return ("\n".join(rows) + "\n").encode()


def set_up(url: str, n: int, secret_key: str) -> tuple[uuid.UUID, list[tuple[uuid.UUID, int, str]]]:
    """A union of ``n`` members, a ratification vote frozen and open now; its voters as
    (id, credential issue, member number)."""
    from sqlalchemy import select, update

    from ratify.accounts import services as accounts
    from ratify.authz import Role
    from ratify.db import create_db_engine, make_sessionmaker, unit_of_work
    from ratify.orgs.models import OrgKind
    from ratify.orgs.services import create_organization
    from ratify.rosters import imports
    from ratify.rosters.models import ImportScope
    from ratify.rosters.services import UnitFields, create_unit
    from ratify.settings import Settings
    from ratify.votes import services as votes
    from ratify.votes.models import SecondFactor, TallyGrouping, Vote, VoteKind, VoterStatus
    from ratify.votes.models import Voter as VoterRow

    engine = create_db_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        start = time.perf_counter()
        with unit_of_work(sessions) as db:
            org = create_organization(db, slug="bench-cast", name="Bench Local 1", kind=OrgKind.UNION)  # fmt: skip
            unit = create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
            roster = imports.read_roster("roster.csv", roster_csv(n))
            result = imports.preview(
                db, org, roster, mapping=imports.guess_mapping(roster.headers),
                scope=ImportScope.UNIT, unit=unit, effective=date(2026, 1, 1),
                phone_region="US", processes=Settings().import_check_processes,
            )  # fmt: skip
            if result.errors:
                raise SystemExit(f"roster import refused: {result.errors[:3]}")
            imports.apply(db, org, result, actor_label="bench", phone_region="US")
        imported = time.perf_counter()
        with unit_of_work(sessions) as db:
            org = db.merge(org)
            staff = [
                accounts.add_staff(
                    db, org, actor=None, email=f"{role.value}{i}@bench.example", name=f"{role.value} {i}",
                    role=role, token_max_age=3600,
                ).role.user
                for i, role in enumerate([Role.STAFF, Role.COMMITTEE, Role.COMMITTEE])
            ]  # fmt: skip
            languages = ["en", "es"]
            vote = votes.create_vote(db, org, actor=staff[0], kind=VoteKind.RATIFICATION, title="2027 contract", languages=languages)  # fmt: skip
            opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
            fields = votes.VoteFields(
                title=vote.title,
                question={
                    lang: f"Do you accept the 2027 agreement? ({lang})" for lang in languages
                },
                options=[{lang: o.labels[lang] for lang in languages} for o in vote.options],
                opens_at=opens,
                closes_at=opens + timedelta(days=7),
                cutoff=date(2026, 11, 15),
                unit_ids=frozenset({unit.id}),
                membership=frozenset({"member"}),
                good_standing=False,
                employment=frozenset({"active", "on_leave"}),
                joined_days_before=None,
                tally_grouping=TallyGrouping.PER_UNIT,
                threshold=votes.Threshold(),
                committee_ids=frozenset(u.id for u in staff[1:]),
                signatures_required=2,
                second_factor=SecondFactor.MEMBER_LAST4,
                mail_letters=False,
            )
            votes.update_vote(db, org, vote, actor=staff[0], fields=fields)
            for lang in languages:
                votes.save_document(
                    db, org, vote, actor=staff[0], language=lang, pdf=PDF, pdf_name="ta.pdf",
                    summary=f"## Wages\n\n- 4% a year ({lang})\n- Safe staffing ratios\n",
                )  # fmt: skip
            vote = votes.get_vote(db, org, vote.id)
            votes.schedule(db, org, vote, actor=staff[0], secret_key=secret_key)
            now = datetime.now(UTC)
            db.execute(
                update(Vote)
                .where(Vote.id == vote.id)
                .values(opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=1))
            )
            db.expire_all()
            vote = votes.get_vote(db, org, vote.id)
            votes.advance(db, org, vote)
            if vote.status != "open":
                raise SystemExit(f"the vote did not open: {vote.status}")
            vote_id = vote.id
            rows = db.execute(
                select(VoterRow.id, VoterRow.credential_issue, VoterRow.member_number)
                .where(VoterRow.vote_id == vote_id, VoterRow.status == VoterStatus.ELIGIBLE)
                .order_by(VoterRow.member_number)
            ).all()
        done = time.perf_counter()
        print(
            f"set-up: {n} members imported in {imported - start:.1f} s; vote set up, scheduled"
            f" ({len(rows)} eligible voters frozen) and opened in {done - imported:.1f} s"
        )
        return vote_id, [(r[0], r[1], r[2]) for r in rows]
    finally:
        engine.dispose()


@contextmanager
def scratch_database(postgres_url: str, name: str) -> Iterator[str]:
    """A fresh database ``name`` on the server of ``postgres_url`` (dropped first if a former
    run left it), yielding its URL; dropped when the block ends, however it ends."""
    # No pool: a connection kept from the CREATE would be dead after a drill restarts the server.
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextmanager
def server(
    label: str, command: list[str], env: dict[str, str], port: int, workers: int = WORKERS
) -> Iterator[int]:
    """A uvicorn server in its own process group, up until /healthz answers 200 and its
    ``workers`` worker processes are running; stopped (the whole group) when the block ends,
    however it ends. Yields its supervisor's pid; it is the server measured (``SERVER_PIDS``)
    until another is started or measured (``measure``)."""
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{label}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(  # noqa: S603
        command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=ROOT,
    )  # fmt: skip
    SERVER_PIDS[:] = [proc.pid]
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = Path(log.name).read_text(errors="replace")[-2000:]
                raise SystemExit(f"{label} server did not start:\n{tail}")
            time.sleep(0.2)
        # All workers up: uvicorn starts them together; give the others a moment.
        while len(worker_pids(proc.pid)) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{label} server: fewer than {workers} workers")
            time.sleep(0.2)
        for _ in range(20):
            _healthy(port)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        SERVER_PIDS.clear()
        log.close()
        text_ = Path(log.name).read_text(errors="replace")
        errors = [line for line in text_.splitlines() if '"level": "error"' in line or "Traceback" in line]  # fmt: skip
        if errors:
            print(f"  {label} server log: {len(errors)} error line(s), e.g. {errors[0][:300]}")
        os.unlink(log.name)


# -- reporting ---------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000


def latency(values: list[float]) -> str:
    return f"p50 {pct(values, 50):6.1f} ms   p99 {pct(values, 99):6.1f} ms   max {pct(values, 100):6.1f} ms"  # fmt: skip


def report(phase: Phase, unit: str, steps: Sequence[tuple[str, str]]) -> float:
    """Print a phase's figures; returns its throughput in ``unit``/s."""
    rate = phase.done / phase.seconds if phase.seconds else 0.0
    print(
        f"\n{phase.name}: {phase.done} {unit} in {phase.seconds:.1f} s = {rate:,.0f} {unit}/s,"
        f" {phase.requests / phase.seconds:,.0f} requests/s"
    )
    if phase.whole:
        print(f"  {'whole journey':<34} {latency(phase.whole)}")
    for step, label in steps:
        if step in phase.steps:
            print(f"  {label:<34} {latency(phase.steps[step])}")
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(phase.statuses.items()))
    print(f"  statuses {statuses}" + (f"; failures {dict(phase.failures)}" if phase.failures else ""))  # fmt: skip
    for sample in phase.samples:
        print(f"    e.g. {sample}")
    cpu = phase.cpu
    parts = [f"{k} {v:.1f}" for k, v in cpu.items() if k.startswith("app worker")]
    print(
        f"  CPU s: load client {phase.client_cpu:.1f}, {', '.join(parts)}, postgres"
        f" {cpu['postgres']:.1f} (all databases); machine busy {cpu['machine busy']:.1f} of"
        f" {cpu['machine total']:.1f} ({100 * cpu['machine busy'] / max(cpu['machine total'], 1e-9):.0f}%)"
    )
    print(f"  app CPU per {unit[:-1]}: {1000 * app_cpu(phase) / max(phase.done, 1):.2f} ms (both workers, user + system)")  # fmt: skip
    return rate


def app_cpu(phase: Phase) -> float:
    return sum(v for k, v in phase.cpu.items() if k.startswith("app worker"))


JOURNEY_STEPS = [
    ("link", "GET  /v/<credential> (link)"),
    ("second factor", "POST /v/<credential> (2nd factor)"),
    ("ballot", "GET  /v/ballot"),
    ("review", "POST /v/review"),
    ("cast", "POST /v/cast (receipt page)"),
]


def counts(admin_url: str) -> tuple[Counter[str], int, int, set[str]]:
    """(ballots per choice, receipts, voters marked voted, receipt codes)."""
    import psycopg

    with psycopg.connect(admin_url) as conn:
        ballots = Counter({c: int(n) for c, n in conn.execute("SELECT choice, count(*) FROM ballots GROUP BY choice")})  # fmt: skip
        voted = conn.execute("SELECT count(*) FROM voters WHERE has_voted").fetchone()
        codes = {r[0] for r in conn.execute("SELECT code FROM receipts")}
    assert voted is not None
    return ballots, len(codes), int(voted[0]), codes


def check(label: str, dsn: str, voters: Sequence[Voter], succeeded: int) -> bool:
    choices, receipts, voted, codes = counts(dsn)
    ballots = choices.total()
    shown = {v.receipt.replace("-", "") for v in voters if v.receipt}
    picked = Counter(RAW_KEYS[v.pick] for v in voters if v.receipt)
    ok = ballots == receipts == voted == succeeded and shown == codes and picked == choices
    print(
        f"\ncheck ({label}): ballots {ballots}, receipts {receipts}, voters marked voted {voted},"
        f" successful casts {succeeded}; receipt codes shown = stored: {shown == codes};"
        f" choices stored = chosen: {picked == choices} -> {'OK' if ok else 'MISMATCH'}"
    )
    return ok


def reset(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE voters SET has_voted = false, channel = NULL, voted_hour = NULL")
        conn.execute("DELETE FROM ballots")
        conn.execute("DELETE FROM receipts")
        conn.execute("DELETE FROM throttle_hits")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE voters, ballots, receipts")


# -- the run -----------------------------------------------------------------------------------


def make_voters(
    secret_key: str,
    vote_id: uuid.UUID,
    rows: Sequence[tuple[uuid.UUID, int, str]],
    *,
    one_address: bool = False,
) -> list[Voter]:
    """The voters of ``set_up``'s rows, each with its link (derived as the app derives it),
    its second factor, its client address and its choice (seeded: the same on every run)."""
    from ratify.votes import credentials

    minter = credentials.Minter(secret_key, vote_id)
    rng = random.Random(5)
    return [
        Voter(
            id=voter_id, issue=issue, answer=number[-4:],
            link="/v/" + minter.credential(voter_id, issue),
            address="127.0.0.1" if one_address else f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            pick=rng.randrange(2),
        )
        for i, (voter_id, issue, number) in enumerate(rows)
    ]  # fmt: skip


def ratify_app(
    url: str, secret_key: str, port: int, *, one_address: bool = False, workers: int = WORKERS
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of ``ratify serve`` with ``workers`` uvicorn workers on
    ``port``, for ``server``. Unless ``one_address``, X-Forwarded-For from 127.0.0.1 is
    trusted, so that each voter may bring its own client address."""
    env = {
        "RATIFY_ENV": "production",
        "RATIFY_DATABASE_URL": url,
        "RATIFY_SECRET_KEY": secret_key,
        "RATIFY_BASE_URL": f"http://127.0.0.1:{port}",
        "RATIFY_VAR_DIR": tempfile.mkdtemp(prefix="bench-cast-var-"),
        "RATIFY_TRUSTED_PROXIES": "" if one_address else "127.0.0.1",
    }
    command = [str(ROOT / ".venv/bin/ratify"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]  # fmt: skip
    return command, env


def measure(supervisor: int) -> None:
    """The server whose workers' CPU the next phases count."""
    SERVER_PIDS[:] = [supervisor]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run(url: str, args: argparse.Namespace) -> int:
    from ratify.migrations import upgrade

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    load = os.getloadavg()
    rounds = args.rounds
    print(
        f"Ratify cast load: {args.voters} voters, concurrency {args.concurrency}, {WORKERS} uvicorn"
        f" workers per app, {args.reuse} requests per keep-alive connection, PostgreSQL {make_url(url).render_as_string(hide_password=True)}\n"
        f"machine: {os.cpu_count()} cores, shared with other work (load average"
        f" {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start); client and servers share the cores;"
        f" client addresses: {'one (127.0.0.1)' if args.one_address else 'one per voter (X-Forwarded-For via a trusted proxy)'}"
    )
    upgrade(url)
    secret_key = secrets.token_urlsafe(48)
    vote_id, rows = set_up(url, args.voters, secret_key)
    start = time.perf_counter()
    voters = make_voters(secret_key, vote_id, rows, one_address=args.one_address)
    print(f"        {len(voters)} links derived with credentials.Minter in {time.perf_counter() - start:.2f} s")  # fmt: skip
    whole, alone = voters[0::2], voters[1::2]
    slices = [alone[k::rounds] for k in range(rounds)]
    ok = True
    c = args.concurrency

    def checked(label: str, phase: Phase, cast_by: Sequence[Voter]) -> None:
        """The box holds exactly what the phase cast; then it is emptied for the next."""
        nonlocal ok
        ok &= check(label, dsn, cast_by, phase.done)
        reset(dsn)
        for v in cast_by:
            v.receipt = ""

    raw_port, port = free_port(), free_port()
    raw_command = [sys.executable, __file__, "--serve-raw", str(raw_port)]
    ratify, env = ratify_app(url, secret_key, port, one_address=args.one_address)
    raws: list[Phase] = []
    casts: list[Phase] = []

    def raw_run(part: Sequence[Voter], when: str) -> None:
        measure(raw_pid)
        phase = Phase(f"Raw endpoint, cast transaction on psycopg ({when})")
        asyncio.run(run_clients(raw_port, phase, part, c, raw_caster(vote_id), args.reuse))
        report(phase, "casts", [("cast", "POST /cast (raw)")])
        checked("raw", phase, part)
        raws.append(phase)

    # Both servers stay up; the cast phases alternate between them, round by round, so that
    # each of Ratify's is set beside the raw endpoint's just before and just after it: the
    # load of other work on a shared machine drifts over a run.
    with server("raw", raw_command, {"RAW_CAST_DSN": dsn}, raw_port) as raw_pid, server("ratify", ratify, env, port) as ratify_pid:  # fmt: skip
        measure(ratify_pid)
        journey_phase = Phase("Ratify, whole journey (link -> 2nd factor -> ballot -> review -> cast -> receipt)")  # fmt: skip
        asyncio.run(run_clients(port, journey_phase, whole, c, journey, args.reuse))
        voters_per_s = report(journey_phase, "voters", JOURNEY_STEPS)
        checked("Ratify journey", journey_phase, whole)
        signin_phase = Phase("Ratify, signing in the cast-only half (link -> 2nd factor -> ballot; not the figure)")  # fmt: skip
        asyncio.run(run_clients(port, signin_phase, alone, c, sign_in, args.reuse))
        report(signin_phase, "sign-ins", JOURNEY_STEPS[:3])
        for k, part in enumerate(slices):
            raw_run(part, f"round {k + 1} of {rounds}, before Ratify's")
            measure(ratify_pid)
            cast_phase = Phase(f"Ratify, cast request alone (POST /v/cast -> receipt page; round {k + 1} of {rounds})")  # fmt: skip
            asyncio.run(run_clients(port, cast_phase, part, c, cast_only, args.reuse))
            report(cast_phase, "casts", JOURNEY_STEPS[4:])
            checked("Ratify", cast_phase, part)
            casts.append(cast_phase)
        raw_run(slices[0], "after Ratify's last round")

    def rate(p: Phase) -> float:
        return p.done / p.seconds if p.seconds else 0.0

    def cpu_per_cast(p: Phase) -> float:
        return app_cpu(p) / max(p.done, 1)

    ratios, cpu_ratios = [], []
    print(
        "\nround by round: Ratify's casts beside the mean of the raw endpoint's just before and after"
    )
    for k, cast_phase in enumerate(casts):
        around = (raws[k], raws[k + 1])
        raw_rate = sum(rate(p) for p in around) / 2
        raw_cpu = sum(cpu_per_cast(p) for p in around) / 2
        ratios.append(rate(cast_phase) / raw_rate if raw_rate else 0.0)
        cpu_ratios.append(raw_cpu / cpu_per_cast(cast_phase) if cast_phase.done else 0.0)
        print(
            f"  round {k + 1}: {rate(cast_phase):,.0f} / {raw_rate:,.0f} casts/s = {ratios[-1]:.2f};"
            f" app CPU per cast {1000 * cpu_per_cast(cast_phase):.2f} ms, raw"
            f" {1000 * raw_cpu:.2f} ms: raw / Ratify = {cpu_ratios[-1]:.2f}"
        )
    ratio, cpu_ratio = median(ratios), median(cpu_ratios)
    ratify_rate = sum(p.done for p in casts) / max(sum(p.seconds for p in casts), 1e-9)
    raw_rate = sum(p.done for p in raws) / max(sum(p.seconds for p in raws), 1e-9)
    ratify_cpu = sum(app_cpu(p) for p in casts) / max(sum(p.done for p in casts), 1)
    raw_cpu = sum(app_cpu(p) for p in raws) / max(sum(p.done for p in raws), 1)
    p99 = pct([t for p in casts for t in p.steps.get("cast", [])], 99)
    raw_p99 = pct([t for p in raws for t in p.steps.get("cast", [])], 99)
    errors_5xx = sum(p.server_errors for p in (journey_phase, signin_phase, *casts, *raws))
    print(
        f"\nRatify cast / raw cast (throughput): median of the rounds {ratio:.2f}; over all rounds"
        f" {ratify_rate:,.0f} / {raw_rate:,.0f} casts/s = {ratify_rate / raw_rate if raw_rate else 0:.2f}\n"
        f"app CPU per cast: Ratify {1000 * ratify_cpu:.2f} ms, raw {1000 * raw_cpu:.2f} ms over all"
        f" rounds; raw / Ratify: median of the rounds {cpu_ratio:.2f} (the throughput ratio to expect"
        f" where the app's CPU is the limit; steadier than the above on a shared machine)\n"
        f"cast p99 over all rounds: Ratify {p99:.0f} ms, raw {raw_p99:.0f} ms\n"
        f"goals: cast >= 50% of raw (medians): by throughput {'met' if ratio >= 0.5 else 'NOT met'} ({ratio:.0%}),"
        f" by app CPU per cast {'met' if cpu_ratio >= 0.5 else 'NOT met'} ({cpu_ratio:.0%});"
        f" cast p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'} ({p99:.0f} ms);"
        f" whole journey >= 500 voters/s: {'met' if voters_per_s >= 500 else 'NOT met'}"
        f" ({voters_per_s:,.0f}/s)\n"
        f"the same goals scaled to this run's raw endpoint (the issue's machine: raw"
        f" {REFERENCE_RAW_CASTS:,} casts/s, p99 {REFERENCE_RAW_P99:.0f} ms): journey >="
        f" {500 * raw_rate / REFERENCE_RAW_CASTS:,.0f} voters/s"
        f" ({voters_per_s / (500 * raw_rate / REFERENCE_RAW_CASTS):.0%} of it),"
        f" cast p99 < {100 * raw_p99 / REFERENCE_RAW_P99:.0f} ms ({p99:.0f} ms)\n"
        f"5xx answers: {errors_5xx}"
    )
    if errors_5xx:
        ok = False
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voters", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="cast-only rounds, each between two raw-endpoint phases (the ratio is their median)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", default=DEFAULT_URL, help="PostgreSQL server where a scratch database may be made"
    )  # fmt: skip
    parser.add_argument(
        "--requests-per-connection", dest="reuse", type=int, default=25,
        help="keep-alive requests on one connection before the client opens a new one (so that"
        " the kernel spreads connections over both workers, as many phones would)",
    )  # fmt: skip
    parser.add_argument(
        "--one-address", action="store_true",
        help="send every voter from 127.0.0.1 (no X-Forwarded-For): one NAT for everybody",
    )  # fmt: skip
    parser.add_argument("--serve-raw", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_raw:
        serve_raw(args.serve_raw)
        return
    if args.voters < 2 * args.rounds or args.concurrency < 1 or args.rounds < 1:
        parser.error(
            "--rounds must be 1 or more, --voters twice that or more, --concurrency 1 or more"
        )
    status = 1
    with scratch_database(args.postgres, DB_NAME) as url:
        try:
            status = run(url, args)
        except KeyboardInterrupt:
            print("\ninterrupted: servers stopped, scratch database dropped")
            status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
