#!/usr/bin/env python3
"""Bounce ingestion speed with a real MTA: a private Postfix bouncing COUNT messages as fast as it
can into bounceback's SMTP receiver on PostgreSQL, next to the same into a plain aiosmtpd sink
that stores nothing, in the same run.

Each phase: COUNT deliveries are sent through Postfix (bounceback's own relay client) to
addresses the fake remote MX refuses; Postfix holds the COUNT notices it generates
(``defer_transports``), then releases them all at once. Reported per phase: how long Postfix
takes to empty its queue (its drain rate into that server), and for bounceback how long until
every notice is stored, and until every one is processed into bounce events (end to end).

Needs Postfix (apt-get install postfix), root (Postfix's master runs as root) and PostgreSQL
(a scratch database is created and dropped).

usage: python bench/ingest.py [--count 10000] [--workers 2] [--threads 4] [--concurrency 20]
                             [--workers-after-drain] [--postgres URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bounceback.service.db.session import make_engine, make_sessionmaker, migrate
from mta_support import (
    BOUNCE_DOMAIN,
    Bounceback,
    Postfix,
    RemoteMX,
    Sink,
    Timers,
    postfix_problem,
    relay_all,
    seed_send,
    start_smtp,
    tally,
)

SINK = "sink.bb.test"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TIMERS = Timers(lifetime="1h", bounce_lifetime="1h", delay_warning="0h")


def _until(check: Callable[[], bool], timeout: float, every: float = 0.05) -> float:
    """Seconds until ``check()`` holds (polling); raises at the deadline."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"gave up after {timeout:.0f}s")
        time.sleep(every)
    return time.monotonic() - start


def _hold_and_release(postfix: Postfix, send: Callable[[], None], count: int) -> float:
    """Send, wait until Postfix holds ``count`` notices, release them; the release's time."""
    postfix.hold_bounces()
    started = time.monotonic()
    send()
    _until(lambda: postfix.queued(["deferred"]) == count == postfix.queued(), 1800, 0.5)
    print(f"  {count} messages sent and bounced, notices held: {time.monotonic() - started:.1f}s")
    released = time.monotonic()
    postfix.release_bounces()
    return released


def _watch(
    postfix: Postfix, factory: sessionmaker[Session], count: int, released: float, receiver: int
) -> dict[str, float]:
    """Seconds after the release when Postfix's queue was empty, every notice stored, and every
    one processed into an event; and the receiver's CPU time when every notice was stored."""
    moments: dict[str, float] = {}
    deadline = released + 3600
    while not {"drained", "stored", "processed"} <= moments.keys():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up; so far: {moments}")
        now = time.monotonic() - released
        if "drained" not in moments and postfix.queued() == 0:
            moments["drained"] = now
        counts = tally(factory)
        if "stored" not in moments and counts.raws == count:
            moments["stored"] = now
            moments["receiver_cpu"] = _cpu_seconds(receiver)
        if counts.raws == count and counts.unprocessed == 0 and counts.events == count:
            moments["processed"] = now
        time.sleep(0.1)
    return moments


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _deferrals(postfix: Postfix) -> Counter[str]:
    """Why Postfix deferred notices to the servers (it should not have to)."""
    reasons: Counter[str] = Counter()
    for line in postfix.log.read_text(errors="replace").splitlines():
        if "status=deferred" in line and "deferred transport" not in line:
            reasons[line.split("status=deferred", 1)[1][:80]] += 1
    return reasons


def run(args: argparse.Namespace, db_url: str, scratch: Path) -> None:
    count = args.count
    mx = RemoteMX()
    mx_server = start_smtp(mx)
    sink = Sink()
    sink_server = start_smtp(sink, name="sink.bb.test")
    receiver = Bounceback(db_url, scratch, roles=("smtp",), name="receiver")
    threads = {"BOUNCEBACK_WORKER_THREADS": str(args.threads)}
    workers = [
        Bounceback(db_url, scratch, roles=("worker",), name=f"worker{i}", env=threads)
        for i in range(args.workers)
    ]
    postfix = Postfix(
        mx_server.port,
        {BOUNCE_DOMAIN: receiver.smtp_port, SINK: sink_server.port},
        timers=TIMERS,
        concurrency=args.concurrency,
    )
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    try:
        postfix.start()
        for process in [receiver] if args.workers_after_drain else [receiver, *workers]:
            process.start()
        started = time.monotonic()
        messages = seed_send(factory, [f"unknown{i:05d}@remote.test" for i in range(count)])
        print(f"{count} deliveries in the database: {time.monotonic() - started:.1f}s")
        to_sink = [
            dataclasses.replace(m, envelope_from=m.envelope_from.replace(BOUNCE_DOMAIN, SINK))
            for m in messages
        ]

        print(f"plain sink (aiosmtpd, stores nothing), {args.concurrency} connections:")
        released = _hold_and_release(postfix, lambda: relay_all(postfix.port, to_sink, 8), count)
        _until(lambda: postfix.queued() == 0 and sink.count == count, 1800)
        sink_drain = time.monotonic() - released
        print(f"  Postfix drained {count} notices in {sink_drain:.2f}s")

        print(f"bounceback (receiver + {args.workers}x{args.threads} workers, PostgreSQL):")
        assert receiver.process is not None
        released = _hold_and_release(postfix, lambda: relay_all(postfix.port, messages, 8), count)
        cpu_before = _cpu_seconds(receiver.process.pid)
        if args.workers_after_drain:
            _until(lambda: postfix.queued() == 0, 1800)
            for process in workers:
                process.start()
        moments = _watch(postfix, factory, count, released, receiver.process.pid)
        drain, stored, end_to_end = moments["drained"], moments["stored"], moments["processed"]
        receiver_cpu = moments["receiver_cpu"] - cpu_before
        print(f"  Postfix drained {count} notices in {drain:.2f}s (all stored: {stored:.2f}s)")
        print(
            f"  the receiver used {1000 * receiver_cpu / count:.2f} ms of CPU per notice "
            f"({100 * receiver_cpu / stored:.0f}% of one core until all were stored)"
        )
        print(f"  every one processed into events: {end_to_end:.2f}s after the release")
        print()
        print(f"Postfix's drain rate into the plain sink: {count / sink_drain:8.0f} notices/s")
        print(f"Postfix's drain rate into bounceback:     {count / drain:8.0f} notices/s")
        print(f"bounceback end to end (stored+processed): {count / end_to_end:8.0f} bounces/s")
        deferred = _deferrals(postfix)
        if deferred:
            print(f"Postfix deferred some notices: {dict(deferred.most_common(5))}")
    finally:
        for process in [*workers, receiver]:
            process.stop()
        postfix.stop()
        mx_server.stop()
        sink_server.stop()
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    ap.add_argument("--concurrency", type=int, default=20, help="Postfix's connections per server")
    ap.add_argument(
        "--workers-after-drain",
        action="store_true",
        help="start the workers once Postfix is done (the receiver alone during the drain)",
    )
    ap.add_argument("--postgres", default=DEFAULT_PG, help="a server where we may create a DB")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    problem = postfix_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    name = f"bounceback_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db_url = args.postgres.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(db_url)
        with TemporaryDirectory(prefix="bb-bench-") as scratch:
            run(args, db_url, Path(scratch))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
