"""Reading an account's bounce events and raw messages (the API's /bounces). Read-only: intake
writes them. Like every domain function, each filters on the ``account_id`` it reads for.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from bounceback.service.db.models import BounceEvent, Delivery, RawBounce, Send
from bounceback.service.domain.errors import NotFound


def list_events(
    session: Session,
    account_id: int,
    *,
    contact_id: int | None = None,
    email_id: int | None = None,
    send_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[BounceEvent], int]:
    """The account's bounce events, newest first, optionally of one contact, one marketing
    email or one send; and their total. Another account's ids simply match nothing."""
    where: list[ColumnElement[bool]] = [BounceEvent.account_id == account_id]
    if contact_id is not None:
        where.append(BounceEvent.contact_id == contact_id)
    if email_id is not None or send_id is not None:
        deliveries = select(Delivery.id).where(Delivery.account_id == account_id)
        if send_id is not None:
            deliveries = deliveries.where(Delivery.send_id == send_id)
        if email_id is not None:
            deliveries = deliveries.join(Send, Send.id == Delivery.send_id).where(
                Send.email_id == email_id
            )
        where.append(BounceEvent.delivery_id.in_(deliveries))
    total = session.scalar(select(func.count()).select_from(BounceEvent).where(*where)) or 0
    items = session.scalars(
        select(BounceEvent)
        .where(*where)
        .order_by(BounceEvent.created_at.desc(), BounceEvent.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(items), total


def get_raw(session: Session, account_id: int, raw_id: int) -> RawBounce:
    """A raw message the account posted, or one that produced an event of the account."""
    raw = session.scalar(
        select(RawBounce).where(
            RawBounce.id == raw_id,
            or_(
                RawBounce.account_id == account_id,
                RawBounce.id.in_(
                    select(BounceEvent.raw_bounce_id).where(BounceEvent.account_id == account_id)
                ),
            ),
        )
    )
    if raw is None:
        raise NotFound("no such raw bounce")
    return raw


def event_ids_of_raw(session: Session, account_id: int, raw_id: int) -> list[int]:
    """The account's events derived from one raw message."""
    return list(
        session.scalars(
            select(BounceEvent.id)
            .where(BounceEvent.account_id == account_id, BounceEvent.raw_bounce_id == raw_id)
            .order_by(BounceEvent.id)
        ).all()
    )
