from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.db import unit_of_work, utcnow
from ratify.jobs.models import Job, JobStatus, ScheduledTick
from ratify.jobs.services import enqueue
from ratify.jobs.worker import LongTask, Tick, Worker


def _recorder() -> tuple[list[str], dict]:  # type: ignore[type-arg]
    ran: list[str] = []

    def record(db: Session, job: Job) -> None:
        ran.append(job.payload["n"])

    return ran, {"test.record": record}


def test_a_job_runs_once_and_is_marked_done(sessions: sessionmaker[Session]) -> None:
    ran, handlers = _recorder()
    with unit_of_work(sessions) as db:
        job_id = enqueue(db, "test.record", {"n": "a"}).id
    worker = Worker(sessions, handlers=handlers)
    assert worker.drain() == 1
    assert worker.drain() == 0
    assert ran == ["a"]
    with unit_of_work(sessions) as db:
        job = db.get_one(Job, job_id)
        assert job.status == JobStatus.DONE and job.attempts == 1 and job.finished_at


def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(
    sessions: sessionmaker[Session],
) -> None:
    ran, handlers = _recorder()
    with pytest.raises(RuntimeError), unit_of_work(sessions) as db:
        enqueue(db, "test.record", {"n": "ghost"})
        raise RuntimeError("the action failed")
    assert Worker(sessions, handlers=handlers).drain() == 0
    assert ran == []


def test_a_job_is_not_run_before_its_time(sessions: sessionmaker[Session]) -> None:
    ran, handlers = _recorder()
    with unit_of_work(sessions) as db:
        enqueue(db, "test.record", {"n": "later"}, run_after=utcnow() + timedelta(hours=1))
    assert Worker(sessions, handlers=handlers).drain() == 0
    assert ran == []


def test_failures_retry_with_backoff_then_die_with_the_last_error(
    sessions: sessionmaker[Session],
) -> None:
    calls = Counter[str]()

    def flaky(db: Session, job: Job) -> None:
        calls["n"] += 1
        raise ValueError(f"provider said no ({calls['n']})")

    with unit_of_work(sessions) as db:
        job_id = enqueue(db, "test.flaky", max_attempts=3).id
    worker = Worker(sessions, handlers={"test.flaky": flaky})
    for attempt in (1, 2):
        assert worker.run_once()
        with unit_of_work(sessions) as db:
            job = db.get_one(Job, job_id)
            assert job.status == JobStatus.QUEUED and job.attempts == attempt
            assert job.run_after > utcnow() + timedelta(seconds=5)
            job.run_after = utcnow()  # skip the wait
    assert worker.run_once()
    with unit_of_work(sessions) as db:
        job = db.get_one(Job, job_id)
        assert job.status == JobStatus.DEAD
        assert job.last_error == "ValueError: provider said no (3)"
    assert worker.drain() == 0


def test_a_failing_job_leaves_none_of_its_writes(sessions: sessionmaker[Session]) -> None:
    from ratify.orgs.models import Organization, OrgKind

    def half_done(db: Session, job: Job) -> None:
        db.add(Organization(slug="half", name="Half", kind=OrgKind.UNION))
        db.flush()
        raise RuntimeError("crash after a write")

    with unit_of_work(sessions) as db:
        enqueue(db, "test.half")
    Worker(sessions, handlers={"test.half": half_done}).run_once()
    with unit_of_work(sessions) as db:
        assert db.scalar(select(Organization).where(Organization.slug == "half")) is None


def test_unknown_kind_goes_dead_at_once(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as db:
        job_id = enqueue(db, "no.such.kind").id
    Worker(sessions, handlers={}).run_once()
    with unit_of_work(sessions) as db:
        job = db.get_one(Job, job_id)
        assert job.status == JobStatus.DEAD and "no handler" in (job.last_error or "")


def test_a_job_whose_worker_died_is_taken_again_after_its_lease(
    sessions: sessionmaker[Session],
) -> None:
    ran, handlers = _recorder()
    with unit_of_work(sessions) as db:
        job_id = enqueue(db, "test.record", {"n": "x"}).id
    dead = Worker(sessions, handlers=handlers, worker_id="dead")
    assert dead.claim() == job_id  # ... and then the process died
    alive = Worker(sessions, handlers=handlers, worker_id="alive")
    assert alive.drain() == 0  # the lease still holds
    with unit_of_work(sessions) as db:
        db.execute(
            update(Job).where(Job.id == job_id).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert alive.drain() == 1
    assert ran == ["x"]


def test_a_tick_runs_once_per_interval_across_workers(sessions: sessionmaker[Session]) -> None:
    runs: list[str] = []
    tick = Tick("test.tick", timedelta(minutes=5), lambda db: runs.append("tick"))
    first, second = (Worker(sessions, handlers={}, ticks=[tick]) for _ in range(2))
    assert first.run_due_ticks() == ["test.tick"]
    assert second.run_due_ticks() == []
    assert runs == ["tick"]
    with unit_of_work(sessions) as db:
        db.execute(update(ScheduledTick).values(next_run_at=utcnow() - timedelta(seconds=1)))
    assert second.run_due_ticks() == ["test.tick"]
    assert runs == ["tick", "tick"]


def test_a_failing_tick_records_its_error_and_others_still_run(
    sessions: sessionmaker[Session],
) -> None:
    def broken(db: Session) -> None:
        raise RuntimeError("tick broke")

    ran: list[str] = []
    worker = Worker(
        sessions,
        handlers={},
        ticks=[
            Tick("test.broken", timedelta(minutes=1), broken),
            Tick("test.ok", timedelta(minutes=1), lambda db: ran.append("ok")),
        ],
    )
    assert worker.run_due_ticks() == ["test.broken", "test.ok"]
    assert ran == ["ok"]
    with unit_of_work(sessions) as db:
        assert db.get_one(ScheduledTick, "test.broken").last_error == "RuntimeError: tick broke"


@pytest.mark.skipif(
    os.environ.get("RATIFY_TEST_DB", "sqlite") != "postgresql",
    reason="several workers at once: PostgreSQL's SKIP LOCKED",
)
@pytest.mark.postgres_only
def test_two_workers_on_postgresql_never_run_the_same_job(
    live_sessions: sessionmaker[Session],
) -> None:
    total = 300
    with unit_of_work(live_sessions) as db:
        for n in range(total):
            enqueue(db, "test.record", {"n": n})
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def handler_for(name: str):  # type: ignore[no-untyped-def]
        def record(db: Session, job: Job) -> None:
            with lock:
                ran.append((name, job.payload["n"]))

        return record

    def run(name: str) -> None:
        worker = Worker(live_sessions, handlers={"test.record": handler_for(name)}, worker_id=name)
        start.wait()
        worker.drain()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    numbers = [n for _, n in ran]
    assert sorted(numbers) == list(range(total)), "every job ran exactly once"
    by_worker = Counter(name for name, _ in ran)
    assert by_worker["w1"] > 0 and by_worker["w2"] > 0, f"both workers took part: {by_worker}"
    with unit_of_work(live_sessions) as db:
        statuses = Counter(db.scalars(select(Job.status)).all())
    assert statuses == {JobStatus.DONE: total}


def test_a_job_abandoned_on_every_attempt_goes_dead(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as db:
        job_id = enqueue(db, "test.record", {"n": "x"}, max_attempts=2).id
    for name in ("first", "second"):  # each claims, then "dies"
        assert Worker(sessions, handlers={}, worker_id=name).claim() == job_id
        with unit_of_work(sessions) as db:
            db.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(locked_until=utcnow() - timedelta(seconds=1))
            )
    ran, handlers = _recorder()
    assert Worker(sessions, handlers=handlers).drain() == 0
    assert ran == []
    with unit_of_work(sessions) as db:
        job = db.get_one(Job, job_id)
        assert job.status == JobStatus.DEAD
        assert job.last_error == "the worker running it stopped before it finished"


@pytest.mark.skipif(
    os.environ.get("RATIFY_TEST_DB", "sqlite") != "postgresql",
    reason="several workers at once: PostgreSQL's row locks",
)
@pytest.mark.postgres_only
def test_a_job_outliving_its_lease_is_not_run_twice(live_sessions: sessionmaker[Session]) -> None:
    import time

    with unit_of_work(live_sessions) as db:
        enqueue(db, "test.slow")
    runs: list[str] = []

    def slow_for(name: str):  # type: ignore[no-untyped-def]
        def slow(db: Session, job: Job) -> None:
            runs.append(name)
            time.sleep(1.0)

        return slow

    first = Worker(
        live_sessions, handlers={"test.slow": slow_for("first")}, lease=timedelta(seconds=0.2)
    )
    second = Worker(
        live_sessions, handlers={"test.slow": slow_for("second")}, lease=timedelta(seconds=0.2)
    )
    thread = threading.Thread(target=first.run_once)
    thread.start()
    time.sleep(0.5)  # the first worker's lease has run out, but it is still working
    assert second.run_once() is False
    thread.join(timeout=10)
    assert runs == ["first"]
    with unit_of_work(live_sessions) as db:
        assert db.scalars(select(Job.status)).one() == JobStatus.DONE


def test_a_long_task_commits_its_own_steps_and_is_retried_when_it_fails(
    sessions: sessionmaker[Session],
) -> None:
    """A LongTask runs outside the job's transaction: what it committed stays even when a
    later step fails, and the job is retried like any other."""
    steps: list[str] = []

    def task(task_sessions: sessionmaker[Session], payload: dict) -> None:  # type: ignore[type-arg]
        with unit_of_work(task_sessions) as db:
            later = utcnow() + timedelta(days=1)  # a committed step (never run here)
            enqueue(db, "test.step", {"n": payload["n"]}, run_after=later)
        steps.append(payload["n"])
        if len(steps) == 1:
            raise RuntimeError("the first try fails after its step")

    handlers = {"test.long": LongTask(task)}
    with unit_of_work(sessions) as db:
        job_id = enqueue(db, "test.long", {"n": "x"}).id
    worker = Worker(sessions, handlers=handlers)
    assert worker.drain() == 1
    with unit_of_work(sessions) as db:
        job = db.get_one(Job, job_id)
        assert job.status == JobStatus.QUEUED and "first try fails" in (job.last_error or "")
        job.run_after = utcnow()
    assert worker.drain() == 1
    with unit_of_work(sessions) as db:
        assert db.get_one(Job, job_id).status == JobStatus.DONE
        assert db.scalars(select(Job.kind).where(Job.kind == "test.step")).all() == [
            "test.step",
            "test.step",
        ]
    assert steps == ["x", "x"]


def test_a_long_task_is_claimed_for_its_own_lease(sessions: sessionmaker[Session]) -> None:
    """Nothing renews a long task's claim while it runs, so its lease is long: another worker
    does not take it after the ordinary five minutes (and mark it dead after five takes)."""
    seen: list[object] = []

    def task(task_sessions: sessionmaker[Session], payload: dict) -> None:  # type: ignore[type-arg]
        with unit_of_work(task_sessions) as db:
            seen.append(db.scalars(select(Job.locked_until)).one())

    with unit_of_work(sessions) as db:
        enqueue(db, "test.long", {})
    before = utcnow()
    Worker(sessions, handlers={"test.long": LongTask(task, lease=timedelta(hours=2))}).drain()
    (until,) = seen
    assert timedelta(hours=2) <= until - before < timedelta(hours=2, minutes=1)  # type: ignore[operator]
