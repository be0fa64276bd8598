"""The `ratify` command, run as a person would, against a real database."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts import services as accounts
from ratify.accounts.models import StaffUser
from ratify.cli import main
from ratify.orgs.models import Organization

LINK = re.compile(r"https?://\S+/set-password/([A-Za-z0-9_\-]+)")


@pytest.fixture
def run(
    live_sessions: sessionmaker[Session],
    database_urls: dict[str, str],
    tmp_path: Path,
    secret_ledger,
    base_settings,
    log_handler,
    monkeypatch,
):  # type: ignore[no-untyped-def]
    import ratify.logs

    original = ratify.logs.configure_logging
    # Commands that set up logging keep writing where the end-of-session secret check reads.
    monkeypatch.setattr(
        ratify.logs,
        "configure_logging",
        lambda settings, handler=None: original(
            replace(settings, log_format="json"), handler=log_handler
        ),
    )
    env = {
        "RATIFY_DATABASE_URL": database_urls["live"],
        "RATIFY_VAR_DIR": str(tmp_path),
        "RATIFY_SECRET_KEY": base_settings.secret_key,
        "RATIFY_ARGON2_TIME_COST": "1",
        "RATIFY_ARGON2_MEMORY_KIB": "8",
        "RATIFY_ARGON2_PARALLELISM": "1",
    }

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        for token in LINK.findall(result.output):
            secret_ledger.add(token)
        return result

    return invoke


def test_every_command_has_helpful_help() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    for command in (
        "serve",
        "worker",
        "migrate",
        "create-org",
        "create-admin",
        "reset-password",
        "demo",
        "backup",
        "restore",
    ):
        assert command in top.output
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
        assert len(result.output.splitlines()) > 3, command
    serve_help = runner.invoke(main, ["serve", "--help"]).output
    assert "--workers" in serve_help and "--trusted-proxies" in serve_help
    assert "--kind [union|community]" in runner.invoke(main, ["create-org", "--help"]).output


def test_create_org_then_admin_who_sets_a_password(run, live_sessions) -> None:  # type: ignore[no-untyped-def]
    result = run("create-org", "--slug", "local-7", "--name", "Local 7", "--kind", "union")
    assert result.exit_code == 0, result.output
    assert "created union organization 'Local 7' at /o/local-7/" in result.output
    result = run(
        "create-admin", "--org", "local-7", "--email", "Chair@Local7.org", "--name", "Chair"
    )
    assert result.exit_code == 0, result.output
    token = LINK.search(result.output)
    assert token
    with live_sessions() as db:
        user = accounts.get_user_by_email(db, "chair@local7.org")
        org = db.scalars(select(Organization).where(Organization.slug == "local-7")).one()
        assert user is not None and accounts.role_in(db, user, org) is not None
        assert accounts.find_password_token(db, token.group(1)).user_id == user.id


def test_errors_are_messages_not_tracebacks(run) -> None:  # type: ignore[no-untyped-def]
    assert run("create-org", "--slug", "Bad Slug!", "--name", "x", "--kind", "union").exit_code == 1
    run("create-org", "--slug", "dup", "--name", "x", "--kind", "union")
    result = run("create-org", "--slug", "dup", "--name", "x", "--kind", "union")
    assert result.exit_code == 1 and "already exists" in result.output
    result = run("create-admin", "--org", "nowhere", "--email", "a@b.org", "--name", "A")
    assert result.exit_code == 1 and "no organization" in result.output
    result = run("reset-password", "--email", "ghost@example.org")
    assert result.exit_code == 1 and "no staff user" in result.output


def test_reset_password_prints_a_one_time_link(run, live_sessions) -> None:  # type: ignore[no-untyped-def]
    run("create-org", "--slug", "u1", "--name", "U1", "--kind", "community")
    run("create-admin", "--org", "u1", "--email", "a@u1.org", "--name", "A")
    result = run("reset-password", "--email", "a@u1.org")
    assert result.exit_code == 0
    token = LINK.search(result.output)
    assert token
    with live_sessions() as db:
        user = db.scalars(select(StaffUser).where(StaffUser.email == "a@u1.org")).one()
        assert accounts.find_password_token(db, token.group(1)).user_id == user.id


def test_demo_loads_once_and_prints_working_logins(run, live_sessions) -> None:  # type: ignore[no-untyped-def]
    from ratify.rosters.models import BargainingUnit
    from ratify.security import verify_password
    from tests.factories import FAST_HASHER

    first = run("demo")
    assert first.exit_code == 0 and "Loaded demo data." in first.output
    second = run("demo")
    assert "Demo data already loaded." in second.output
    logins = re.findall(r"(\w+)\s+(\S+@\S+)\s+password: (\S+)", second.output)
    assert {role for role, _, _ in logins} == {"admin", "staff", "committee", "observer"}
    with live_sessions() as db:
        kinds = sorted(o.kind.value for o in db.scalars(select(Organization)))
        assert kinds == ["community", "union"]
        assert len(db.scalars(select(BargainingUnit)).all()) == 2
        from ratify.rosters.models import Member

        union = db.scalars(select(Organization).where(Organization.kind == "union")).one()
        assert len(db.scalars(select(Member).where(Member.organization_id == union.id)).all()) == 20
        # The community path, whole: a constituency, a demand, an offer, an open vote on it
        # whose frozen list holds the tenants who met the criteria.
        from ratify.community.models import Constituency, Demand, Offer, OfferStatus
        from ratify.votes.models import Vote, VoteKind, Voter, VoterStatus, VoteStatus

        assert db.scalars(select(Constituency.name)).all() == ["Elm Street tenants"]
        assert len(db.scalars(select(Demand)).all()) == 2
        offer = db.scalars(select(Offer)).one()
        assert offer.status == OfferStatus.VOTING
        decision = db.scalars(select(Vote).where(Vote.offer_id == offer.id)).one()
        assert decision.kind == VoteKind.OFFER_DECISION and decision.status == VoteStatus.OPEN
        eligible = db.scalars(
            select(Voter).where(Voter.vote_id == decision.id, Voter.status == VoterStatus.ELIGIBLE)
        ).all()
        assert len(eligible) == 6
        for _, email, password in logins:
            user = accounts.get_user_by_email(db, email)
            assert user is not None
            assert verify_password(FAST_HASHER, user.password_hash, password)
            assert accounts.organizations_of(db, user)


def test_demo_is_refused_in_production(run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RATIFY_ENV", "production")
    result = CliRunner().invoke(
        main, ["demo"], env={"RATIFY_ENV": "production", "RATIFY_SECRET_KEY": "k" * 40}
    )
    assert result.exit_code == 1 and "development only" in result.output


def test_worker_once_runs_due_jobs(run, live_sessions) -> None:  # type: ignore[no-untyped-def]
    result = run("worker", "--once")
    assert result.exit_code == 0 and "ran 0 job(s)" in result.output


def test_migrate_is_safe_to_repeat(run) -> None:  # type: ignore[no-untyped-def]
    assert run("migrate").exit_code == 0
    assert run("migrate").exit_code == 0


def test_serve_refuses_bad_proxy_addresses_before_starting(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RATIFY_TRUSTED_PROXIES", "")  # restored (unset) after the test
    result = CliRunner().invoke(
        main,
        ["serve", "--trusted-proxies", "10.0.0.0/8,proxy.internal"],
        env={"RATIFY_VAR_DIR": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "'proxy.internal', which is not an IP address or network" in result.output


def test_create_unit(run, live_sessions) -> None:  # type: ignore[no-untyped-def]
    from ratify.rosters.models import BargainingUnit

    run("create-org", "--slug", "nurses", "--name", "Nurses", "--kind", "union")
    result = run("create-unit", "--org", "nurses", "--code", "rn", "--name", "Registered Nurses")
    assert (
        result.exit_code == 0 and "created unit RN (Registered Nurses) in nurses" in result.output
    )
    again = run("create-unit", "--org", "nurses", "--code", "RN", "--name", "Again")
    assert again.exit_code == 1 and "Another unit already uses this code." in again.output
    run("create-org", "--slug", "tenants", "--name", "Tenants", "--kind", "community")
    community = run("create-unit", "--org", "tenants", "--code", "X", "--name", "X")
    assert community.exit_code == 1 and "rosters are for unions" in community.output
    nowhere = run("import-dues", "--org", "nowhere", __file__)
    assert nowhere.exit_code == 1 and "no organization with the slug 'nowhere'" in nowhere.output
    with live_sessions() as db:
        assert [u.code for u in db.scalars(select(BargainingUnit))] == ["RN"]


def test_import_roster_previews_applies_and_refuses_errors(run, live_sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ratify.rosters.models import Member, RosterImport

    run("create-org", "--slug", "local9", "--name", "Local 9", "--kind", "union")
    run("create-unit", "--org", "local9", "--code", "RN", "--name", "Nurses")
    good = tmp_path / "roster.csv"
    good.write_bytes(
        "Member ID;Last Name;First Name;Status\n1;Muñoz;José;member\n2;Lee;Ann;fee payer\n".encode(
            "cp1252"
        )
    )
    preview = run("import-roster", "--org", "local9", "--unit", "RN", str(good))
    assert preview.exit_code == 0, preview.output
    assert "rows 2: new 2, changed 0, leaving 0, unchanged 0, in error 0" in preview.output
    with live_sessions() as db:
        assert db.scalars(select(Member)).all() == []  # a preview writes nothing
    applied = run("import-roster", "--org", "local9", "--unit", "RN", "--apply", str(good))
    assert applied.exit_code == 0 and "applied: import" in applied.output
    bad = tmp_path / "bad.csv"
    bad.write_text("Member ID,Last Name,Status\n3,Ok,member\n4,Bad,emperor\n")
    result = run("import-roster", "--org", "local9", "--update-only", "--apply", str(bad))
    assert result.exit_code == 1
    assert "row 3, column 'Status': Unknown membership status." in result.output
    assert "nothing was imported" in result.output
    with live_sessions() as db:
        assert sorted(m.last_name for m in db.scalars(select(Member))) == ["Lee", "Muñoz"]
        assert len(db.scalars(select(RosterImport)).all()) == 1
    usage = run("import-roster", "--org", "local9", str(good))
    assert usage.exit_code == 2 and "choose exactly one" in usage.output


def test_import_dues(run, live_sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ratify.rosters.models import DuesPayment

    run("create-org", "--slug", "local5", "--name", "Local 5", "--kind", "union")
    run("create-unit", "--org", "local5", "--code", "RN", "--name", "Nurses")
    roster = tmp_path / "roster.csv"
    roster.write_text("Member ID,Last Name\n1,Lee\n")
    run("import-roster", "--org", "local5", "--unit", "RN", "--apply", str(roster))
    checkoff = tmp_path / "checkoff.csv"
    checkoff.write_text("Member ID,Period,Amount\n1,2026-10,$45.00\n2,2026-10,45\n")
    bad = run(
        "import-dues", "--org", "local5", "--received", "2026-11-02", "--apply", str(checkoff)
    )
    assert (
        bad.exit_code == 1 and "row 3, column 'Member ID': No member has this number." in bad.output
    )
    checkoff.write_text("Member ID,Period,Amount\n1,2026-10,$45.00\n")
    good = run(
        "import-dues", "--org", "local5", "--received", "2026-11-02", "--apply", str(checkoff)
    )
    assert good.exit_code == 0 and "payments 1 for 1 members, in error 0" in good.output
    with live_sessions() as db:
        payments = db.scalars(select(DuesPayment)).all()
        assert [(p.period.isoformat(), p.amount_cents) for p in payments] == [("2026-10-01", 4500)]
