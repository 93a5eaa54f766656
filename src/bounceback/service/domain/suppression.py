"""Suppressions (per account and global), the "Not sent" decision, and the audited unbounce.

INTERFACE (being implemented by the lead; signatures are the contract).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bounceback.service.db.models import NotSentReason, Suppression


def not_sent_reason(session: Session, account_id: int, email: str) -> NotSentReason | None:
    """Why a marketing email must not go to ``email`` in this account, or None if it may."""
    raise NotImplementedError


def list_suppressions(session: Session, account_id: int, query: str = "", limit: int = 50,
                      offset: int = 0) -> tuple[list[Suppression], int]:
    """Active suppressions that apply to this account (its own and global), searchable."""
    raise NotImplementedError


def unbounce(session: Session, account_id: int, contact_id: int, user_id: int, note: str
             ) -> Suppression:
    """Lift the contact's account bounce (admins only, note required, audited; refused for
    global, unknown_user and invalid_domain bounces and more than once in 30 days)."""
    raise NotImplementedError
