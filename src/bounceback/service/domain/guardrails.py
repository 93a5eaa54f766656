"""Guardrails on a send: it pauses itself when too many of its recipients hard-bounce or complain
(taxonomy section 3, thresholds in the account's policy), so that a bad list or a bad email does
not burn the sender's reputation to the end. An administrator then resumes or cancels it.

While a send is paused the workers hand none of its deliveries to the relay (``worker._claim``);
resuming enqueues them again (``sending.resume_send``); cancelling makes them not sent, with the
reason "cancelled". An administrator who resumed after an automatic pause has decided: the same
guardrail does not pause that send again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bounceback.service.db.models import (
    Delivery,
    DeliveryState,
    NotSentReason,
    Send,
    SendStatus,
    utcnow,
)
from bounceback.service.domain import alerts, sending
from bounceback.service.domain.errors import Conflict
from bounceback.service.domain.policy import Policy

PAUSED_KIND = "send_paused"
_PAUSABLE = (SendStatus.SENDING, SendStatus.SCHEDULED)
_FINISHED = (SendStatus.DONE, SendStatus.CANCELLED)


@dataclass(frozen=True)
class Trip:
    """A guardrail that tripped: which, and the reason shown to people."""

    which: str  # hard_bounce or complaint
    reason: str


def pause_send(session: Session, account_id: int, send_id: int, reason: str = "") -> Send:
    """Pause a send by hand: its remaining deliveries wait until it is resumed or cancelled."""
    send = sending.get_send(session, account_id, send_id)
    if send.status not in _PAUSABLE:
        raise Conflict(f"the send is {send.status.value}; only a sending or scheduled one pauses")
    send.status = SendStatus.PAUSED
    send.pause_reason = " ".join(reason.split())[:2000] or "Paused by hand."
    return send


def resume_send(session: Session, account_id: int, send_id: int) -> Send:
    """Continue a paused send with its remaining deliveries; its pause alerts are closed."""
    send = sending.resume_send(session, account_id, send_id)
    _close_alerts(session, send)
    return send


def cancel_send(session: Session, account_id: int, send_id: int) -> Send:
    """Stop a send for good: what was still to hand to the relay becomes not sent, "cancelled".
    A message a worker is handing over at this very moment is recorded as what it became."""
    send = sending.get_send(session, account_id, send_id)
    if send.status in _FINISHED:
        raise Conflict(f"the send is {send.status.value}; it cannot be cancelled")
    session.execute(
        update(Delivery)
        .where(Delivery.send_id == send.id, sending.to_hand_over())
        .values(
            state=DeliveryState.NOT_SENT,
            not_sent_reason=NotSentReason.CANCELLED,
            next_attempt_at=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    send.status = SendStatus.CANCELLED
    send.finished_at = utcnow()
    _close_alerts(session, send)
    session.flush()
    return send


def check_send(session: Session, send: Send, policy: Policy) -> Trip | None:
    """After a hard bounce or a complaint of one of its recipients: pause the send when a
    guardrail trips (and raise an alert saying why). Returns what tripped, or None."""
    if send.status is not SendStatus.SENDING:
        return None  # nothing left to stop (done), or stopped already
    trip = _tripped(session, send, policy)
    if trip is None:
        return None
    send.status = SendStatus.PAUSED
    send.pause_reason = trip.reason
    alerts.raise_alert(
        session,
        send.account_id,
        key=_key(send, trip.which),
        kind=PAUSED_KIND,
        title=f"Send “{send.email.subject}” paused",
        body=f"{trip.reason} An administrator can resume or cancel it on the send's page.",
        data={"send_id": send.id, "which": trip.which},
    )
    return trip


def check_after_sent(session: Session, send: Send, policy: Policy) -> Trip | None:
    """After a message was handed over. The rate grows only with a bounce, but the sent count
    may reach the policy's minimum with enough hard bounces in already: counted first (cheap,
    by index) so that a send without them pays nothing more per message."""
    if send.status is not SendStatus.SENDING:
        return None
    hard = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.send_id == send.id, Delivery.state == DeliveryState.BOUNCED_HARD)
    )
    if 100.0 * (hard or 0) <= policy.pause_hard_bounce_percent * policy.pause_after_sent:
        return None  # not enough to pass the limit at any count of sent messages
    return check_send(session, send, policy)


def _tripped(session: Session, send: Send, policy: Policy) -> Trip | None:
    progress = sending.progress(session, send.account_id, send.id)
    sent = progress.total - progress.not_sent - progress.queued
    if sent < policy.pause_after_sent:
        return None
    checks = (
        ("hard_bounce", "hard-bounce", progress.bounced_hard, policy.pause_hard_bounce_percent),
        ("complaint", "complaint", progress.complaints, policy.pause_complaint_percent),
    )
    for which, words, count, limit in checks:
        rate = 100.0 * count / sent
        if rate > limit and not alerts.ever_raised(session, send.account_id, _key(send, which)):
            return Trip(
                which,
                f"The {words} rate is {rate:.1f}% ({count} of {sent} sent), above this "
                f"account's limit of {limit:g}%.",
            )
    return None


def _key(send: Send, which: str) -> str:
    return f"{PAUSED_KIND}:{send.id}:{which}"


def _close_alerts(session: Session, send: Send) -> None:
    for which in ("hard_bounce", "complaint"):
        alerts.resolve(session, send.account_id, _key(send, which))
