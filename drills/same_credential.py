"""Drill: every voter's credential cast many times at once, on several app workers.

    .venv/bin/python drills/same_credential.py --postgres URL [--voters 1000] [--workers 4]
        [--attempts 20] [--lanes 4] [--concurrency 32]

Issue 5's acceptance, at scale and through the real HTTP path (DESIGN.md §4 rule 2: under any
concurrency a credential yields exactly one ballot). Makes a scratch PostgreSQL database
(dropped at the end) holding a union of N members and an open ratification vote, its voters
frozen, with bench/cast_load.py's `set_up`; starts `ratify serve --workers W` on a free
loopback port; signs every voter in as a phone would (link -> second factor -> ballot, each
voter from its own client address via X-Forwarded-For); then, for each voter, writes its
POST /v/cast `--attempts` times at once, each attempt on its own keep-alive connection,
`--lanes` voters at a time. The connections are made one by one until each worker holds its
share (which worker accepted one is read from /proc), so each voter's attempts are spread
over the workers. The app's RATIFY_DB_POOL_SIZE is sized so that its workers hold at most half of
PostgreSQL's max_connections (`--pool-size` to choose it).

Passes when, in the database, ballots = receipts = voters marked voted = N, the receipt codes
shown are the ones stored and the choices stored are the ones chosen; and, over HTTP, each
voter got exactly one receipt page (200) and `attempts - 1` "already voted" pages (409), with
no other answer (no 5xx, no timeout), and (with 2 workers or more) no voter's attempts all
reached one worker. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import drill_support as support
from drill_support import load

DB_NAME = "ratify_drill_same_credential"
# casting.AlreadyVoted, as votes/voting/problem.html shows it in English.
ALREADY_VOTED = re.compile(rb'<p class="error" role="alert">You have already voted\.')


@dataclass
class Storm:
    """What the attempts got back."""

    phase: load.Phase
    attempts: int
    receipts: Counter[int] = field(default_factory=Counter)  # receipt pages per voter -> voters
    already: Counter[int] = field(default_factory=Counter)  # "already voted" pages per voter
    wrong_voters: int = 0  # voters without exactly one receipt and attempts - 1 refusals
    other: Counter[str] = field(default_factory=Counter)  # answers neither of the two
    in_flight: list[int] = field(default_factory=list)  # attempts sent before the first answer
    spread: Counter[int] = field(default_factory=Counter)  # workers one voter's attempts hit
    per_worker: Counter[int] = field(default_factory=Counter)  # attempts per worker pid
    pool_made: int = 0  # connections made to get a pool spread over the workers
    pool_seconds: float = 0.0
    pool_workers: Counter[int] = field(default_factory=Counter)  # pool connections per worker
    remade: int = 0  # pool connections the app closed, made again during the storm


def _accepting_workers(server_port: int, client_ports: Sequence[int]) -> dict[int, int]:
    """Client port -> pid of the app worker holding the accepted end of that connection."""
    inodes: dict[int, int] = {}  # inode of the server end -> client port
    wanted = set(client_ports)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote = int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16)
            if local == server_port and remote in wanted:
                inodes[int(cols[9])] = remote
    found: dict[int, int] = {}
    for pid in load.worker_pids(load.SERVER_PIDS[0]) if load.SERVER_PIDS else []:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                found[inodes[int(link[8:-1])]] = pid
    return found


class Owners:
    """Which app worker accepted each connection, by the connection's client port."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.known: dict[int, int] = {}

    async def of(self, clients: Sequence[load.Client]) -> list[int | None]:
        """The worker of each open connection (None where unknown); waits up to a second for
        the workers to accept new ones."""
        ports = [c.writer.get_extra_info("sockname")[1] if c.writer else 0 for c in clients]
        for _ in range(50):
            missing = [port for port in ports if port and port not in self.known]
            if not missing:
                break
            self.known.update(_accepting_workers(self.server_port, missing))
            await asyncio.sleep(0.02)
        return [self.known.get(port) for port in ports]

    def forget(self, client: load.Client) -> None:
        """Before ``client`` is closed: its port may serve another connection later."""
        if client.writer is not None:
            self.known.pop(client.writer.get_extra_info("sockname")[1], None)


async def spread_pool(
    port: int, owners: Owners, workers: int, size: int
) -> tuple[list[load.Client], int]:
    """``size`` open keep-alive connections, as evenly spread over the app's ``workers`` as
    can be had, in round-robin order of worker; and how many connections were made for it.

    A burst of connections goes to one worker: the first to wake accepts all that wait. So
    connections are made one by one and those of a worker that has its share are closed.
    Those kept are used every second or so, lest the app close them as idle (uvicorn does
    after 5 s)."""
    share = -(-size // workers)
    by_worker: dict[int, list[load.Client]] = {}
    made = 0
    used = time.perf_counter()
    while sum(min(len(cs), share) for cs in by_worker.values()) < size and made < 100 * size:
        client = load.Client(port, reuse=10**9)  # kept for the whole storm
        await client.connect()
        made += 1
        (owner,) = await owners.of([client])
        if owner is None or len(by_worker.setdefault(owner, [])) >= share:
            owners.forget(client)
            await client.close()
        else:
            by_worker[owner].append(client)
        if time.perf_counter() - used > 1:
            kept = [c for cs in by_worker.values() for c in cs]
            await asyncio.gather(*(c.request("GET", "/healthz") for c in kept))
            used = time.perf_counter()
        await asyncio.sleep(0.005)  # let the worker that took it go back to sleep
    lists = list(by_worker.values())
    pool = [cs[i] for i in range(share) for cs in lists if i < len(cs)]
    while len(pool) < size:  # some worker never took one: the pool is as spread as it can be
        client = load.Client(port, reuse=10**9)
        await client.connect()
        pool.append(client)
    return pool, made


async def _fire(storm: Storm, timers: Sequence[load.Timed], v: load.Voter) -> None:
    """One voter's cast, ``len(timers)`` times at once, one attempt per connection."""
    form = {"csrf_token": v.token, "choice": v.choice, "lang": "en"}

    async def attempt(timed: load.Timed) -> tuple[float, float, int, bytes]:
        sent = time.perf_counter()
        status, _, body = await timed(
            "cast", "POST", "/v/cast", cookies=v.cookies, form=form, address=v.address
        )
        return sent, time.perf_counter(), status, body

    answers = await asyncio.gather(*(attempt(t) for t in timers))
    first_answer = min(done for _, done, _, _ in answers)
    storm.in_flight.append(sum(1 for sent, _, _, _ in answers if sent < first_answer))
    receipts = refused = 0
    for _, _, status, body in answers:
        receipt = load.RECEIPT.search(body) if status == 200 else None
        if receipt is not None:
            receipts += 1
            v.receipt = receipt.group(1).decode()
        elif status == 409 and ALREADY_VOTED.search(body):
            refused += 1
        else:
            storm.other[str(status)] += 1
            storm.phase.fail("cast", status, body)
    storm.receipts[receipts] += 1
    storm.already[refused] += 1
    if receipts != 1 or refused != len(timers) - 1:
        storm.wrong_voters += 1


async def cast_storm(
    port: int, voters: Sequence[load.Voter], attempts: int, lanes: int, workers: int
) -> Storm:
    """Every voter's cast ``attempts`` times at once, ``lanes`` voters at a time, each lane on
    ``attempts`` connections of its own spread over the workers."""
    storm = Storm(
        load.Phase(f"Cast storm: each voter's POST /v/cast x{attempts} at once"), attempts
    )
    lanes = min(lanes, len(voters))
    owners = Owners(port)
    started = time.perf_counter()
    pool, storm.pool_made = await spread_pool(port, owners, workers, lanes * attempts)
    storm.pool_seconds = time.perf_counter() - started
    storm.pool_workers = Counter(w for w in await owners.of(pool) if w is not None)
    queue = iter(voters)
    deadline = time.perf_counter() + load.PHASE_SECONDS

    async def lane(clients: Sequence[load.Client]) -> None:
        timers = [load.Timed(c, storm.phase) for c in clients]
        for v in queue:
            if time.perf_counter() > deadline:
                storm.phase.failures["phase time limit"] += 1
                return
            # Made again where the app closed one, before the attempts are written, so that
            # they reach the workers together.
            storm.remade += sum(1 for c in clients if c.writer is None)
            await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
            hit = [w for w in await owners.of(clients) if w is not None]
            storm.spread[len(set(hit))] += 1
            storm.per_worker.update(hit)
            await _fire(storm, timers, v)

    cpu = load.CpuMeter()
    process_start = time.process_time()
    start = time.perf_counter()
    try:
        await asyncio.gather(*(lane(pool[k * attempts : (k + 1) * attempts]) for k in range(lanes)))
    finally:
        for client in pool:
            await client.close()
    storm.phase.seconds = time.perf_counter() - start
    storm.phase.client_cpu = time.process_time() - process_start
    storm.phase.cpu = cpu.stop()
    storm.phase.done = storm.receipts[1]
    return storm


def pool_size(dsn: str, workers: int, chosen: int) -> tuple[int, int, int]:
    """(pool size per app process, PostgreSQL's max_connections, connections in use).

    Each process runs at most its pool's size of requests at once, each on one connection
    (``ratify.web.routing.in_view_thread``), and opens more only past that for the worker's
    few. Unless ``chosen``, the pool is sized so that all the workers together hold at most
    half of max_connections (and at most 10): a stock PostgreSQL's 100 has other clients."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int, count(*) FROM pg_stat_activity"
        ).fetchone()
    assert row is not None
    limit, in_use = int(row[0]), int(row[1])
    return chosen or max(1, min(10, limit // 2 // workers)), limit, in_use


def _tally(counter: Counter[int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(counter.items()))


def run(url: str, args: argparse.Namespace) -> int:
    n, attempts = args.voters, args.attempts
    print(
        f"Drill same_credential: {n} voters x {attempts} attempts at once, {args.lanes} voters"
        f" at a time ({args.lanes * attempts} casts in flight), {args.workers} uvicorn workers,"
        f" PostgreSQL {support.shown(url)}\n" + support.machine()
    )
    ready = support.prepare(url, n)
    dsn, secret_key, voters = ready.dsn, ready.secret_key, ready.voters
    port = load.free_port()
    command, env = load.ratify_app(url, secret_key, port, workers=args.workers)
    pool, limit, in_use = pool_size(dsn, args.workers, args.pool_size)
    env["RATIFY_DB_POOL_SIZE"] = str(pool)
    print(
        f"RATIFY_DB_POOL_SIZE={pool}: {args.workers} workers x {pool} connections"
        f" = {pool * args.workers}, of PostgreSQL's"
        f" max_connections {limit} ({in_use} in use at start)"
    )
    with load.server("ratify", command, env, port, workers=args.workers):
        signin = load.Phase("Signing in (link -> 2nd factor -> ballot)")
        asyncio.run(
            load.run_clients(port, signin, voters, args.concurrency, load.sign_in, args.reuse)
        )
        load.report(signin, "sign-ins", load.JOURNEY_STEPS[:3])
        ready = [v for v in voters if v.token and "ratify_voter" in v.cookies]
        storm = asyncio.run(cast_storm(port, ready, attempts, args.lanes, args.workers))
        load.report(storm.phase, "voters", [("cast", "POST /v/cast (each attempt)")])
    print(
        f"  receipt pages per voter (count: voters) {_tally(storm.receipts)}\n"
        f"  'already voted' 409 pages per voter (count: voters) {_tally(storm.already)}\n"
        f"  other answers {dict(storm.other) or 'none'}\n"
        f"  attempts written before the voter's first answer came back: min"
        f" {min(storm.in_flight, default=0)}, median"
        f" {statistics.median(storm.in_flight) if storm.in_flight else 0} of {attempts}"
    )
    kept = "/".join(str(k) for _, k in sorted(storm.pool_workers.items()))
    shares = "/".join(str(k) for _, k in sorted(storm.per_worker.items()))
    print(
        f"  connections: {sum(storm.pool_workers.values())} kept open, {kept} per worker"
        f" ({storm.pool_made} made in {storm.pool_seconds:.1f} s to spread them); attempts"
        f" per worker {shares}; workers one voter's attempts reached (workers: voters)"
        f" {_tally(storm.spread)}; {storm.remade} made again during the storm"
    )
    ok = load.check("drill", dsn, voters, storm.receipts[1])
    sent = storm.phase.requests
    statuses = storm.phase.statuses
    errors_5xx = signin.server_errors + storm.phase.server_errors
    failed = dict(signin.failures) | dict(storm.phase.failures)
    refusals = n * (attempts - 1)
    one_worker = sum(k for w, k in storm.spread.items() if w < 2)
    failures = [
        (f"{n - len(ready)} voters could not sign in", len(ready) != n),
        (f"{storm.wrong_voters} voters without exactly one receipt", storm.wrong_voters > 0),
        (f"{sent} attempts sent, not {n * attempts}", sent != n * attempts),
        (f"{statuses[200]} receipt pages, not {n}", statuses[200] != n),
        (f"{statuses[409]} 409 pages, not {refusals}", statuses[409] != refusals),
        (f"{errors_5xx} 5xx answers", errors_5xx > 0),
        (
            f"{one_worker} voters' attempts all reached one worker",
            one_worker > 0 and args.workers > 1,
        ),
        (f"failures {failed}", bool(failed)),
        ("the database check above", not ok),
    ]
    return support.verdict(
        f"same_credential: {n} voters, {sent} cast attempts in {storm.phase.seconds:.1f} s"
        f" ({sent / max(storm.phase.seconds, 1e-9):,.0f} attempts/s), statuses"
        f" {dict(sorted(statuses.items()))}",
        failures,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        default=load.DEFAULT_URL,
        help="PostgreSQL server where a scratch database may be made",
    )
    parser.add_argument("--voters", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers of the app")
    parser.add_argument(
        "--attempts", type=int, default=20, help="casts of each credential, at once"
    )
    parser.add_argument(
        "--lanes", type=int, default=4, help="voters whose attempts are in flight together"
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=0,
        help="RATIFY_DB_POOL_SIZE of the app (default: workers x pool <= max_connections / 2)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="clients signing voters in")
    parser.add_argument(
        "--requests-per-connection",
        dest="reuse",
        type=int,
        default=25,
        help="signing in: keep-alive requests on one connection before it is made again (the"
        " cast attempts each keep theirs)",
    )
    args = parser.parse_args()
    if args.voters < 2 or args.workers < 1 or args.attempts < 2 or args.lanes < 1:
        parser.error("--voters and --attempts must be 2 or more, --workers and --lanes 1 or more")
    support.exit_after(args.postgres, DB_NAME, lambda url: run(url, args))


if __name__ == "__main__":
    main()
