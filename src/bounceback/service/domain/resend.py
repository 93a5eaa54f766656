"""Resend to soft-bounced: one action on a send makes a clone of its email (the subject and the
bodies may be changed on the way) and a new send of it to the send's soft-bounced recipients who
may still be sent to, now or at a scheduled time.

The clone is a send of its own (``Send.resend_of_id`` names the original, ``Email.cloned_from_id``
the original email) with its own recipients. Eligible: soft-bounced in the original send, not
suppressed or unsubscribed since, and not in an earlier resend of the same send (one not
cancelled): a recipient whose resend soft-bounces again is reached by resending that resend.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from bounceback.service.db.models import (
    Contact,
    Delivery,
    DeliveryState,
    Send,
    SendStatus,
    Suppression,
)
from bounceback.service.domain import sending
from bounceback.service.domain.errors import Conflict


def _eligible(account_id: int, send_id: int) -> Select[Delivery]:
    earlier = aliased(Delivery)
    resent = aliased(Send)
    suppressed = exists().where(
        Suppression.email == Delivery.email,
        Suppression.lifted_at.is_(None),
        or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)),
    )
    unsubscribed = exists().where(
        Contact.id == Delivery.contact_id, Contact.unsubscribed_at.is_not(None)
    )
    in_a_resend = exists().where(
        earlier.contact_id == Delivery.contact_id,
        earlier.send_id == resent.id,
        and_(resent.resend_of_id == send_id, resent.status != SendStatus.CANCELLED),
    )
    return select(Delivery).where(
        Delivery.account_id == account_id,
        Delivery.send_id == send_id,
        Delivery.state == DeliveryState.BOUNCED_SOFT,
        ~suppressed,
        ~unsubscribed,
        ~in_a_resend,
    )


def eligible(session: Session, account_id: int, send_id: int) -> list[Delivery]:
    """The send's soft-bounced deliveries whose contacts a resend would go to."""
    send = sending.get_send(session, account_id, send_id)
    return list(session.scalars(_eligible(account_id, send.id).order_by(Delivery.id)).all())


def eligible_count(session: Session, account_id: int, send_id: int) -> int:
    """How many contacts "Resend to soft-bounced" would send to now (shown before doing it)."""
    send = sending.get_send(session, account_id, send_id)
    query = _eligible(account_id, send.id).with_only_columns(func.count(Delivery.id))
    return int(session.scalar(query) or 0)


def resend_soft_bounced(
    session: Session,
    account_id: int,
    send_id: int,
    *,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    scheduled_at: datetime | None = None,
    start: bool = True,
    created_by_id: int | None = None,
) -> Send:
    """Clone the send's email (with the given changes; None keeps the original's) and send it
    to the eligible soft-bounced recipients: started at once (or at ``scheduled_at``) when
    ``start``, else left a draft to start later."""
    original = sending.get_send(session, account_id, send_id)
    recipients = eligible(session, account_id, original.id)
    if not recipients:
        raise Conflict("no soft-bounced recipient of this send can be sent to again")
    source = original.email
    clone = sending.create_email(
        session,
        account_id,
        from_address=source.from_address,
        from_name=source.from_name,
        subject=source.subject if subject is None else subject,
        html=source.html if html is None else html,
        text=source.text if text is None else text,
    )
    clone.cloned_from_id = source.id
    send = sending.create_send(
        session,
        account_id,
        clone.id,
        contact_ids=[d.contact_id for d in recipients],
        scheduled_at=scheduled_at,
        created_by_id=created_by_id,
    )
    send.resend_of_id = original.id
    if start:
        sending.start_send(session, account_id, send.id)
    session.flush()
    return send


def resends_of(session: Session, account_id: int, send_id: int) -> list[Send]:
    """The resends made of this send, oldest first."""
    send = sending.get_send(session, account_id, send_id)
    return list(
        session.scalars(
            select(Send)
            .where(Send.account_id == account_id, Send.resend_of_id == send.id)
            .order_by(Send.id)
        ).all()
    )
