"""``ratify worker``: runs queued jobs and scheduled ticks.

Several workers may share one database. On PostgreSQL a job is claimed with
``FOR UPDATE SKIP LOCKED``; on SQLite the write lock taken by every transaction (``BEGIN
IMMEDIATE``) serializes claims. A claim is a lease: a job whose worker died is taken again
once its lease runs out.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.db import insert_ignoring_conflicts, unit_of_work, utcnow
from ratify.jobs.models import Job, JobStatus, ScheduledTick
from ratify.jobs.services import backoff

log = structlog.get_logger("ratify.worker")

Handler = Callable[[Session, Job], None]


@dataclass(frozen=True)
class LongTask:
    """A job that opens its own transactions (a 300,000-row import, say): the worker calls
    ``run(sessions, payload)`` outside any transaction, so the task can record its progress
    where pages see it while it works. Its steps must be safe to run again: a task whose
    worker dies is run again once the lease runs out."""

    run: Callable[[sessionmaker[Session], dict[str, Any]], None]
    # Nothing renews a claim while the task works, so the lease covers the longest run (a
    # 300,000-row apply takes about a minute): other workers must not take it meanwhile.
    lease: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Tick:
    """A periodic task. At most one worker runs a given tick per interval."""

    name: str
    every: timedelta
    run: Callable[[Session], None]


class Poller(Protocol):
    """Work with a queue of its own beside the jobs (the outbox of notices), drained in turn
    with them: ``run_once`` does one batch and says whether there was any."""

    def run_once(self) -> bool: ...

    def close(self) -> None: ...


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        handlers: Mapping[str, Handler | LongTask],
        ticks: Sequence[Tick] = (),
        pollers: Sequence[Poller] = (),
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        self.sessions = sessions
        self.handlers = dict(handlers)
        self.ticks = list(ticks)
        self.pollers = list(pollers)
        self.worker_id = worker_id or new_worker_id()
        self.lease = lease

    def claim(self) -> uuid.UUID | None:
        while True:
            claimed, job_id = self._claim_one()
            if claimed or job_id is None:
                return job_id

    def _claim_one(self) -> tuple[bool, uuid.UUID | None]:
        """(True, id) for a claimed job; (False, id) for an abandoned job that had used up
        its attempts and was marked dead instead; (False, None) when nothing is ready."""
        now = utcnow()
        with unit_of_work(self.sessions) as db:
            stmt = (
                select(Job)
                .where(
                    or_(
                        and_(Job.status == JobStatus.QUEUED, Job.run_after <= now),
                        and_(Job.status == JobStatus.RUNNING, Job.locked_until < now),
                    )
                )
                .order_by(Job.run_after)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            job = db.scalars(stmt).first()
            if job is None:
                return False, None
            if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
                # Its worker died on every attempt (a job that kills its process, say).
                job.status = JobStatus.DEAD
                job.finished_at = now
                job.last_error = "the worker running it stopped before it finished"
                log.warning("job.abandoned", job_id=str(job.id), kind=job.kind)
                return False, job.id
            task = self.handlers.get(job.kind)
            job.status = JobStatus.RUNNING
            job.locked_by = self.worker_id
            job.locked_until = now + (task.lease if isinstance(task, LongTask) else self.lease)
            job.attempts += 1
            return True, job.id

    def run_once(self) -> bool:
        """Claim and run one job. False when nothing was ready."""
        job_id = self.claim()
        if job_id is None:
            return False
        try:
            with unit_of_work(self.sessions) as db:
                job = db.get_one(Job, job_id)
                kind, payload = job.kind, dict(job.payload)
            task = self.handlers.get(kind)
            if isinstance(task, LongTask):
                task.run(self.sessions, payload)
                with unit_of_work(self.sessions) as db:
                    job = db.get_one(Job, job_id, with_for_update=True)
                    if job.locked_by == self.worker_id and job.status == JobStatus.RUNNING:
                        job.status = JobStatus.DONE
                        job.finished_at = utcnow()
                        job.locked_until = None
                log.info("job.done", job_id=str(job_id), kind=kind)
                return True
            # The handler's writes and the job's completion commit together, or not at all.
            with unit_of_work(self.sessions) as db:
                # Row-locked while the handler runs: on PostgreSQL other workers' SKIP LOCKED
                # claims pass it by even after the lease runs out; if this process dies, its
                # connection and the lock go with it, and the lease decides.
                job = db.get_one(Job, job_id, with_for_update=True)
                if job.locked_by != self.worker_id or job.status != JobStatus.RUNNING:
                    return True  # our lease ran out and another worker took it
                handler = self.handlers.get(job.kind)
                if handler is None or isinstance(handler, LongTask):
                    raise _NoHandler(job.kind)
                handler(db, job)
                job.status = JobStatus.DONE
                job.finished_at = utcnow()
                job.locked_until = None
            log.info("job.done", job_id=str(job_id), kind=job.kind)
        except Exception as exc:
            self._failed(job_id, exc)
        return True

    def _failed(self, job_id: uuid.UUID, exc: Exception) -> None:
        error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        with unit_of_work(self.sessions) as db:
            job = db.get_one(Job, job_id, with_for_update=True)
            if job.locked_by != self.worker_id:
                return  # another worker owns it now
            job.last_error = error
            job.locked_until = None
            if isinstance(exc, _NoHandler) or job.attempts >= job.max_attempts:
                job.status = JobStatus.DEAD
                job.finished_at = utcnow()
            else:
                job.status = JobStatus.QUEUED
                job.run_after = utcnow() + backoff(job.attempts)
            log.warning(
                "job.failed",
                job_id=str(job_id),
                kind=job.kind,
                status=job.status.value,
                error=error,
            )

    def run_due_ticks(self) -> list[str]:
        """Run every tick whose time has come and that no other worker claimed first."""
        ran = []
        for tick in self.ticks:
            now = utcnow()
            with unit_of_work(self.sessions) as db:
                insert_ignoring_conflicts(db, ScheduledTick, name=tick.name, next_run_at=now)
                claimed = db.execute(
                    update(ScheduledTick)
                    .where(ScheduledTick.name == tick.name, ScheduledTick.next_run_at <= now)
                    .values(next_run_at=now + tick.every, last_run_at=now)
                    .execution_options(synchronize_session=False)
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    continue
            try:
                with unit_of_work(self.sessions) as db:
                    tick.run(db)
                error = None
            except Exception as exc:
                error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
                log.warning("tick.failed", tick=tick.name, error=error)
            with unit_of_work(self.sessions) as db:
                db.execute(
                    update(ScheduledTick)
                    .where(ScheduledTick.name == tick.name)
                    .values(last_error=error)
                    .execution_options(synchronize_session=False)
                )
            ran.append(tick.name)
        return ran

    def run_pollers(self) -> bool:
        busy = False
        for poller in self.pollers:
            try:
                busy = poller.run_once() or busy
            except Exception:
                log.exception("worker.poller_error", poller=type(poller).__name__)
        return busy

    def drain(self, limit: int | None = None) -> int:
        """Run ready jobs until none is left (or ``limit`` ran), then what the pollers hold.
        For tests and ``--once``."""
        count = 0
        while (limit is None or count < limit) and self.run_once():
            count += 1
        while limit is None and self.run_pollers():
            pass
        return count

    def close(self) -> None:
        for poller in self.pollers:
            poller.close()

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        log.info("worker.started", worker_id=self.worker_id)
        while not stop.is_set():
            try:
                self.run_due_ticks()
                busy = self.run_once()
            except Exception:
                log.exception("worker.loop_error")
                busy = False
            busy = self.run_pollers() or busy
            if not busy:
                stop.wait(poll_seconds)
        self.close()
        log.info("worker.stopped", worker_id=self.worker_id)


class _NoHandler(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(f"no handler for job kind {kind!r}")
