"""The background worker: delivers queued messages and processes stored bounces.

``deliver`` hands one delivery to the relay (or the sandbox). The delivery is claimed first (a
conditional update no other worker can win at the same time), so a job run twice, or a resumed
send, never sends a message twice. The relay is talked to outside any database transaction; what
it answered is recorded afterwards:

- accepted: ``sent`` (and a "sent" entry on the contact's timeline);
- 4xx or no answer: ``pending``, retried with a growing delay; after the account's retry period
  (72 hours by default) it is given up as a soft bounce with the last response;
- 5xx: a bounce of that recipient, recorded by the intake exactly like a later NDR.

A paused or cancelled send's deliveries are not claimed (resuming enqueues them again). A message
the relay accepted is never handed over again, even when a delay notice makes it ``pending``:
the relay retries it.

``process_bounce`` parses, matches and applies one stored raw message (``intake.process``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service import jobs
from bounceback.service.db.models import (
    Account,
    Contact,
    Delivery,
    DeliveryState,
    Email,
    NotSentReason,
    Send,
    SendStatus,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import (
    contacts,
    direct,
    dnscheck,
    guardrails,
    intake,
    sending,
    sequences,
)
from bounceback.service.domain.policy import Policy, policy_for
from bounceback.service.outbound import message as outbound
from bounceback.service.outbound import sandbox
from bounceback.service.outbound.relay import Outcome, Relay, SendResult, parse_relay_url
from bounceback.service.settings import Settings

log = logging.getLogger(__name__)

PROCESS_BOUNCE = "process_bounce"
# How long a worker holds a delivery while talking to the relay, as a share of its job's lease
# (``job_lease_seconds``). A worker that dies mid-send releases it when this runs out, a little
# before the job's lease, so the job run again finds the delivery free.
CLAIM_SHARE = 0.9
FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY = timedelta(hours=2)


def lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.job_lease_seconds)


def retry_delay(attempts: int) -> timedelta:
    """5 minutes after the first deferral, doubling each time, at most 2 hours apart."""
    return min(MAX_RETRY, FIRST_RETRY * (1 << max(0, min(attempts - 1, 20))))


@dataclass(frozen=True)
class _Claimed:
    account_id: int
    message: outbound.Outgoing


class Deliverer:
    """The "deliver" job. Holds the relay connection between jobs (one per worker thread)."""

    def __init__(self, settings: Settings, relay: Relay | None = None) -> None:
        self.settings = settings
        if relay is None and not settings.is_sandbox:
            relay = Relay(parse_relay_url(settings.relay_url))
        self.relay = relay

    def __call__(self, factory: sessionmaker[Session], payload: dict[str, Any]) -> None:
        delivery_id = int(payload["delivery_id"])
        if self.relay is None:  # sandbox: the outbox and the simulator, in one transaction
            with transaction(factory) as session:
                claimed = _claim(session, self.settings, delivery_id)
                if claimed is not None:
                    result = sandbox.deliver(
                        session, self.settings, claimed.account_id, claimed.message
                    )
                    _record(session, self.settings, delivery_id, result)
            return
        with transaction(factory) as session:
            claimed = _claim(session, self.settings, delivery_id)
        if claimed is None:
            return
        try:
            result = self.relay.send(claimed.message)
        except Exception as exc:  # a bug must not strand the claimed delivery: retry it
            log.exception("sending delivery %s failed", delivery_id)
            result = SendResult(Outcome.TEMPORARY, "", f"internal error: {exc}", "CONN")
        with transaction(factory) as session:
            _record(session, self.settings, delivery_id, result)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()


def _claim(session: Session, settings: Settings, delivery_id: int) -> _Claimed | None:
    """Take the delivery for sending, or None when it is not (or not yet) to be sent."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or not _to_hand_over(delivery):
        return None
    send = session.get(Send, delivery.send_id)
    if send is None or send.status in (SendStatus.PAUSED, SendStatus.CANCELLED, SendStatus.DRAFT):
        return None  # a resumed send enqueues its open deliveries again
    now = utcnow()
    taken = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            sending.to_hand_over(),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .values(next_attempt_at=now + lease(settings) * CLAIM_SHARE)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return None  # another worker has it, or its retry is not due yet
    session.refresh(delivery)
    if send.status is SendStatus.SCHEDULED:
        send.status = SendStatus.SENDING
        send.started_at = send.started_at or now
    email = session.get(Email, send.email_id)
    contact = session.get(Contact, delivery.contact_id)
    assert email is not None
    message = outbound.build(settings, delivery, email, contact.name if contact else "")
    return _Claimed(delivery.account_id, message)


def _to_hand_over(delivery: Delivery) -> bool:
    """Python's side of ``sending.to_hand_over``: queued, or deferred by the relay itself."""
    if delivery.state is DeliveryState.PENDING:
        return delivery.sent_at is None
    return delivery.state is DeliveryState.QUEUED


def _record(session: Session, settings: Settings, delivery_id: int, result: SendResult) -> None:
    """What the relay answered, applied to the delivery (and the send, when it was the last)."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return
    if _cancelled(delivery) and result.outcome is not Outcome.TEMPORARY:
        # Cancelled while we were handing it over: the relay's answer is still what happened.
        delivery.state, delivery.not_sent_reason = DeliveryState.QUEUED, None
    if not _to_hand_over(delivery):
        return  # settled meanwhile (or cancelled and not taken): nothing to record over
    delivery.attempts += 1
    send = session.get(Send, delivery.send_id)
    if result.outcome is Outcome.ACCEPTED:
        _sent(session, delivery, result)
        if send is not None:
            guardrails.check_after_sent(session, send, _policy(session, delivery.account_id))
    elif result.outcome is Outcome.TEMPORARY:
        _deferred(session, settings, delivery, result)
    else:
        _rejected(session, settings, delivery, result)
    if send is not None:
        sending.finish_if_done(session, send)


def _policy(session: Session, account_id: int) -> Policy:
    account = session.get(Account, account_id)
    return policy_for(account.policy if account else None)


def _cancelled(delivery: Delivery) -> bool:
    return (
        delivery.state is DeliveryState.NOT_SENT
        and delivery.not_sent_reason is NotSentReason.CANCELLED
    )


def _sent(session: Session, delivery: Delivery, result: SendResult) -> None:
    now = utcnow()
    delivery.state = DeliveryState.SENT
    delivery.sent_at = now
    delivery.next_attempt_at = None
    delivery.response = result.response
    send = session.get(Send, delivery.send_id)
    subject = send.email.subject if send is not None else ""
    contacts.add_timeline(
        session,
        delivery.account_id,
        delivery.contact_id,
        "sent",
        f"Sent “{subject}”",
        data={"send_id": delivery.send_id, "delivery_id": delivery.id},
    )


def _deferred(session: Session, settings: Settings, delivery: Delivery, result: SendResult) -> None:
    now = utcnow()
    first = _aware(delivery.first_deferred_at) if delivery.first_deferred_at else now
    retry_hours = _policy(session, delivery.account_id).retry_hours
    give_up_at = first + timedelta(hours=retry_hours)
    delivery.first_deferred_at = first
    delivery.response = result.response
    if now >= give_up_at:
        delivery.next_attempt_at = None
        _rejected(session, settings, delivery, result)
        return
    retry_at = min(now + retry_delay(delivery.attempts), give_up_at)
    delivery.state = DeliveryState.PENDING
    delivery.next_attempt_at = retry_at
    jobs.enqueue(
        session,
        sending.DELIVER,
        {"delivery_id": delivery.id},
        key=f"deliver:{delivery.id}:retry:{delivery.attempts}",
        run_at=retry_at,
    )


def _rejected(session: Session, settings: Settings, delivery: Delivery, result: SendResult) -> None:
    """A refusal (or a temporary failure given up): a bounce, recorded like any NDR."""
    delivery.next_attempt_at = None
    delivery.response = result.response
    intake.record_rejection(
        session,
        delivery,
        reply_code=result.reply_code,
        response=result.text,  # one line: the intake writes "<code> <text>" into its report
        command=result.command or "CONN",
        secret=settings.secret_key,
        relay=_relay_name(settings),
    )


def _relay_name(settings: Settings) -> str:
    if settings.is_sandbox:
        return "sandbox"
    return parse_relay_url(settings.relay_url).name


def _aware(value: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def build_handlers(
    settings: Settings, deliverer: Deliverer | None = None
) -> dict[str, jobs.Handler]:
    """The job handlers for ``jobs.run_forever``. The deliverer keeps its relay connection
    between jobs; whoever runs the handlers closes it (``Deliverer.close``)."""

    def process_bounce(factory: sessionmaker[Session], payload: dict[str, Any]) -> None:
        intake.process(factory, int(payload["raw_id"]), settings)

    return {
        sending.DELIVER: deliverer or Deliverer(settings),
        PROCESS_BOUNCE: process_bounce,
        dnscheck.DNS_CHECK: dnscheck.DnsCheckJob(settings),  # caches checks for a few minutes
        **direct.job_handlers(settings),  # "send again later" of one-to-one email
        **sequences.job_handlers(settings),
    }


def run_until_idle(
    factory: sessionmaker[Session], handlers: dict[str, jobs.Handler], max_jobs: int = 10_000
) -> int:
    """Run due jobs until none is left (tests, the CLI); how many ran."""
    owner = jobs.worker_id()
    done = 0
    while done < max_jobs and jobs.run_one(factory, handlers, owner):
        done += 1
    return done


class Worker:
    """Runs the job loop in a thread; ``stop`` ends it after the current job."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deliverer = Deliverer(settings)
        self.handlers = build_handlers(settings, self._deliverer)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the worker is running already")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bounceback-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            jobs.run_forever(
                self.factory,
                self.handlers,
                self.settings.worker_poll_seconds,
                self._stop.is_set,
                lease(self.settings),
            )
        finally:
            self._deliverer.close()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
