"""Which delivery a bounce answers.

In order: the signed VERP token (the address the bounce was delivered to, the DSN's
Original-Envelope-ID, or our X-Bounceback-Delivery header in the returned message); then our
Message-ID in the returned message; then, only for bounces posted by an account's own systems
(trusted), the recipient address against that account's recent deliveries.

A forged bounce can name no delivery: tokens are HMAC-signed, Message-IDs carry a random part,
and a token or Message-ID only matches when the bounce's recipient is that delivery's address
(a replayed token with another address matches nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bounceback.core.report import RecipientResult, Report
from bounceback.service.db.models import Delivery, DeliveryState, utcnow
from bounceback.service.domain import verp

RECENT = timedelta(days=30)


@dataclass(frozen=True)
class Match:
    delivery: Delivery
    by: str  # "verp", "envid", "header", "message-id", "recipient"


def signed_deliveries(report: Report, secret: str, envelope_to: str = "") -> tuple[set[int], bool]:
    """Delivery ids named by verified tokens, and whether some token failed verification."""
    tokens = [
        verp.token_of(envelope_to),
        verp.token_of(report.return_path),
        report.original.envelope_id,
        report.original.header("X-Bounceback-Delivery"),
    ]
    ids: set[int] = set()
    forged = False
    for token in filter(None, (t.strip() for t in tokens)):
        delivery_id = verp.verify_token(secret, token)
        if delivery_id is None:
            forged = True
        else:
            ids.add(delivery_id)
    return ids, forged


def match_recipient(
    session: Session,
    recipient: RecipientResult,
    report: Report,
    signed: set[int],
    *,
    trusted_account: int | None = None,
) -> Match | None:
    """The delivery this recipient's failure belongs to, or None."""
    addresses = {a.strip().lower() for a in (recipient.address, recipient.original_recipient) if a}
    single = len(report.recipients) == 1
    for delivery_id in sorted(signed):
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or _foreign(delivery, trusted_account):
            continue
        # The token names the delivery; the bounce must be about its address. A lone recipient
        # whose address was rewritten on the way (forwarding) still matches.
        if delivery.email in addresses or (single and not addresses):
            return Match(delivery, "verp")
    message_id = report.original.message_id.strip()
    if message_id:
        delivery = session.scalar(select(Delivery).where(Delivery.message_id == message_id))
        if (
            delivery is not None
            and delivery.email in addresses
            and not _foreign(delivery, trusted_account)
        ):
            return Match(delivery, "message-id")
    if trusted_account is not None and addresses:
        delivery = session.scalar(
            select(Delivery)
            .where(
                Delivery.account_id == trusted_account,
                Delivery.email.in_(addresses),
                Delivery.sent_at >= utcnow() - RECENT,
                Delivery.state != DeliveryState.NOT_SENT,
            )
            .order_by(Delivery.sent_at.desc())
            .limit(1)
        )
        if delivery is not None:
            return Match(delivery, "recipient")
    return None


def _foreign(delivery: Delivery, trusted_account: int | None) -> bool:
    """A bounce posted by one account can never touch another account's delivery."""
    return trusted_account is not None and delivery.account_id != trusted_account
