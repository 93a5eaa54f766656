"""Bounce intake: store the raw message first, then parse, match and apply policy.

INTERFACE (being implemented by the lead; signatures are the contract).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bounceback.service.db.models import Delivery, RawBounce


def store_raw(session: Session, raw: bytes, *, source: str, envelope_from: str = "",
              envelope_to: str = "", account_id: int | None = None) -> tuple[RawBounce, bool]:
    """Keep the message (idempotent by content hash) and enqueue its processing in the same
    transaction. Returns the row and whether it is new. Commit before acknowledging receipt."""
    raise NotImplementedError


def record_rejection(session: Session, delivery: Delivery, *, reply_code: str, response: str,
                     command: str) -> None:
    """The relay refused this recipient during the SMTP transaction (5xx at RCPT or DATA): a
    bounce of that recipient with the server's response, exactly like a later NDR."""
    raise NotImplementedError
