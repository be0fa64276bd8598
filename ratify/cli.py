"""``ratify``: serve the app, run the worker, migrate, and administer from a shell.

Every command reads the same ``RATIFY_*`` settings as the app.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ratify.db import unit_of_work
from ratify.errors import ConfigurationError, RatifyError
from ratify.settings import Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _database(settings: Settings) -> Iterator[Any]:
    """A session factory for one command; its connections are closed when the command ends."""
    from ratify.db import create_db_engine, make_sessionmaker

    engine = create_db_engine(settings.database_url, pool_size=2)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextmanager
def _transaction(settings: Settings) -> Iterator[Any]:
    with _database(settings) as sessions, unit_of_work(sessions) as db:
        yield db


def _org(db: Any, slug: str) -> Any:
    """The organization a command names, or a message (not a traceback)."""
    from ratify.errors import NotFound
    from ratify.orgs.services import get_by_slug

    try:
        return get_by_slug(db, slug)
    except NotFound:
        raise click.ClickException(f"no organization with the slug {slug!r}") from None


def _union(db: Any, slug: str) -> Any:
    """A union the command names: bargaining units, rosters and dues are for unions only."""
    from ratify.orgs.models import OrgKind

    org = _org(db, slug)
    if org.kind != OrgKind.UNION:
        raise click.ClickException(f"{slug} is a community organization: rosters are for unions")
    return org


def _echo_row_errors(errors: list[Any], shown: int = 20) -> None:
    for error in errors[:shown]:
        click.echo(f"  row {error.row}, column {error.column!r}: {error.message}")
    if len(errors) > shown:
        click.echo(f"  ... and {len(errors) - shown} more")


def _link(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/set-password/{token}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ratify")
def main() -> None:
    """Ratify: secret-ballot votes for unions and community organizations.

    Settings come from RATIFY_* environment variables (see README). With none set, Ratify
    uses an SQLite database in ./var and a development secret key.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, help="App processes (stateless).")
@click.option(
    "--with-worker",
    is_flag=True,
    help="Also run one `ratify worker` beside the server (what `make run` does).",
)
@click.option(
    "--trusted-proxies",
    metavar="ADDRESSES",
    help="Comma-separated proxy addresses or networks whose X-Forwarded-For and "
    "X-Forwarded-Proto are believed (overrides RATIFY_TRUSTED_PROXIES).",
)
def serve(
    host: str, port: int, workers: int, with_worker: bool, trusted_proxies: str | None
) -> None:
    """Serve the web app with uvicorn.

    Behind a reverse proxy, name the proxy with --trusted-proxies (or RATIFY_TRUSTED_PROXIES):
    only then are its X-Forwarded-For and X-Forwarded-Proto headers believed, so throttling
    sees the real client and cookies know the request came over https.
    """
    from ratify import serving

    if trusted_proxies is not None:
        # Read by every app process uvicorn starts, as all settings are.
        os.environ["RATIFY_TRUSTED_PROXIES"] = trusted_proxies
    settings = _settings()
    from ratify.logs import configure_logging

    configure_logging(settings)
    worker: subprocess.Popen[bytes] | None = None
    catcher: Any = None
    if with_worker:
        environment = dict(os.environ)
        if not settings.smtp_host and not settings.production:
            # Development: mail goes to a local catcher, listed at /dev/mail (notices.devmail).
            from ratify.notices import devmail

            catcher, smtp = devmail.start_catcher(settings)
            environment.update(smtp)
            click.echo(f"Mail is caught, not sent: read it at http://{host}:{port}/dev/mail")
        worker = subprocess.Popen(
            [sys.executable, "-m", "ratify", "worker", "--exit-with-parent"], env=environment
        )
    try:
        serving.run(
            "ratify.cli:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,  # the app applies RATIFY_TRUSTED_PROXIES itself
            access_log=False,  # ours logs route templates, never raw paths
            log_config=None,
            server_header=False,
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=10)
        if catcher is not None:
            catcher.stop()


def app_factory() -> Any:
    from ratify.app import create_app
    from ratify.logs import configure_logging

    settings = _settings()
    configure_logging(settings)
    app = create_app(settings)
    # What is loaded by now (modules, templates, routes, compiled statements) lives as long
    # as the process: out of the collector's sight, so that its full passes, which a busy
    # vote triggers again and again, need not walk it each time.
    gc.collect()
    gc.freeze()
    return app


@main.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--exit-with-parent", is_flag=True, hidden=True)
def worker(once: bool, exit_with_parent: bool) -> None:
    """Run queued jobs and scheduled ticks. Start as many as you like, on any host."""
    from ratify.jobs import registry
    from ratify.jobs.worker import Worker, new_worker_id
    from ratify.logs import configure_logging

    settings = _settings()
    configure_logging(settings)
    with _database(settings) as sessions:
        worker_id = new_worker_id()
        runner = Worker(
            sessions,
            handlers=registry.handlers(settings),
            ticks=registry.ticks(settings),
            pollers=registry.pollers(settings, sessions, worker_id),
            worker_id=worker_id,
        )
        if once:
            runner.run_due_ticks()
            click.echo(f"ran {runner.drain()} job(s)")
            runner.close()
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if exit_with_parent:
            # Started by `serve --with-worker`: stop when the server is gone, however it ended.
            _stop_when_orphaned(stop, settings.worker_poll_seconds)
        runner.run_forever(stop, settings.worker_poll_seconds)


def _stop_when_orphaned(stop: threading.Event, interval: float) -> None:
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(interval):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


@main.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def migrate(revision: str) -> None:
    """Bring the database schema up to date (safe to run every start)."""
    from ratify.migrations import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a backup of the whole database to PATH, a new file (safe while a vote is open).

    PostgreSQL: pg_dump's custom format; SQLite: a copy by SQLite's online backup API. The
    secret key is not in it: keep RATIFY_SECRET_KEY too, or no personal link works again.
    """
    from ratify import backup as backups

    settings = _settings()
    try:
        size = backups.backup(settings.database_url, path)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup written to {path} ({size:,} bytes)")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Restore the backup at PATH into RATIFY_DATABASE_URL's database, which must be empty.

    All or nothing. Then it prints what the database holds and a digest of all of it, and
    says to run ``ratify migrate`` when the backup comes from an older version.
    """
    from ratify import backup as backups
    from ratify.migrations import head_revision

    settings = _settings()
    try:
        restored = backups.restore(settings.database_url, path)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    counts = ", ".join(f"{name} {count:,}" for name, count in restored.counts.items())
    click.echo(f"restored from {path}: {counts}")
    click.echo(f"digest of every row: {restored.digest}")
    if restored.revision != head_revision():
        click.echo(f"the database is at migration {restored.revision}: run `ratify migrate`")


@main.command("create-org")
@click.option("--slug", required=True, help="Short name used in addresses: /o/<slug>/.")
@click.option("--name", required=True, help="Full name of the organization.")
@click.option(
    "--kind",
    type=click.Choice(["union", "community"]),
    required=True,
    help="A union (bargaining units, dues) or a community organization.",
)
@click.option("--language", default="en", show_default=True, help="Default language.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
def create_org(slug: str, name: str, kind: str, language: str, timezone: str) -> None:
    """Create an organization."""
    from ratify.orgs.models import OrgKind
    from ratify.orgs.services import create_organization

    settings = _settings()
    try:
        with _transaction(settings) as db:
            org = create_organization(
                db,
                slug=slug,
                name=name,
                kind=OrgKind(kind),
                default_language=language,
                timezone=timezone,
            )
            click.echo(f"created {org.kind.value} organization {org.name!r} at /o/{org.slug}/")
    except RatifyError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("create-admin")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--email", required=True, help="The administrator's email (their login).")
@click.option("--name", required=True, help="The administrator's name.")
def create_admin(slug: str, email: str, name: str) -> None:
    """Make someone an administrator of an organization.

    Prints a one-time link where they choose their password (if they have none yet).
    """
    from ratify.accounts.services import add_staff
    from ratify.authz import Role

    settings = _settings()
    try:
        with _transaction(settings) as db:
            org = _org(db, slug)
            added = add_staff(
                db,
                org,
                actor=None,
                email=email,
                name=name,
                role=Role.ADMIN,
                token_max_age=settings.password_token_max_age,
            )
            token = added.set_password_token
    except RatifyError as exc:
        raise click.ClickException(_explain(exc)) from None
    click.echo(f"{email} is now an administrator of {slug}.")
    if token:
        click.echo(
            f"One-time link to set the password (keep it private):\n{_link(settings, token)}"
        )


@main.command("reset-password")
@click.option("--email", required=True, help="The staff user's email.")
def reset_password(email: str) -> None:
    """Print a one-time link where a staff user sets a new password."""
    from ratify.accounts import services as accounts

    settings = _settings()
    with _transaction(settings) as db:
        user = accounts.get_user_by_email(db, email)
        if user is None:
            raise click.ClickException(f"no staff user with the email {email}")
        token = accounts.issue_reset_link(db, user, settings.password_token_max_age)
    click.echo(f"One-time link for {email} (valid {settings.password_token_max_age // 3600} h):")
    click.echo(_link(settings, token))


@main.command()
def demo() -> None:
    """Load demo data (first run only) and print the demo logins.

    One union with two bargaining units, one community organization, and one staff login per
    role. Refused in production.
    """
    from ratify.demo import load_demo

    settings = _settings()
    if settings.production:
        raise click.ClickException("demo data is for development only (RATIFY_ENV=production)")

    with _transaction(settings) as db:
        created, logins = load_demo(db, settings)
    click.echo("Loaded demo data." if created else "Demo data already loaded.")
    click.echo(f"Open {settings.base_url}/login and sign in as one of:")
    for login in logins:
        click.echo(
            f"  {login.role:<10} {login.email:<28} password: {login.password}   ({login.where})"
        )


def _explain(exc: RatifyError) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(f"{k}: {v}" for k, v in errors.items())
    return str(exc)


@main.command("create-unit")
@click.option("--org", "slug", required=True, help="Slug of a union organization.")
@click.option("--code", required=True, help="Short code, as on rosters (RN, TECH-2).")
@click.option("--name", required=True, help="The unit's name.")
@click.option("--employer", default="", help="The employer.")
@click.option("--description", default="", help="Who is in the unit, in plain words.")
def create_unit(slug: str, code: str, name: str, employer: str, description: str) -> None:
    """Create a bargaining unit in a union organization."""
    from ratify.rosters.services import UnitFields, UnitInvalid
    from ratify.rosters.services import create_unit as create

    settings = _settings()
    fields = UnitFields(
        code=code.strip().upper(),
        name=name.strip(),
        employer=employer.strip(),
        description=description.strip(),
    )
    try:
        with _transaction(settings) as db:
            org = _union(db, slug)
            unit = create(db, org, actor=None, fields=fields)
            click.echo(f"created unit {unit.code} ({unit.name}) in {org.slug}")
    except UnitInvalid as exc:
        raise click.ClickException(_explain(exc)) from None


@main.command("import-roster")
@click.option("--org", "slug", required=True, help="Slug of a union organization.")
@click.option(
    "--unit",
    "unit_code",
    help="The one unit this file lists (members of it not in the file are leaving).",
)
@click.option(
    "--units-in-column",
    is_flag=True,
    help="Each row names its unit; leaving is computed for those units.",
)
@click.option(
    "--update-only", is_flag=True, help="Add and change members; never mark anyone as leaving."
)
@click.option(
    "--map",
    "mapping_spec",
    help="Columns, e.g. 'member_number=Emp ID,last_name=Surname' (else guessed from headers).",
)
@click.option(
    "--effective",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Date the changes take effect (default: today).",
)
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Apply the file (all or nothing). Without it: preview only.",
)
@click.option(
    "--confirm-leaving", is_flag=True, help="Apply even when more than 20% of a unit would leave."
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_roster(
    slug: str,
    unit_code: str | None,
    units_in_column: bool,
    update_only: bool,
    mapping_spec: str | None,
    effective: Any,
    do_apply: bool,
    confirm_leaving: bool,
    file: str,
) -> None:
    """Preview (and with --apply, apply) a roster CSV.

    Prints the counts of new, changed, leaving and unchanged members and rows in error, then the
    first errors with their row and column. With --apply, any error means nothing is written and
    the command exits non-zero.
    """
    from datetime import datetime
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from ratify.rosters import imports
    from ratify.rosters.models import ImportScope
    from ratify.rosters.services import list_units

    if sum([bool(unit_code), units_in_column, update_only]) != 1:
        raise click.UsageError(
            "choose exactly one of --unit CODE, --units-in-column, --update-only"
        )
    scope = (
        ImportScope.UNIT
        if unit_code
        else ImportScope.UNIT_COLUMN
        if units_in_column
        else ImportScope.UPDATE_ONLY
    )
    settings = _settings()
    path = Path(file)
    try:
        roster = imports.read_roster(path.name, path.read_bytes())
        mapping = (
            imports.parse_mapping(mapping_spec)
            if mapping_spec
            else imports.guess_mapping(roster.headers)
        )
        with _transaction(settings) as db:
            org = _union(db, slug)
            unit = None
            if unit_code:
                unit = next((u for u in list_units(db, org) if u.code == unit_code.upper()), None)
                if unit is None:
                    raise click.ClickException(f"{slug} has no unit with the code {unit_code!r}")
            result = imports.preview(
                db,
                org,
                roster,
                mapping=mapping,
                scope=scope,
                unit=unit,
                effective=effective.date()
                if effective
                else datetime.now(ZoneInfo(org.timezone)).date(),
                phone_region=settings.phone_region,
                processes=settings.import_check_processes,
            )
            click.echo("columns: " + ", ".join(f"{k}={v}" for k, v in sorted(mapping.items())))
            counts = result.counts()
            click.echo(
                "rows {rows}: new {new}, changed {changed}, leaving {leaving}, "
                "unchanged {unchanged}, in error {errors}".format(**counts)
            )
            _echo_row_errors(result.errors)
            if do_apply:
                record = imports.apply(
                    db,
                    org,
                    result,
                    actor_label="cli",
                    phone_region=settings.phone_region,
                    confirm_leaving=confirm_leaving,
                )
                click.echo(f"applied: import {record.id}")
    except RatifyError as exc:
        raise click.ClickException(_explain(exc)) from None


@main.command("import-dues")
@click.option("--org", "slug", required=True, help="Slug of a union organization.")
@click.option(
    "--received",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Date the remittance arrived (default: today).",
)
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Record the payments (all or nothing). Without it: preview only.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_dues(slug: str, received: Any, do_apply: bool, file: str) -> None:
    """Preview (and with --apply, record) a dues remittance (check-off) CSV.

    Columns for the member number, the period (2026-10) and the amount are guessed from the
    headers. With --apply, any row in error means nothing is written and the command exits
    non-zero.
    """
    from datetime import datetime
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from ratify.rosters import dues, imports

    settings = _settings()
    path = Path(file)
    try:
        roster = imports.read_roster(path.name, path.read_bytes())
        mapping = dues.guess_dues_mapping(roster.headers)
        with _transaction(settings) as db:
            org = _union(db, slug)
            on = received.date() if received else datetime.now(ZoneInfo(org.timezone)).date()
            result = dues.preview_dues(db, org, roster, mapping=mapping, received_on=on)
            click.echo("columns: " + ", ".join(f"{k}={v}" for k, v in sorted(mapping.items())))
            click.echo(
                "rows {rows}: payments {payments} for {members} members, in error {errors}".format(
                    **result.counts()
                )
            )
            _echo_row_errors(result.errors)
            if do_apply:
                record = dues.apply_dues(db, org, result, actor_label="cli")
                click.echo(f"applied: import {record.id}")
    except RatifyError as exc:
        raise click.ClickException(_explain(exc)) from None


@main.command("export-record")
@click.option("--org", "slug", required=True, help="Slug of a union organization.")
@click.argument("vote_id")
def export_record(slug: str, vote_id: str) -> None:
    """Write a counted vote's election record (JSON) to standard output.

    The record holds the vote's definition, the voter list in counts, the ballots, the
    receipts, the paper batches, the result, the reconciliation, the certificate and the
    organization's audit log with members pseudonymized (docs/record.md). Anyone can check
    it with `ratify verify`. The export is recorded in the audit log.

        ratify export-record --org SLUG VOTE_ID > record.json
    """
    import uuid

    from ratify.errors import NotFound
    from ratify.votes import record
    from ratify.votes import services as votes

    settings = _settings()
    try:
        wanted = uuid.UUID(vote_id)
    except ValueError:
        raise click.ClickException(f"{vote_id!r} is not a vote id") from None
    try:
        with _transaction(settings) as db:
            org = _union(db, slug)
            try:
                vote = votes.get_vote(db, org, wanted)
            except NotFound:
                raise click.ClickException(f"no vote {vote_id} in {slug}") from None
            votes.advance(db, org, vote)
            record.record_download(db, org, vote, actor=None, actor_label="cli", via="cli")
            exported = record.export(db, org, vote, settings.secret_key)
    except RatifyError as exc:
        raise click.ClickException(_explain(exc)) from None
    click.echo(record.dumps(exported), nl=False)


@main.command("verify")
@click.argument("record_file", metavar="RECORD", type=click.Path(dir_okay=False))
def verify_record(record_file: str) -> None:
    """Check an election record, from the record alone: no database, no settings.

    Counts the ballots and paper batches again with Ratify's rules and compares with the
    stored result; recomputes the ballot box's digest; checks the receipts and the
    reconciliation group by group; checks every link and hash of the audit log and that the
    events the certificate quotes are in it; compares the vote and the voter list's
    fingerprint with what the audit log recorded. Prints what matches and what does not.

    Exit status: 0 when everything matches, 1 when something differs, 2 when the file is not
    an election record this version of Ratify reads.
    """
    from ratify.votes import verify

    try:
        report = verify.verify_file(record_file)
    except verify.Unreadable as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    click.echo(report.text(), nl=False)
    raise SystemExit(report.exit_code)
