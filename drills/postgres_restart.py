"""Drill: PostgreSQL stopped and started again while members cast; the app is never restarted.

    .venv/bin/python drills/postgres_restart.py [--voters 3000] [--workers 2] [--down 5]
        [--concurrency 8]

Issue 9's drill 2. Never touches the shared server: it makes a private PostgreSQL cluster
with initdb in a temporary folder (as the postgres user when run as root), on a free port,
and removes it at the end. There it makes the scratch database and an open vote
(bench/cast_load.py's `set_up`), starts `ratify serve --workers W`, signs every voter in,
then casts each voter's ballot with `--concurrency` clients. A second or so into the casts it
stops the cluster (`pg_ctl stop -m fast`), keeps it down `--down` seconds, and starts it
again. A voter whose cast is answered 503 tries again after a moment, as the page asks.

Passes when, while the database was down, the app answered 503 with its page saying the
database cannot be reached (and Retry-After), never a 500 and never a hang; after the
restart casts succeeded again without the app being restarted; and in the end every voter
has exactly one ballot: ballots = receipts = voters marked voted = N, each voter got one
receipt page or, if their cast was committed as the database went away and its answer lost,
an "already voted" page on trying again (counted and shown). Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import drill_support as support
from drill_support import load

DB_NAME = "ratify_drill_postgres_restart"
UNAVAILABLE = re.compile(rb"cannot reach its database")
ALREADY_VOTED = re.compile(rb"You have already voted")
RETRY_SECONDS = 0.5
GIVE_UP_SECONDS = 120


def _bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install PostgreSQL's server package")
    return found


class Cluster:
    """A private PostgreSQL cluster in a temporary folder, trust auth on 127.0.0.1:port."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.data = folder / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_postgres, *command], check=True, capture_output=True)  # noqa: S603

    def init(self) -> None:
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
        self._run(
            _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="ratify-drill-pg-"))
    cluster = Cluster(folder, load.free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already down
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Outage:
    """When the database went down and came back (perf_counter), and what was answered."""

    def __init__(self) -> None:
        self.down_at = self.up_at = 0.0
        self.statuses: Counter[str] = Counter()  # "503 page" / "503 other" / "500" / ...
        self.after_restart_ok = 0
        self.retried_then_already = 0
        self.gave_up = 0


def cast_through(outage: Outage, phase: load.Phase):  # type: ignore[no-untyped-def]
    async def cast(timed: load.Timed, v: load.Voter) -> None:
        if not v.token:
            return
        form = {"csrf_token": v.token, "choice": v.choice, "lang": "en"}
        started, tried = time.perf_counter(), 0
        while True:
            status, got, body = await timed(
                "cast", "POST", "/v/cast", cookies=v.cookies, form=form, address=v.address
            )
            tried += 1
            receipt = load.RECEIPT.search(body) if status == 200 else None
            if receipt is not None:
                v.receipt = receipt.group(1).decode()
                if outage.up_at and time.perf_counter() > outage.up_at:
                    outage.after_restart_ok += 1
                phase.done += 1
                return
            if status == 409 and ALREADY_VOTED.search(body) and tried > 1:
                outage.retried_then_already += 1  # cast as the database went; answer lost
                phase.done += 1
                return
            page = status == 503 and UNAVAILABLE.search(body) and "retry-after" in got
            outage.statuses["503 page" if page else f"{status}"] += 1
            if not page and status != 0:  # 0: the connection dropped (the client retries)
                return phase.fail("cast", status, body)
            if time.perf_counter() - started > GIVE_UP_SECONDS:
                outage.gave_up += 1
                return phase.fail("cast", status, body)
            await asyncio.sleep(RETRY_SECONDS)

    return cast


def box_holds_each_voter_once(dsn: str, voters: list[load.Voter], lost: int) -> bool:
    """One ballot and one receipt per voter, every voter marked voted; the receipt codes
    shown are stored, and as many stored codes were never shown as answers were lost."""
    choices, receipts, voted, codes = load.counts(dsn)
    shown = {v.receipt.replace("-", "") for v in voters if v.receipt}
    n = len(voters)
    ok = choices.total() == receipts == voted == n and shown <= codes
    ok = ok and len(codes - shown) == lost
    print(
        f"\ncheck (drill): ballots {choices.total()}, receipts {receipts}, voters marked voted"
        f" {voted}, of {n} voters; receipt codes shown and stored {len(shown & codes)}, stored"
        f" but never shown {len(codes - shown)} (answers lost: {lost})"
        f" -> {'OK' if ok else 'MISMATCH'}"
    )
    return ok


def run(admin_url: str, args: argparse.Namespace, cluster: Cluster) -> int:
    print(
        f"Drill postgres_restart: {args.voters} voters cast with {args.concurrency} clients on"
        f" {args.workers} uvicorn workers; a private PostgreSQL cluster on port {cluster.port}"
        f" stopped for {args.down:.0f} s mid-way\n" + support.machine()
    )
    ready = support.prepare(admin_url, args.voters)
    port = load.free_port()
    command, env = load.ratify_app(admin_url, ready.secret_key, port, workers=args.workers)
    outage = Outage()
    with load.server("ratify", command, env, port, workers=args.workers):
        signin = load.Phase("Signing in (link -> 2nd factor -> ballot)")
        asyncio.run(load.run_clients(port, signin, ready.voters, 32, load.sign_in, args.reuse))
        load.report(signin, "sign-ins", load.JOURNEY_STEPS[:3])

        def restart() -> None:
            time.sleep(args.after)
            outage.down_at = time.perf_counter()
            cluster.stop()
            time.sleep(args.down)
            cluster.start()
            outage.up_at = time.perf_counter()

        casting = load.Phase("Casting through the outage")
        restarter = threading.Thread(target=restart)
        restarter.start()
        asyncio.run(
            load.run_clients(
                port,
                casting,
                ready.voters,
                args.concurrency,
                cast_through(outage, casting),
                args.reuse,
            )
        )
        restarter.join()
        load.report(casting, "voters", [("cast", "POST /v/cast (each attempt)")])
        after_down = outage.up_at - outage.down_at
        print(
            f"  database down {after_down:.1f} s (stop to started again); answers while down or"
            f" coming back: {dict(outage.statuses)}; receipts after the restart"
            f" {outage.after_restart_ok}; 'already voted' on a retry (cast as it went away,"
            f" answer lost) {outage.retried_then_already}"
        )
        ok = box_holds_each_voter_once(ready.dsn, ready.voters, outage.retried_then_already)
    errors_500 = sum(n for s, n in casting.statuses.items() if s >= 500 and s != 503)
    failed = dict(signin.failures) | dict(casting.failures)
    return support.verdict(
        f"postgres_restart: {casting.done} of {args.voters} voters cast, {casting.requests}"
        f" requests in {casting.seconds:.1f} s",
        [
            (f"{args.voters - signin.done} voters could not sign in", signin.done != args.voters),
            ("no 503 page while the database was down", outage.statuses["503 page"] == 0),
            ("no receipt after the restart", outage.after_restart_ok == 0),
            (f"{errors_500} 5xx answers other than 503", errors_500 > 0),
            (f"{outage.gave_up} voters gave up", outage.gave_up > 0),
            (f"{casting.done} of {args.voters} voters cast", casting.done != args.voters),
            (f"failures {failed}", bool(failed)),
            ("the database check above", not ok),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", default=None, help="ignored: this drill makes its own private cluster"
    )
    parser.add_argument("--voters", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the app")
    parser.add_argument("--concurrency", type=int, default=8, help="clients casting")
    parser.add_argument("--after", type=float, default=1.0, help="seconds of casting first")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the database is down")
    parser.add_argument("--requests-per-connection", dest="reuse", type=int, default=25)
    args = parser.parse_args()
    if args.voters < 10 or args.down <= 0:
        parser.error("--voters must be 10 or more and --down over 0")
    with private_cluster() as cluster:
        support.exit_after(cluster.url, DB_NAME, lambda url: run(url, args, cluster))


if __name__ == "__main__":
    main()
