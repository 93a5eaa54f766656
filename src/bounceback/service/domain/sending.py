"""Marketing emails and their sends: create, start, progress, recipients, resend.

INTERFACE (to be implemented; signatures are the contract the web layer codes against).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bounceback.service.db.models import Delivery, DeliveryState, Email, Send


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


def create_email(session: Session, account_id: int, *, from_address: str, subject: str,
                 html: str = "", text: str = "", from_name: str = "") -> Email:
    raise NotImplementedError


def get_email(session: Session, account_id: int, email_id: int) -> Email:
    raise NotImplementedError


def create_send(session: Session, account_id: int, email_id: int, *,
                contact_ids: list[int] | None = None, scheduled_at: datetime | None = None,
                created_by_id: int | None = None) -> Send:
    """A send of the email to these contacts (None: every contact of the account). One Delivery
    row per contact is created in state queued, or not_sent with its NotSentReason."""
    raise NotImplementedError


def start_send(session: Session, account_id: int, send_id: int) -> Send:
    """Mark the send sending and enqueue a delivery job per queued recipient."""
    raise NotImplementedError


def get_send(session: Session, account_id: int, send_id: int) -> Send:
    raise NotImplementedError


def list_sends(session: Session, account_id: int, limit: int = 50, offset: int = 0
               ) -> tuple[list[Send], int]:
    raise NotImplementedError


def progress(session: Session, account_id: int, send_id: int) -> Progress:
    raise NotImplementedError


def recipients(session: Session, account_id: int, send_id: int, *,
               states: list[DeliveryState] | None = None, limit: int = 50, offset: int = 0
               ) -> tuple[list[Delivery], int]:
    raise NotImplementedError
