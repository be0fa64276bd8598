"""Every drill in turn against one PostgreSQL server (`make drills`); exits 1 if any fails.

    .venv/bin/python drills/run.py --postgres URL [NAME ...]

Each drill is a script beside this one, run as its own process with `--postgres URL` and the
arguments listed in DRILLS (its defaults otherwise). Name some drills to run only those.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# name (drills/<name>.py) -> extra arguments. Issue 9's drill of workers killed with -9
# goes here when it is written.
DRILLS: dict[str, list[str]] = {
    "same_credential": ["--voters", "1000", "--workers", "4", "--attempts", "20"],
    "factor_guessing": ["--guesses", "10000", "--workers", "4", "--links", "20"],
    "postgres_restart": ["--voters", "3000", "--workers", "2", "--down", "5"],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default=DEFAULT_URL, help="server for scratch databases")
    parser.add_argument("names", nargs="*", help=f"drills to run, of {', '.join(DRILLS)} (all)")
    args = parser.parse_args()
    names = args.names or list(DRILLS)
    if unknown := [name for name in names if name not in DRILLS]:
        parser.error(f"no such drill: {', '.join(unknown)}")
    results: list[tuple[str, int, float]] = []
    for name in names:
        print(f"\n=== drill {name} ===", flush=True)
        start = time.perf_counter()
        command = [sys.executable, str(HERE / f"{name}.py"), "--postgres", args.postgres]
        status = subprocess.run([*command, *DRILLS[name]], check=False).returncode  # noqa: S603
        results.append((name, status, time.perf_counter() - start))
    print("\n=== drills ===")
    for name, status, seconds in results:
        print(f"  {name:<24} {'PASS' if status == 0 else f'FAIL (exit {status})'}  {seconds:.0f} s")
    sys.exit(0 if all(status == 0 for _, status, _ in results) else 1)


if __name__ == "__main__":
    main()
