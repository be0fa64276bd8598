"""Enqueueing jobs in the caller's transaction: a rolled-back action leaves no job behind."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.db import utcnow
from ratify.jobs.models import Job, JobStatus


def enqueue(
    db: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    organization_id: uuid.UUID | None = None,
    run_after: datetime | None = None,
    max_attempts: int = 5,
) -> Job:
    job = Job(
        id=uuid.uuid4(),
        kind=kind,
        payload=payload or {},
        organization_id=organization_id,
        status=JobStatus.QUEUED,
        run_after=run_after or utcnow(),
        max_attempts=max_attempts,
    )
    db.add(job)
    db.flush()
    return job


def backoff(attempts: int) -> timedelta:
    """Wait before retry: 10 s, 40 s, 90 s, ... capped at one hour."""
    return timedelta(seconds=min(3600, 10 * attempts * attempts))


def counts_by_status(db: Session) -> dict[JobStatus, int]:
    stmt = select(Job.status, func.count()).group_by(Job.status)
    return {status: n for status, n in db.execute(stmt).all()}
