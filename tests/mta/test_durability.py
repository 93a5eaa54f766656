"""Durability and forged bounces, with real processes killed by SIGKILL.

- The receiver (``bounceback serve`` with the smtp role) is killed in the middle of a burst of
  1,000 notices that a private Postfix delivers to it; after a restart Postfix retries what was
  not acknowledged, and every bounce is recorded exactly once.
- A worker process is killed while it processes stored bounces; the jobs it held are taken again
  when their lease runs out (a short lease: ``BOUNCEBACK_JOB_LEASE_SECONDS``), and again every
  bounce is recorded exactly once.
- 1,000 bounces with missing, wrong or replayed VERP signatures change no contact and no
  delivery.

The kill tests run on PostgreSQL (the setting of several processes sharing one database), the
receiver's also on SQLite; the forged bounces on both.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Job,
    RawBounce,
    RawStatus,
    Suppression,
    TimelineEntry,
)
from bounceback.service.db.session import make_engine, make_sessionmaker, transaction
from bounceback.service.domain import intake, verp
from mta_support import (
    BOUNCE_DOMAIN,
    SECRET,
    Postfix,
    RemoteMX,
    RunBounceback,
    StartPostfix,
    Timers,
    delivery_of,
    in_threads,
    relay_all,
    seed_send,
    tally,
    wait_for,
)

BURST = 1000
# Notices must outlive a receiver that is down for a few seconds; nothing here is deferred long.
TIMERS = Timers(lifetime="120s", bounce_lifetime="120s", delay_warning="0h")


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _burst_waiting(postfix: Postfix, remote_mx: RemoteMX, factory: sessionmaker[Session]) -> None:
    """1,000 deliveries to unknown users, sent through Postfix; the remote MX refuses each, and
    Postfix holds its 1,000 notices until ``release_bounces``."""
    messages = seed_send(factory, [f"unknown{i:04d}@remote.test" for i in range(BURST)])
    postfix.hold_bounces()
    relay_all(postfix.port, messages)
    wait_for(
        lambda: f"Postfix to hold {BURST} notices\n{postfix.log_tail()}",
        lambda: postfix.queued(["deferred"]) == BURST and postfix.queued() == BURST,
        60,
        0.2,
    )
    assert sum(remote_mx.refused.values()) == BURST


def _all_recorded(factory: sessionmaker[Session], postfix: Postfix) -> None:
    def done() -> bool:
        counts = tally(factory)
        return postfix.queued() == 0 and counts.raws == BURST and counts.unprocessed == 0

    def state() -> str:
        return (
            f"every notice stored and processed: {tally(factory)}, "
            f"{postfix.queued()} in Postfix's queue\n{postfix.log_tail()}"
        )

    wait_for(state, done, 300, 0.2)  # a deadline for a loaded machine: it takes 10-30s


def _exactly_once(factory: sessionmaker[Session]) -> None:
    """One stored message and one event per delivery; every delivery a hard bounce."""
    with factory() as session:
        raws = session.execute(select(RawBounce.envelope_to, RawBounce.status)).all()
        events = Counter(session.scalars(select(BounceEvent.delivery_id)).all())
        states = Counter(session.scalars(select(Delivery.state)).all())
        ids = set(session.scalars(select(Delivery.id)).all())
    per_delivery = Counter(delivery_of(to) for to, _ in raws)
    assert set(per_delivery) == ids and set(per_delivery.values()) == {1}
    assert {status for _, status in raws} == {RawStatus.PROCESSED}
    assert set(events) == ids and set(events.values()) == {1}
    assert states == {DeliveryState.BOUNCED_HARD: BURST}


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_receiver_killed_mid_burst(
    db_url: str,
    factory: sessionmaker[Session],
    start_postfix: StartPostfix,
    run_bounceback: RunBounceback,
    remote_mx: RemoteMX,
) -> None:
    receiver = run_bounceback(db_url, roles=("smtp",), name="receiver")
    worker = run_bounceback(db_url, roles=("worker",), name="worker")
    postfix = start_postfix({BOUNCE_DOMAIN: receiver.smtp_port}, timers=TIMERS)
    receiver.start()
    worker.start()
    _burst_waiting(postfix, remote_mx, factory)

    postfix.release_bounces()
    wait_for("a third of the burst stored", lambda: tally(factory).raws >= BURST // 3, 60, 0.02)
    receiver.kill()
    stored_at_kill = tally(factory).raws
    assert stored_at_kill < BURST, "the burst was over before the kill"
    time.sleep(1)  # Postfix meets a closed port meanwhile, and defers
    receiver.start()

    _all_recorded(factory, postfix)
    _exactly_once(factory)
    # Postfix did meet the dead receiver, and retried: bounceback's answers were what counted.
    log = postfix.log.read_text()
    assert f"127.0.0.1[127.0.0.1]:{receiver.smtp_port}: Connection refused" in log


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_worker_killed_mid_processing(
    db_url: str,
    factory: sessionmaker[Session],
    start_postfix: StartPostfix,
    run_bounceback: RunBounceback,
    remote_mx: RemoteMX,
) -> None:
    receiver = run_bounceback(db_url, roles=("smtp",), name="receiver")
    worker = run_bounceback(  # two worker threads: what a kill leaves behind is several jobs
        db_url,
        roles=("worker",),
        name="worker",
        env={"BOUNCEBACK_JOB_LEASE_SECONDS": "2", "BOUNCEBACK_WORKER_THREADS": "2"},
    )
    postfix = start_postfix({BOUNCE_DOMAIN: receiver.smtp_port}, timers=TIMERS)
    receiver.start()
    _burst_waiting(postfix, remote_mx, factory)
    postfix.release_bounces()
    wait_for("the burst stored", lambda: tally(factory).raws == BURST, 60, 0.1)

    # Kill the worker mid-processing until it has left a job behind it held (it is usually in
    # the middle of one; between two jobs it holds none).
    abandoned: set[int] = set()
    for kills in range(1, 6):
        worker.start()
        target = kills * BURST // 6
        wait_for(f"{target} bounces processed", lambda t=target: tally(factory).events >= t, 60)
        worker.kill()
        abandoned |= _held_jobs(factory)
        if abandoned:
            break
    assert abandoned, "the worker was never killed in the middle of a job"
    assert tally(factory).unprocessed > 0, "the worker finished before it was killed"
    worker.start()

    _all_recorded(factory, postfix)
    _exactly_once(factory)
    with factory() as session:
        jobs = session.execute(select(Job.id, Job.done_at, Job.attempts, Job.error)).all()
    assert all(done is not None and not error for _, done, _, error in jobs)
    assert all(attempts >= 2 for id_, _, attempts, _ in jobs if id_ in abandoned)


def _held_jobs(factory: sessionmaker[Session]) -> set[int]:
    """Jobs leased to a worker and not finished: what a killed worker left behind."""
    with factory() as session:
        return set(
            session.scalars(
                select(Job.id).where(Job.done_at.is_(None), Job.locked_until.is_not(None))
            ).all()
        )


def test_an_intake_not_committed_leaves_nothing(factory: sessionmaker[Session]) -> None:
    """The receiver stores a message and its processing job in one transaction, committed before
    it answers 250. Killed before the commit, neither may remain: on SQLite a savepoint that
    opened the transaction used to commit on its own, leaving a message no job would process
    (and, as it was stored, the sender's retry would not store it again)."""
    with pytest.raises(RuntimeError), transaction(factory) as session:
        intake.store_raw(session, b"Subject: a bounce\r\n\r\nbody\r\n", source="smtp")
        raise RuntimeError("killed before the commit")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(RawBounce)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0


# --- forged bounces -----------------------------------------------------------------------------

VICTIMS = 50
FORGED = 1000


def _bounce(token: str, address: str, index: int) -> tuple[str, bytes]:
    """A notice saying ``address`` failed hard, carrying ``token`` where bounceback looks for
    one (return path, envelope id, our header in the returned headers): envelope recipient and
    message."""
    to = f"b+{token}@{BOUNCE_DOMAIN}" if token else f"postmaster@{BOUNCE_DOMAIN}"
    envid = f"Original-Envelope-Id: {token}\n" if token else ""
    header = f"X-Bounceback-Delivery: {token}\n" if token else ""
    data = (
        f"From: MAILER-DAEMON@mx.remote.test\nTo: {to}\nSubject: Undelivered Mail\n"
        f"Message-ID: <n{index}.{uuid.uuid4().hex}@mx.remote.test>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        "--F\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.remote.test\n{envid}\n"
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{address}>: Recipient address rejected: "
        "User unknown\n\n"
        "--F\nContent-Type: text/rfc822-headers\n\n"
        f"From: news@acme.test\nTo: {address}\n{header}"
        f"Message-ID: <{uuid.uuid4().hex}@{BOUNCE_DOMAIN}>\nSubject: Spring news\n\n--F--\n"
    ).encode()
    return to, data


def _forged(index: int, victims: list[tuple[int, str]], attacker: int) -> tuple[str, bytes]:
    """A bounce of a victim's address with one kind of bad token: none at all, a made-up
    signature, one made with another secret, an unsubscribe link's token, or the attacker's own
    genuine token (from the message they received) replayed for someone else's address."""
    delivery_id, address = victims[index % len(victims)]
    tokens = [
        "",
        f"{verp.make_token(SECRET, delivery_id)[:-16]}{uuid.uuid4().hex[:16]}",
        verp.make_token("another-secret", delivery_id),
        verp.make_token(SECRET, delivery_id, purpose="unsubscribe"),
        verp.make_token(SECRET, attacker),
    ]
    return _bounce(tokens[index % len(tokens)], address, index)


def _snapshot(factory: sessionmaker[Session]) -> dict[str, object]:
    """Everything a bounce could change about contacts and deliveries."""
    with factory() as session:
        return {
            "deliveries": session.execute(
                select(
                    Delivery.id,
                    Delivery.state,
                    Delivery.category,
                    Delivery.reason,
                    Delivery.response,
                    Delivery.attempts,
                ).order_by(Delivery.id)
            ).all(),
            "contacts": session.execute(
                select(Contact.id, Contact.hard_bounce_reason, Contact.unsubscribed_at).order_by(
                    Contact.id
                )
            ).all(),
            "suppressions": session.scalar(select(func.count()).select_from(Suppression)),
            "timeline": session.scalar(select(func.count()).select_from(TimelineEntry)),
            "events": session.scalar(select(func.count()).select_from(BounceEvent)),
        }


def test_forged_bounces_change_nothing(
    db_url: str, factory: sessionmaker[Session], run_bounceback: RunBounceback
) -> None:
    service = run_bounceback(db_url, roles=("smtp", "worker"))
    service.start()
    messages = seed_send(
        factory, ["attacker@evil.test"] + [f"victim{i:02d}@remote.test" for i in range(VICTIMS)]
    )
    attacker = messages[0].delivery_id
    victims = [(m.delivery_id, m.recipient) for m in messages[1:]]
    before = _snapshot(factory)

    def send(part: int) -> None:
        with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=30) as smtp:
            for index in range(part, FORGED, 4):
                to, data = _forged(index, victims, attacker)
                smtp.sendmail("", [to], data)

    in_threads(4, send)
    wait_for(
        "the forged bounces stored and processed",
        lambda: (t := tally(factory)).raws == FORGED and t.unprocessed == 0,
        120,
        0.2,
    )
    statuses = tally(factory).raw_statuses
    assert set(statuses) == {RawStatus.FORGED.value, RawStatus.UNMATCHED.value}, statuses
    assert _snapshot(factory) == before

    # The same pipeline does act on a genuine bounce: the checks above could fail.
    delivery_id, address = victims[0]
    to, data = _bounce(verp.make_token(SECRET, delivery_id), address, FORGED)
    with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=30) as smtp:
        smtp.sendmail("", [to], data)
    wait_for("the genuine bounce applied", lambda: _state(factory, delivery_id), 60)
    assert _snapshot(factory)["suppressions"] == 1


def _state(factory: sessionmaker[Session], delivery_id: int) -> bool:
    with factory() as session:
        delivery = session.get(Delivery, delivery_id)
        return delivery is not None and delivery.state is DeliveryState.BOUNCED_HARD
