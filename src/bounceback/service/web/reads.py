"""Read-only queries the web pages need and the domain modules do not offer (dashboard counts,
alerts, bounce events, the outbox). Like the domain functions, each takes the ``account_id`` it
reads for and filters on it: another account's row is ``NotFound``, never shown.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bounceback.core.taxonomy import Kind
from bounceback.service.db.models import (
    Alert,
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    OutboxMessage,
    RawBounce,
)
from bounceback.service.domain.errors import NotFound
from bounceback.service.domain.sending import Progress


def account_progress(session: Session, account_id: int) -> Progress:
    """The dashboard's counts: every delivery of every send of the account, by state."""
    rows = session.execute(
        select(Delivery.state, func.count())
        .where(Delivery.account_id == account_id)
        .group_by(Delivery.state)
    ).all()
    by_state = {DeliveryState(state): int(count) for state, count in rows}
    complaints = (
        session.scalar(
            select(func.count())
            .select_from(BounceEvent)
            .where(BounceEvent.account_id == account_id, BounceEvent.kind == Kind.COMPLAINT.value)
        )
        or 0
    )
    return Progress(
        total=sum(by_state.values()),
        queued=by_state.get(DeliveryState.QUEUED, 0),
        sent=by_state.get(DeliveryState.SENT, 0),
        delivered=by_state.get(DeliveryState.DELIVERED, 0),
        pending=by_state.get(DeliveryState.PENDING, 0),
        bounced_hard=by_state.get(DeliveryState.BOUNCED_HARD, 0),
        bounced_soft=by_state.get(DeliveryState.BOUNCED_SOFT, 0),
        not_sent=by_state.get(DeliveryState.NOT_SENT, 0),
        complaints=complaints,
    )


def open_alerts(session: Session, account_id: int, limit: int = 20) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.account_id == account_id, Alert.resolved_at.is_(None))
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        ).all()
    )


def bounce_event(session: Session, account_id: int, event_id: int) -> tuple[BounceEvent, RawBounce]:
    """A bounce event of the account and the raw message it came from."""
    event = session.get(BounceEvent, event_id)
    if event is None or event.account_id != account_id:
        raise NotFound("no such bounce")
    raw = session.get(RawBounce, event.raw_bounce_id)
    if raw is None:  # the foreign key makes this impossible; say so rather than crash
        raise NotFound("the raw message of this bounce is missing")
    return event, raw


def latest_events(session: Session, account_id: int, delivery_ids: Iterable[int]) -> dict[int, int]:
    """For each delivery, the id of its latest bounce event (to link the Recipients tab rows)."""
    ids = list(delivery_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(BounceEvent.delivery_id, func.max(BounceEvent.id))
        .where(BounceEvent.account_id == account_id, BounceEvent.delivery_id.in_(ids))
        .group_by(BounceEvent.delivery_id)
    ).all()
    return {int(delivery): int(event) for delivery, event in rows if delivery is not None}


def contact_events(
    session: Session, account_id: int, contact_id: int, limit: int = 20
) -> list[BounceEvent]:
    """The contact's latest bounce events (complaints and auto-replies included)."""
    return list(
        session.scalars(
            select(BounceEvent)
            .where(BounceEvent.account_id == account_id, BounceEvent.contact_id == contact_id)
            .order_by(BounceEvent.created_at.desc(), BounceEvent.id.desc())
            .limit(limit)
        ).all()
    )


def contact_ids(session: Session, account_id: int, emails: Iterable[str]) -> dict[str, int]:
    """The account's contact id for each of these addresses that is one of its contacts."""
    wanted = {e.strip().lower() for e in emails}
    if not wanted:
        return {}
    rows = session.execute(
        select(Contact.email, Contact.id).where(
            Contact.account_id == account_id, Contact.email.in_(wanted)
        )
    ).all()
    return {email: int(cid) for email, cid in rows}


def outbox(
    session: Session, account_id: int, limit: int = 20, offset: int = 0
) -> tuple[list[OutboxMessage], int]:
    """The messages the sandbox 'sent' for the account, newest first, and their total."""
    where = OutboxMessage.account_id == account_id
    total = session.scalar(select(func.count()).select_from(OutboxMessage).where(where)) or 0
    rows = session.scalars(
        select(OutboxMessage)
        .where(where)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total
