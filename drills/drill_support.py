"""What every drill does around its own storm: a scratch database with a union and an open
vote (bench/cast_load.py's ``set_up``), the voters' links, the machine's load, and the exit."""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import cast_load as load


@dataclass(frozen=True)
class Prepared:
    dsn: str  # psycopg's, for the drill's own checks
    secret_key: str
    vote_id: uuid.UUID
    voters: list[load.Voter]


def machine() -> str:
    avg = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores, shared (load average {avg[0]:.1f} {avg[1]:.1f}"
        f" {avg[2]:.1f} at start)"
    )


def shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def prepare(url: str, voters: int) -> Prepared:
    """The scratch database migrated, ``voters`` members frozen as an open vote's voters."""
    from ratify.migrations import upgrade

    upgrade(url)
    secret_key = secrets.token_urlsafe(48)
    vote_id, rows = load.set_up(url, voters, secret_key)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return Prepared(dsn, secret_key, vote_id, load.make_voters(secret_key, vote_id, rows))


def exit_after(postgres: str, db_name: str, run: Callable[[str], int]) -> None:
    """``run`` on a scratch database ``db_name`` of the server ``postgres`` (dropped at the
    end, however it ends), exiting with its status."""
    status = 1
    with load.scratch_database(postgres, db_name) as url:
        try:
            status = run(url)
        except KeyboardInterrupt:
            print("\ninterrupted: server stopped, scratch database dropped")
            status = 130
    sys.exit(status)


def verdict(summary: str, checks: Sequence[tuple[str, bool]]) -> int:
    """Print the drill's last line, ``summary -> PASS`` or what failed; its exit status."""
    wrong = [what for what, bad in checks if bad]
    print(f"\n{summary} -> " + ("PASS" if not wrong else "FAIL: " + "; ".join(wrong)))
    return 0 if not wrong else 1
