"""Large roster files, checked and applied by ``ratify worker`` while their page shows how far
it has got. Each task opens its own transactions (``LongTask``), so the progress it records
is seen before it ends, and each can run again safely: a task finds the upload's state moved
on and stops."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts.models import StaffUser
from ratify.db import read_unit_of_work, unit_of_work
from ratify.errors import RatifyError
from ratify.jobs.worker import LongTask
from ratify.orgs.models import Organization
from ratify.rosters import imports
from ratify.rosters.models import RosterUpload, UploadState
from ratify.settings import Settings

log = structlog.get_logger("ratify.rosters")


def roster_tasks(settings: Settings) -> dict[str, LongTask]:
    def check(sessions: sessionmaker[Session], payload: dict[str, Any]) -> None:
        job_id = uuid.UUID(payload["job_id"]) if payload.get("job_id") else None
        check_upload(
            sessions,
            uuid.UUID(payload["upload_id"]),
            settings.phone_region,
            job_id,
            processes=settings.import_check_processes,
        )

    def apply(sessions: sessionmaker[Session], payload: dict[str, Any]) -> None:
        apply_upload(
            sessions,
            uuid.UUID(payload["upload_id"]),
            actor_id=uuid.UUID(payload["actor_id"]) if payload.get("actor_id") else None,
            actor_label=payload.get("actor_label"),
            expected=payload.get("expected"),
            confirm_leaving=bool(payload["confirm_leaving"]),
            phone_region=settings.phone_region,
            processes=settings.import_check_processes,
        )

    return {imports.CHECK_TASK: LongTask(check), imports.APPLY_TASK: LongTask(apply)}


def _moved_on(upload_id: uuid.UUID, state: UploadState) -> Any:
    return update(RosterUpload).where(RosterUpload.id == upload_id, RosterUpload.state == state)


def check_upload(
    sessions: sessionmaker[Session],
    upload_id: uuid.UUID,
    phone_region: str,
    job_id: uuid.UUID | None = None,
    *,
    processes: int = 1,
) -> None:
    """Check every row in a transaction that only reads (on SQLite it holds no write lock, so
    the pages go on meanwhile), recording the rows done in short transactions of their own,
    which the progress page sees at once; then store the preview."""

    def still_ours() -> Any:
        # Only while the upload still waits for this check: if it was mapped again (after this
        # run was given up for dead, say), a newer check owns it.
        stmt = _moved_on(upload_id, UploadState.CHECKING)
        return stmt.where(RosterUpload.job_id == job_id) if job_id else stmt

    def progress(rows: int) -> None:
        with unit_of_work(sessions) as db:
            db.execute(still_ours().values(rows_done=rows))

    try:
        with read_unit_of_work(sessions) as db:
            upload = db.get(RosterUpload, upload_id)
            if upload is None or upload.state != UploadState.CHECKING:
                return  # done already, or the columns were changed since
            if job_id is not None and upload.job_id != job_id:
                return  # a newer check owns it
            org = db.get_one(Organization, upload.organization_id)
            result = imports.preview_upload(
                db, org, upload, phone_region, progress, processes=processes
            )
            summary, rows = imports.summarize(db, org, result), upload.row_count
        with unit_of_work(sessions) as db:
            db.execute(
                still_ours().values(state=UploadState.CHECKED, summary=summary, rows_done=rows)
            )
    except RatifyError as exc:
        _failed(sessions, upload_id, UploadState.CHECKING, exc)


def apply_upload(
    sessions: sessionmaker[Session],
    upload_id: uuid.UUID,
    *,
    actor_id: uuid.UUID | None,
    actor_label: str | None,
    expected: dict[str, int] | None,
    confirm_leaving: bool,
    phone_region: str,
    processes: int = 1,
) -> None:
    try:
        with unit_of_work(sessions) as db:
            upload = db.get(RosterUpload, upload_id)
            if upload is None or upload.state != UploadState.APPLYING:
                return  # applied already (the task ran again after its worker died)
            org = db.get_one(Organization, upload.organization_id)
            imports.apply_upload(
                db,
                org,
                upload,
                actor=db.get_one(StaffUser, actor_id) if actor_id else None,
                phone_region=phone_region,
                confirm_leaving=confirm_leaving,
                actor_label=actor_label,
                expected=expected,
                processes=processes,
            )
    except RatifyError as exc:
        _failed(sessions, upload_id, UploadState.APPLYING, exc)


def _failed(
    sessions: sessionmaker[Session], upload_id: uuid.UUID, state: UploadState, exc: RatifyError
) -> None:
    """A refusal the page can show (rows in error, a file imported before): nothing written."""
    log.info("roster.upload_failed", upload_id=str(upload_id), problem=exc.message)
    with unit_of_work(sessions) as db:
        db.execute(
            _moved_on(upload_id, state).values(
                state=UploadState.FAILED, problem={"message": exc.message, "params": exc.params}
            )
        )
