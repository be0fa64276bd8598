"""Large roster files: checked and applied by the worker, with a page that shows progress."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.authz import Role
from ratify.errors import Conflict
from ratify.jobs import registry
from ratify.jobs.models import Job, JobStatus
from ratify.jobs.worker import Worker
from ratify.rosters import imports, tasks
from ratify.rosters import services as rosters
from ratify.rosters.models import ImportScope, Member, RosterUpload, UploadState
from ratify.rosters.services import UnitFields
from ratify.settings import Settings
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, form_from, login

ROSTER = (
    b"Emp ID,Surname,Given Name,E-mail\n"
    b"1001,Lovelace,Ada,ada@example.org\n1002,Hopper,Grace,\n1003,Turing,Alan,\n"
)


@pytest.fixture
def settings(base_settings: Settings, database_urls: dict[str, str]) -> Settings:
    """Files of more than two rows go to the worker."""
    return replace(base_settings, database_url=database_urls["rollback"], import_background_rows=2)


def _worker(sessions: sessionmaker[Session], settings: Settings) -> Worker:
    return Worker(sessions, handlers=registry.handlers(settings))


def _upload_and_map(db: Session, client, data: bytes = ROSTER):  # type: ignore[no-untyped-def]
    org = make_org(db)
    unit = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    login(client, make_user(db, org, Role.STAFF).email)
    token = csrf_from(client, f"/o/{org.slug}/imports")
    response = client.post(
        f"/o/{org.slug}/imports",
        data={
            "csrf_token": token,
            "scope": "unit",
            "unit": str(unit.id),
            "effective": "2026-11-01",
        },
        files={"file": ("payroll.csv", data, "text/csv")},
    )
    map_url = response.headers["location"]
    upload_id = re.search(r"/imports/([0-9a-f-]+)/map", map_url).group(1)  # type: ignore[union-attr]
    response = client.post(
        map_url,
        data={
            "csrf_token": csrf_from(client, map_url),
            "map_member_number": "Emp ID",
            "map_last_name": "Surname",
            "map_first_name": "Given Name",
            "map_email": "E-mail",
        },
    )
    assert response.status_code == 303
    return org, f"/o/{org.slug}/imports/{upload_id}"


def _members(db: Session) -> int:
    return db.execute(select(func.count()).select_from(Member)).scalar_one()


def test_a_large_file_is_checked_and_applied_by_the_worker(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:
    org, url = _upload_and_map(db, client)
    page = client.get(url).text
    assert "Checking every row: 0 of 3 done." in page
    assert 'id="progress"' in page and "/static/progress.js" in page  # kept up to date
    assert db.scalars(select(Job.kind)).all() == [imports.CHECK_TASK]

    assert _worker(sessions, settings).drain() == 1
    page = client.get(url).text
    assert "New members: 3" in page and "Lovelace, Ada" in page
    assert "/static/progress.js" not in page
    assert _members(db) == 0  # checked, nothing written

    response = client.post(f"{url}/apply", data=form_from(client, url))
    assert response.status_code == 303 and response.headers["location"].endswith(url)
    assert "Applying the changes to 3 members" in client.get(url).text
    assert _members(db) == 0
    listed = client.get(f"/o/{org.slug}/imports").text
    assert "payroll.csv" in listed and "being applied" in listed

    assert _worker(sessions, settings).drain() == 1
    assert _members(db) == 3
    upload = db.scalars(select(RosterUpload)).one()
    assert upload.state == UploadState.APPLIED and upload.roster_import_id is not None
    page = client.get(url).text
    assert "This file was already imported." in page and "Apply these changes" not in page
    # A second apply (a stale tab, say) is refused, and queues nothing.
    response = client.post(f"{url}/apply", data=form_from(client, url))
    assert response.status_code == 409
    assert db.execute(select(func.count()).select_from(Job)).scalar_one() == 2


def test_a_large_file_with_errors_is_shown_and_never_applied(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:
    _, url = _upload_and_map(db, client, ROSTER + b"1004,Johnson,Katherine,not-an-address\n")
    _worker(sessions, settings).drain()
    page = client.get(url).text
    assert "Rows with errors: 1" in page and "Row 5, column “E-mail”" in page
    assert "Apply these changes" not in page
    errors = client.get(f"{url}/errors.csv").text
    assert errors.splitlines()[1] == "5,E-mail,This is not an email address."
    response = client.post(f"{url}/apply", data=form_from(client, url))
    assert response.status_code == 409 and "1 rows have errors" in response.text
    assert _worker(sessions, settings).drain() == 0 and _members(db) == 0


def test_a_refusal_in_the_worker_is_shown_and_writes_nothing(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The roster changed between the check and the apply (the same members imported through
    another upload): the worker refuses to apply what nobody saw, and the page says why."""
    org, url = _upload_and_map(db, client)
    _worker(sessions, settings).drain()
    client.post(f"{url}/apply", data=form_from(client, url))
    upload = db.scalars(select(RosterUpload)).one()
    unit = rosters.list_units(db, org)[0]
    roster = imports.read_roster("again.csv", ROSTER)
    result = imports.preview(
        db, org, roster, mapping=upload.mapping, scope=ImportScope.UNIT, unit=unit,
        effective=date(2026, 11, 1), phone_region="US",
    )  # fmt: skip
    imports.apply(db, org, result, actor_label="someone else", phone_region="US")
    assert _worker(sessions, settings).drain() == 1
    db.refresh(upload)
    assert upload.state == UploadState.FAILED
    page = client.get(url).text
    assert "The roster changed since the file was checked: check it again." in page
    assert "Check the file again" in page and "Apply these changes" not in page
    assert _members(db) == 3  # the other import's, and no more


def test_a_job_the_worker_gave_up_on_says_so(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:
    _, url = _upload_and_map(db, client)
    db.execute(update(Job).values(status=JobStatus.DEAD))
    page = client.get(url).text
    assert "The worker could not finish this file." in page
    assert "/static/progress.js" not in page  # nothing to wait for


def test_changing_the_columns_while_checking_is_refused(db: Session, client) -> None:
    _, url = _upload_and_map(db, client)
    response = client.post(
        f"{url}/map",
        data={"csrf_token": csrf_from(client, f"{url}/map"), "map_member_number": "Emp ID"},
    )
    assert response.status_code == 409 and "being worked on" in response.text


def test_progress_is_seen_by_other_connections_while_the_check_runs(
    live_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check records rows done in transactions of its own, so the page (another
    connection) sees them before the check ends; on SQLite too, since the check itself only
    reads and holds no write lock."""
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 2)
    seen: list[int] = []
    summarize = imports.summarize

    def peek(db, org, result):  # type: ignore[no-untyped-def]
        with live_sessions() as other:
            seen.append(other.execute(select(RosterUpload.rows_done)).scalar_one())
        return summarize(db, org, result)

    monkeypatch.setattr(imports, "summarize", peek)
    with live_sessions.begin() as db:
        org = make_org(db)
        unit = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "N", "", ""))
        upload = imports.store_upload(
            db, org, actor=None, file_name="big.csv",
            data=ROSTER + b"1004,Johnson,Katherine,\n1005,Vaughan,Dorothy,\n",
            scope=ImportScope.UNIT, unit=unit, effective=date(2026, 11, 1), source="",
        )  # fmt: skip
        imports.set_mapping(db, org, upload, {"member_number": "Emp ID", "last_name": "Surname"})
        imports.check_later(db, org, upload)
        upload_id = upload.id
    tasks.check_upload(live_sessions, upload_id, "US")
    assert seen == [4]  # rows 2 and 4 reported before the check committed
    with live_sessions() as db:
        done = db.get_one(RosterUpload, upload_id)
        assert (done.state, done.rows_done, done.summary["counts"]["new"]) == (
            UploadState.CHECKED,
            5,
            5,
        )


def test_an_apply_racing_a_change_of_columns_is_refused(
    live_sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Tab A has read the checked upload and presses Apply while tab B saves other columns:
    A's apply re-reads the upload under a row lock, finds it being checked again, and refuses;
    nothing nobody previewed is applied. (SQLite runs whole requests one at a time.)"""
    if live_sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("concurrent requests need PostgreSQL")
    from ratify.orgs.models import Organization

    with live_sessions.begin() as db:
        org = make_org(db)
        unit = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "N", "", ""))
        upload = imports.store_upload(
            db, org, actor=None, file_name="big.csv", data=ROSTER, scope=ImportScope.UNIT,
            unit=unit, effective=date(2026, 11, 1), source="",
        )  # fmt: skip
        columns = {"member_number": "Emp ID", "last_name": "Surname", "first_name": "Given Name"}
        imports.set_mapping(db, org, upload, columns)
        imports.check_later(db, org, upload)
        upload_id, org_id = upload.id, org.id
    worker = _worker(live_sessions, replace(settings, import_background_rows=1))
    worker.drain()
    with live_sessions() as tab_a:
        upload_a = tab_a.get_one(RosterUpload, upload_id)
        version = imports.preview_version(upload_a, upload_a.summary["counts"])
        assert upload_a.state == UploadState.CHECKED
        with live_sessions.begin() as tab_b:
            swapped = {**columns, "last_name": "Given Name", "first_name": "Surname"}
            org_b = tab_b.get_one(Organization, org_id)
            upload_b = tab_b.get_one(RosterUpload, upload_id)
            imports.set_mapping(tab_b, org_b, upload_b, swapped)
            imports.check_later(tab_b, org_b, upload_b)
        with pytest.raises(Conflict, match="being worked on"):  # the new check
            imports.apply_later(
                tab_a, tab_a.get_one(Organization, org_id), upload_a, actor=None,
                actor_label="tab A", confirm_leaving=False, version=version,
            )  # fmt: skip
    worker.drain()  # the new check
    with live_sessions() as db:
        assert db.get_one(RosterUpload, upload_id).state == UploadState.CHECKED
        assert db.execute(select(func.count()).select_from(Member)).scalar_one() == 0


def test_a_check_replaced_by_a_newer_one_stores_nothing(
    db: Session, client, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """A check given up for dead (its upload then mapped again) may still finish: its result,
    for the old columns, must not land on the upload the newer check now owns."""
    _, url = _upload_and_map(db, client)
    upload = db.scalars(select(RosterUpload)).one()
    old_job = upload.job_id
    db.execute(update(Job).where(Job.id == old_job).values(status=JobStatus.DEAD))
    response = client.post(
        f"{url}/map",
        data={"csrf_token": csrf_from(client, f"{url}/map"), "map_member_number": "Emp ID",
              "map_last_name": "Given Name"},
    )  # fmt: skip
    assert response.status_code == 303
    db.refresh(upload)
    assert upload.job_id != old_job and upload.state == UploadState.CHECKING
    tasks.check_upload(sessions, upload.id, "US", old_job)  # the stale run finishes
    db.refresh(upload)
    assert upload.state == UploadState.CHECKING and upload.summary is None
    tasks.check_upload(sessions, upload.id, "US", upload.job_id)
    db.refresh(upload)
    assert upload.state == UploadState.CHECKED


def test_uploaded_files_are_deleted_after_thirty_days(db: Session, client) -> None:
    """A roster file holds members' contact details: kept while it is imported, not for ever.
    The import history (what each import did) stays."""
    from datetime import timedelta

    from ratify.db import utcnow
    from ratify.rosters.models import RosterImport

    _upload_and_map(db, client)
    fresh = db.scalars(select(RosterUpload)).one()
    old_id = imports.store_upload(
        db, make_org(db), actor=None, file_name="old.csv", data=ROSTER,
        scope=ImportScope.UPDATE_ONLY, unit=None, effective=date(2026, 1, 1), source="",
    ).id  # fmt: skip
    db.execute(
        update(RosterUpload).where(RosterUpload.id == old_id)
        .values(created_at=utcnow() - timedelta(days=31))
    )  # fmt: skip
    history = db.execute(select(func.count()).select_from(RosterImport)).scalar_one()
    assert imports.purge_old_uploads(db) == 1
    assert db.scalars(select(RosterUpload.id)).all() == [fresh.id]
    assert db.execute(select(func.count()).select_from(RosterImport)).scalar_one() == history
