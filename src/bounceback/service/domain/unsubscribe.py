"""Unsubscribing through the link of a marketing email (RFC 8058 one-click, or the page).

The link carries a signed token naming the delivery (``verp.make_token(..., purpose=
"unsubscribe")``); the web layer verifies it and passes the delivery id here. The token is the
only credential: whoever holds the email may unsubscribe its recipient, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bounceback.service.db.models import (
    Account,
    Contact,
    Delivery,
    Email,
    Send,
    SuppressionReason,
    utcnow,
)
from bounceback.service.domain.contacts import add_timeline
from bounceback.service.domain.errors import NotFound
from bounceback.service.domain.suppression import suppress


@dataclass(frozen=True)
class Target:
    """What an unsubscribe link is about, as its confirmation page shows it."""

    delivery_id: int
    account_name: str
    address: str
    subject: str
    unsubscribed: bool


def _rows(session: Session, delivery_id: int, *, lock: bool = False) -> tuple[Delivery, Contact]:
    delivery = session.get(Delivery, delivery_id)
    contact = session.get(Contact, delivery.contact_id, with_for_update=lock) if delivery else None
    if delivery is None or contact is None or contact.account_id != delivery.account_id:
        raise NotFound("this unsubscribe link is not valid")
    return delivery, contact


def target(session: Session, delivery_id: int) -> Target:
    delivery, contact = _rows(session, delivery_id)
    account = session.get(Account, delivery.account_id)
    send = session.get(Send, delivery.send_id)
    email = session.get(Email, send.email_id) if send else None
    return Target(
        delivery_id=delivery.id,
        account_name=account.name if account else "",
        address=contact.email,
        subject=email.subject if email else "",
        unsubscribed=contact.unsubscribed_at is not None,
    )


def unsubscribe(session: Session, delivery_id: int) -> Target:
    """Unsubscribe the delivery's contact from the account's marketing email: the contact is
    marked, the address suppressed in that account, the timeline says so. Idempotent (mail
    clients may post twice)."""
    delivery, contact = _rows(session, delivery_id, lock=True)
    if contact.unsubscribed_at is None:
        contact.unsubscribed_at = utcnow()
        add_timeline(
            session,
            contact.account_id,
            contact.id,
            "unsubscribed",
            "Unsubscribed through the link in a marketing email",
            data={"delivery_id": delivery.id, "send_id": delivery.send_id},
        )
    suppress(
        session,
        contact.account_id,
        contact.email,
        SuppressionReason.UNSUBSCRIBE,
        detail=f"unsubscribe link of send {delivery.send_id}",
    )
    session.flush()
    return target(session, delivery_id)
