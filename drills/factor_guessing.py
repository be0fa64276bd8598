"""Drill: 10,000 wrong second-factor answers from one address, and 10,000 from many.

    .venv/bin/python drills/factor_guessing.py --postgres URL [--guesses 10000] [--workers 4]
        [--links 20] [--concurrency 32]

Issue 9's drill 4. Makes a scratch PostgreSQL database (dropped at the end) holding a union
and an open ratification vote whose second factor is the last 4 of the member number, with
bench/cast_load.py's `set_up`, and starts `ratify serve --workers W`. A guesser opens one
personal link once for a CSRF cookie and its token (bound to the cookie, not to the link),
then answers wrong, `--concurrency` requests at a time spread over the workers:

1. one address: `--guesses` wrong answers from 203.0.113.7, cycling through 100 voters'
   links. As documented (README, *Voting*), 30 wrong answers per address in 15 minutes are
   counted; every other answer is refused with 429 before it is checked.
2. many addresses: `--guesses` wrong answers, each from an address of its own, spread evenly
   over `--links` other voters' links. As documented, 5 wrong answers per link in 15 minutes.

Passes when exactly 30 answers of the first storm and exactly 5 per link of the second were
checked and refused as wrong (400, "does not match"), every other answer was 429 ("Too many
wrong answers"), the database holds exactly those wrong answers (in the voters' counts of
failures and in the throttle's hits), the attacked links' own members are held back too
(their right answer gets 429: wait 15 minutes, or ask for a new link), and a member whose link
was not attacked signs in (303) from another address: the storms locked no one else out. No
5xx, no timeout. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import drill_support as support
from drill_support import load

DB_NAME = "ratify_drill_factor_guessing"
ONE_ADDRESS = "203.0.113.7"  # documentation range (RFC 5737)
VOTERS = 100  # the first storm's links
PER_ADDRESS, PER_LINK = 30, 5  # casting.FACTOR_TRIES_PER_ADDRESS, ..._PER_CREDENTIAL
WRONG = re.compile(rb"That answer does not match our records")
THROTTLED = re.compile(rb"Too many wrong answers")


@dataclass(frozen=True)
class Guess:
    link: str
    address: str
    answer: str


def wrong_answer(right: str) -> str:
    return f"{(int(right) + 1) % 10_000:04d}"


def storm(
    port: int,
    name: str,
    guesses: Sequence[Guess],
    cookies: dict[str, str],
    token: str,
    args: argparse.Namespace,
) -> tuple[load.Phase, Counter[str], Counter[str]]:
    """Every guess posted; (the phase, wrong answers per link, 429s per link)."""
    phase = load.Phase(name)
    wrong: Counter[str] = Counter()
    throttled: Counter[str] = Counter()

    async def guess(timed: load.Timed, g: Guess) -> None:
        form = {"csrf_token": token, "answer": g.answer, "lang": "en"}
        status, _, body = await timed(
            "guess", "POST", g.link, cookies=cookies, form=form, address=g.address
        )
        if status == 400 and WRONG.search(body):
            wrong[g.link] += 1
        elif status == 429 and THROTTLED.search(body):
            throttled[g.link] += 1
        else:
            return phase.fail("guess", status, body)
        phase.done += 1

    asyncio.run(load.run_clients(port, phase, guesses, args.concurrency, guess, args.reuse))  # type: ignore[arg-type]
    load.report(phase, "answers", [("guess", "POST /v/<credential> (a wrong answer)")])
    return phase, wrong, throttled


def sign_in(port: int, v: load.Voter, address: str) -> int:
    """The status of a member's right answer, from ``address``."""
    phase = load.Phase("one member")
    result: list[int] = []

    async def go(timed: load.Timed, voter: load.Voter) -> None:
        status, got, body = await timed("link", "GET", voter.link, address=address)
        token = load.CSRF.search(body) if status == 200 else None
        if token is None:
            result.append(status)
            return
        cookies = {k: got[k] for k in got if k.startswith("ratify_")}
        form = {"csrf_token": token.group(1).decode(), "answer": voter.answer, "lang": "en"}
        status, _, _ = await timed(
            "sign in", "POST", voter.link, cookies=cookies, form=form, address=address
        )
        result.append(status)

    asyncio.run(load.run_clients(port, phase, [v], 1, go, 1))
    return result[0] if result else 0


def stored(dsn: str) -> tuple[int, int]:
    """(the voters' wrong answers counted, the throttle's hits) in the database."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        failures = conn.execute("SELECT coalesce(sum(factor_failures), 0) FROM voters").fetchone()
        hits = conn.execute("SELECT count(*) FROM throttle_hits").fetchone()
    assert failures is not None and hits is not None
    return int(failures[0]), int(hits[0])


def run(url: str, args: argparse.Namespace) -> int:
    print(
        f"Drill factor_guessing: {args.guesses:,} wrong answers from one address, then"
        f" {args.guesses:,} from as many addresses at {args.links} links; {args.workers} uvicorn"
        f" workers, {args.concurrency} at a time, PostgreSQL {support.shown(url)}\n"
        + support.machine()
    )
    ready = support.prepare(url, VOTERS + args.links + 1)
    dsn, secret_key, voters = ready.dsn, ready.secret_key, ready.voters
    first, targets, bystander = voters[:VOTERS], voters[VOTERS : VOTERS + args.links], voters[-1]
    port = load.free_port()
    command, env = load.ratify_app(url, secret_key, port, workers=args.workers)
    with load.server("ratify", command, env, port, workers=args.workers):
        # The guesser's CSRF cookie and token, from one link opened once.
        opened = load.Phase("open a link")
        held: dict[str, str] = {}

        async def open_link(timed: load.Timed, v: load.Voter) -> None:
            status, got, body = await timed("link", "GET", v.link, address=ONE_ADDRESS)
            token = load.CSRF.search(body) if status == 200 else None
            if token is not None:
                held.update({k: got[k] for k in got if k.startswith("ratify_")})
                held["token"] = token.group(1).decode()

        asyncio.run(load.run_clients(port, opened, [first[0]], 1, open_link, 1))
        token = held.pop("token", "")
        if not token:
            print("factor_guessing: the guesser could not open a link -> FAIL")
            return 1
        one = [
            Guess(v.link, ONE_ADDRESS, wrong_answer(v.answer))
            for v in (first[i % len(first)] for i in range(args.guesses))
        ]
        one_phase, one_wrong, one_429 = storm(port, "1. one address", one, held, token, args)
        after_one = stored(dsn)
        many = [
            Guess(v.link, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", wrong_answer(v.answer))
            for i, v in ((i, targets[i % len(targets)]) for i in range(args.guesses))
        ]
        many_phase, many_wrong, many_429 = storm(port, "2. many addresses", many, held, token, args)
        after_many = stored(dsn)
        attacked = sign_in(port, targets[0], "198.51.100.20")
        untouched = sign_in(port, bystander, "198.51.100.21")

    sent_one, sent_many = sum(one_wrong.values()), sum(many_wrong.values())
    per_link = Counter(many_wrong.values())
    print(
        f"\n  1. one address: {sent_one} wrong answers counted, {sum(one_429.values()):,}"
        f" refused with 429; in the database {after_one[0]} failures, {after_one[1]} hits"
        f"\n  2. many addresses: {sent_many} wrong answers counted (per link, count: links"
        f" {dict(sorted(per_link.items()))}), {sum(many_429.values()):,} refused with 429; in"
        f" the database then {after_many[0]} failures, {after_many[1]} hits"
        f"\n  an attacked link's member, right answer: {attacked}; a member whose link was not"
        f" attacked: {untouched}"
    )
    expected_many = PER_LINK * args.links
    errors_5xx = one_phase.server_errors + many_phase.server_errors
    failed = dict(one_phase.failures) | dict(many_phase.failures)
    checks = [
        (
            f"{sent_one} wrong answers counted from one address, not {PER_ADDRESS}",
            sent_one != PER_ADDRESS,
        ),
        (
            f"{one_phase.done} of {args.guesses} first-storm answers",
            one_phase.done != args.guesses,
        ),
        (
            f"database after storm 1 {after_one}, not ({PER_ADDRESS}, {2 * PER_ADDRESS})",
            after_one != (PER_ADDRESS, 2 * PER_ADDRESS),
        ),
        (
            f"per link {dict(per_link)}, not {PER_LINK} each",
            set(many_wrong.values()) != {PER_LINK} or len(many_wrong) != args.links,
        ),
        (
            f"{many_phase.done} of {args.guesses} second-storm answers",
            many_phase.done != args.guesses,
        ),
        (
            f"database after storm 2 {after_many}",
            after_many != (PER_ADDRESS + expected_many, 2 * PER_ADDRESS + 2 * expected_many),
        ),
        (f"the attacked link's member got {attacked}, not 429", attacked != 429),
        (f"the other member got {untouched}, not 303", untouched != 303),
        (f"{errors_5xx} 5xx answers", errors_5xx > 0),
        (f"failures {failed}", bool(failed)),
    ]
    total = one_phase.seconds + many_phase.seconds
    return support.verdict(
        f"factor_guessing: {2 * args.guesses:,} wrong answers in {total:.1f} s"
        f" ({2 * args.guesses / max(total, 1e-9):,.0f}/s)",
        checks,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", default=load.DEFAULT_URL, help="PostgreSQL server for a scratch database"
    )
    parser.add_argument("--guesses", type=int, default=10_000, help="wrong answers per storm")
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers of the app")
    parser.add_argument("--links", type=int, default=20, help="links the second storm aims at")
    parser.add_argument("--concurrency", type=int, default=32, help="answers in flight")
    parser.add_argument(
        "--requests-per-connection",
        dest="reuse",
        type=int,
        default=25,
        help="keep-alive requests on one connection before it is made again",
    )
    args = parser.parse_args()
    if args.guesses < PER_ADDRESS + 1 or args.links < 1 or args.guesses < PER_LINK * args.links + 1:
        parser.error("--guesses must be over 30 and over 5 per link; --links 1 or more")
    support.exit_after(args.postgres, DB_NAME, lambda url: run(url, args))


if __name__ == "__main__":
    main()
