"""Marketing emails and their sends: create, start, progress, recipients.

A send fixes its recipients when it is created: one Delivery per contact, ``queued`` or
``not_sent`` with the reason (suppressed, unsubscribed, complained). Starting it enqueues one
``deliver`` job per queued delivery; the worker (``service/worker.py``) hands each to the relay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, distinct, func, insert, or_, select
from sqlalchemy.orm import Session

from bounceback.service import jobs
from bounceback.service.db.models import (
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Email,
    Send,
    SendStatus,
    utcnow,
)
from bounceback.service.domain import suppression
from bounceback.service.domain.contacts import normalize_email
from bounceback.service.domain.errors import Conflict, Invalid, NotFound

DELIVER = "deliver"
MAX_SUBJECT = 998  # RFC 5322 line limit
_STARTABLE = (SendStatus.DRAFT, SendStatus.SCHEDULED)


def to_hand_over() -> ColumnElement[bool]:
    """Deliveries bounceback still has to hand to the relay: queued ones, and those the relay
    itself deferred (pending, never accepted). A message the relay accepted and later reported
    delayed is pending too, but the relay retries it, not us: sending it again would double it.
    A send is done when none is left."""
    return or_(
        Delivery.state == DeliveryState.QUEUED,
        and_(Delivery.state == DeliveryState.PENDING, Delivery.sent_at.is_(None)),
    )


@dataclass(frozen=True)
class Progress:
    """Counts of a send's deliveries by state, and the bounce rate over those sent."""

    total: int
    queued: int
    sent: int
    delivered: int
    pending: int
    bounced_hard: int
    bounced_soft: int
    not_sent: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        handed = self.total - self.not_sent - self.queued
        return (self.bounced_hard + self.bounced_soft) / handed if handed else 0.0


def create_email(
    session: Session,
    account_id: int,
    *,
    from_address: str,
    subject: str,
    html: str = "",
    text: str = "",
    from_name: str = "",
) -> Email:
    """A marketing email. It needs a sender, a subject and a body (HTML, text or both)."""
    sender = normalize_email(from_address)
    subject = " ".join(subject.split())  # no line breaks: they would forge headers
    if not subject:
        raise Invalid("an email needs a subject")
    if len(subject) > MAX_SUBJECT:
        raise Invalid(f"the subject is longer than {MAX_SUBJECT} characters")
    if not html.strip() and not text.strip():
        raise Invalid("an email needs an HTML or a text body")
    email = Email(
        account_id=account_id,
        from_address=sender,
        from_name=" ".join(from_name.split())[:200],
        subject=subject,
        html=html,
        text=text,
    )
    session.add(email)
    session.flush()
    return email


def get_email(session: Session, account_id: int, email_id: int) -> Email:
    email = session.get(Email, email_id)
    if email is None or email.account_id != account_id:
        raise NotFound("no such email")
    return email


def create_send(
    session: Session,
    account_id: int,
    email_id: int,
    *,
    contact_ids: list[int] | None = None,
    scheduled_at: datetime | None = None,
    created_by_id: int | None = None,
) -> Send:
    """A send of the email to these contacts (None: every contact of the account). One Delivery
    row per contact is created in state queued, or not_sent with its NotSentReason."""
    get_email(session, account_id, email_id)
    contacts = _recipients(session, account_id, contact_ids)
    if not contacts:
        raise Invalid("a send needs at least one contact")
    send = Send(
        account_id=account_id,
        email_id=email_id,
        status=SendStatus.SCHEDULED if scheduled_at else SendStatus.DRAFT,
        scheduled_at=scheduled_at,
        created_by_id=created_by_id,
    )
    session.add(send)
    session.flush()
    not_sent = suppression.not_sent_reasons(session, account_id, contacts)
    rows = [
        {
            "account_id": account_id,
            "send_id": send.id,
            "contact_id": contact.id,
            "email": contact.email,
            "state": DeliveryState.NOT_SENT if contact.id in not_sent else DeliveryState.QUEUED,
            "not_sent_reason": not_sent.get(contact.id),
        }
        for contact in contacts
    ]
    session.execute(insert(Delivery), rows)  # one bulk insert (executemany), not one per row
    return send


def _recipients(session: Session, account_id: int, contact_ids: list[int] | None) -> list[Contact]:
    """The contacts of a send, each once; ids of another account's contacts are refused."""
    query = select(Contact).where(Contact.account_id == account_id)
    if contact_ids is None:
        return list(session.scalars(query.order_by(Contact.id)).all())
    wanted = set(contact_ids)
    found = list(session.scalars(query.where(Contact.id.in_(wanted)).order_by(Contact.id)).all())
    missing = wanted - {c.id for c in found}
    if missing:
        raise NotFound(f"no such contact: {min(missing)}")
    return found


def start_send(session: Session, account_id: int, send_id: int) -> Send:
    """Mark the send sending (or scheduled) and enqueue a delivery job per queued recipient;
    a scheduled send's jobs run at its scheduled time. A paused send is resumed
    (``resume_send``)."""
    send = get_send(session, account_id, send_id)
    if send.status is SendStatus.PAUSED:
        return resume_send(session, account_id, send_id)
    if send.status not in _STARTABLE:
        raise Conflict(f"the send is {send.status.value}; it cannot be started")
    _schedule(send)
    _enqueue_open(session, send, suffix="")
    return send


def resume_send(session: Session, account_id: int, send_id: int) -> Send:
    """Continue a paused send: the deliveries still to hand over get jobs again, each due when
    its retry is. A delivery is never sent twice: the worker claims each before sending it."""
    send = get_send(session, account_id, send_id)
    if send.status is not SendStatus.PAUSED:
        raise Conflict(f"the send is {send.status.value}; only a paused send can be resumed")
    send.pause_reason = ""
    _schedule(send)
    _enqueue_open(session, send, suffix=f":resume:{utcnow().timestamp()}")
    return send


def _schedule(send: Send) -> None:
    now = utcnow()
    if send.scheduled_at and _aware(send.scheduled_at) > now:
        send.status = SendStatus.SCHEDULED
    else:
        send.status = SendStatus.SENDING
        send.started_at = send.started_at or now


def _enqueue_open(session: Session, send: Send, *, suffix: str) -> None:
    now = utcnow()
    scheduled = send.scheduled_at if send.status is SendStatus.SCHEDULED else None
    start = _aware(scheduled) if scheduled else now
    rows = session.execute(
        select(Delivery.id, Delivery.next_attempt_at)
        .where(Delivery.send_id == send.id, to_hand_over())
        .order_by(Delivery.id)
    ).all()
    jobs.enqueue_many(
        session,
        DELIVER,
        [
            (
                {"delivery_id": delivery_id},
                f"deliver:{delivery_id}{suffix}",
                max(start, _aware(next_attempt)) if next_attempt else start,
            )
            for delivery_id, next_attempt in rows
        ],
    )
    if not rows:
        finish_if_done(session, send)
    session.flush()


def finish_if_done(session: Session, send: Send) -> bool:
    """Mark the send done once nothing is left to hand to the relay."""
    if send.status not in (SendStatus.SENDING, SendStatus.SCHEDULED):
        return False
    open_left = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.send_id == send.id, to_hand_over())
    )
    if open_left:
        return False
    send.status = SendStatus.DONE
    send.finished_at = utcnow()
    return True


def get_send(session: Session, account_id: int, send_id: int) -> Send:
    send = session.get(Send, send_id)
    if send is None or send.account_id != account_id:
        raise NotFound("no such send")
    return send


def list_sends(
    session: Session, account_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[Send], int]:
    """The account's sends, newest first, and their total."""
    where = Send.account_id == account_id
    total = session.scalar(select(func.count()).select_from(Send).where(where)) or 0
    items = session.scalars(
        select(Send).where(where).order_by(Send.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(items), total


def progress(session: Session, account_id: int, send_id: int) -> Progress:
    send = get_send(session, account_id, send_id)
    rows = session.execute(
        select(Delivery.state, func.count())
        .where(Delivery.send_id == send.id)
        .group_by(Delivery.state)
    ).all()
    counts = {DeliveryState(state): int(n) for state, n in rows}
    complaints = session.scalar(
        select(func.count(distinct(BounceEvent.delivery_id)))
        .join(Delivery, Delivery.id == BounceEvent.delivery_id)
        .where(
            Delivery.send_id == send.id,
            BounceEvent.account_id == account_id,
            BounceEvent.kind == "complaint",
        )
    )
    return Progress(
        total=sum(counts.values()),
        complaints=int(complaints or 0),
        **{state.value: counts.get(state, 0) for state in DeliveryState},
    )


def recipients(
    session: Session,
    account_id: int,
    send_id: int,
    *,
    states: list[DeliveryState] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Delivery], int]:
    """The send's deliveries (optionally only in these states) in a stable order, and the total."""
    send = get_send(session, account_id, send_id)
    where = [Delivery.send_id == send.id, Delivery.account_id == account_id]
    if states:
        where.append(Delivery.state.in_(states))
    total = session.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0
    items = session.scalars(
        select(Delivery).where(*where).order_by(Delivery.id).limit(limit).offset(offset)
    ).all()
    return list(items), total


def _aware(value: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
