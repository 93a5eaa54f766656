"""A job queue in the database, shared by any number of stateless workers.

Producers ``enqueue`` inside their own transaction, so a job exists exactly when the work that
asked for it was committed. Workers ``claim`` a due job with a lease: on PostgreSQL with
``FOR UPDATE SKIP LOCKED`` (many workers never take the same job); on SQLite, where one writer
holds the database at a time, the claim is one short transaction. A worker that dies mid-job
leaves a lease that expires, and another worker takes the job again: handlers are idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Job, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


Handler = Callable[[sessionmaker[Session], dict[str, Any]], None]


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    run_at: datetime | None = None,
) -> None:
    """Add a job in the caller's transaction; a job with the same ``key`` is added once."""
    if key is not None:
        exists = session.scalar(select(Job.id).where(Job.key == key))
        if exists is not None:
            return
    job = Job(kind=kind, payload=payload, key=key, run_at=run_at or utcnow())
    if key is None:
        session.add(job)
        session.flush()
        return
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:  # another process enqueued the same key at the same moment
        pass


BULK = 500  # jobs per statement in ``enqueue_many``
Keyed = tuple[dict[str, Any], str, datetime]  # a job's payload, key and run_at


def enqueue_many(session: Session, kind: str, jobs: Sequence[Keyed]) -> None:
    """``enqueue`` for many keyed jobs: keys already queued are skipped, the rest inserted 500
    per statement (a send of 100,000 recipients)."""
    for start in range(0, len(jobs), BULK):
        chunk = jobs[start : start + BULK]
        queued = set(session.scalars(select(Job.key).where(Job.key.in_([k for _, k, _ in chunk]))))
        fresh = [job for job in chunk if job[1] not in queued]
        if not fresh:
            continue
        try:
            with session.begin_nested():
                enqueue_new(session, kind, fresh)
        except IntegrityError:  # another process queued some of them at this moment
            for payload, key, when in fresh:
                enqueue(session, kind, payload, key=key, run_at=when)


def enqueue_new(session: Session, kind: str, jobs: Sequence[Keyed]) -> None:
    """Add keyed jobs in one statement. Only for keys that cannot exist yet (made from rows
    inserted in this transaction): a key that does fails the whole transaction."""
    rows = [{"kind": kind, "payload": p, "key": key, "run_at": when} for p, key, when in jobs]
    session.execute(insert(Job), rows)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(
    factory: sessionmaker[Session],
    owner: str,
    kinds: tuple[str, ...] | None = None,
    lease: timedelta = LEASE,
) -> Claimed | None:
    """Take one due job (or one whose lease expired) and lease it to ``owner`` for ``lease``."""
    now = utcnow()
    with factory() as session, session.begin():
        query = (
            select(Job)
            .where(
                Job.done_at.is_(None),
                Job.run_at <= now,
                or_(Job.locked_until.is_(None), Job.locked_until < now),
            )
            .order_by(Job.run_at, Job.id)
            .limit(1)
        )
        if kinds:
            query = query.where(Job.kind.in_(kinds))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = session.scalar(query)
        if job is None:
            return None
        job.locked_by = owner
        job.locked_until = now + lease
        job.attempts += 1
        return Claimed(job.id, job.kind, dict(job.payload), job.attempts)


def finish(factory: sessionmaker[Session], job_id: int) -> None:
    with factory() as session, session.begin():
        job = session.get(Job, job_id)
        if job is not None:
            job.done_at = utcnow()
            job.locked_until = None
            job.error = ""


def fail(factory: sessionmaker[Session], job_id: int, error: str) -> None:
    """Record a failure and retry later with exponential backoff (given up after MAX_ATTEMPTS)."""
    with factory() as session, session.begin():
        job = session.get(Job, job_id)
        if job is None:
            return
        job.error = error[:4000]
        job.locked_until = None
        if job.attempts >= MAX_ATTEMPTS:
            job.done_at = utcnow()
        else:
            job.run_at = utcnow() + timedelta(seconds=min(3600, 2**job.attempts))


def run_one(
    factory: sessionmaker[Session],
    handlers: dict[str, Handler],
    owner: str,
    lease: timedelta = LEASE,
) -> bool:
    """Claim and run one job; False when there was nothing to do."""
    claimed = claim(factory, owner, tuple(handlers), lease)
    if claimed is None:
        return False
    try:
        handlers[claimed.kind](factory, claimed.payload)
    except Exception as exc:  # the job is retried; the worker goes on
        log.exception("job %s (%s) failed", claimed.id, claimed.kind)
        fail(factory, claimed.id, f"{type(exc).__name__}: {exc}")
    else:
        finish(factory, claimed.id)
    return True


def run_forever(
    factory: sessionmaker[Session],
    handlers: dict[str, Handler],
    poll_seconds: float,
    should_stop: Callable[[], bool],
    lease: timedelta = LEASE,
) -> None:
    owner = worker_id()
    while not should_stop():
        if not run_one(factory, handlers, owner, lease):
            time.sleep(poll_seconds)
