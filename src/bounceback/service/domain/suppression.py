"""Suppressions (per account and global), the "Not sent" decision, and the audited unbounce.

A suppression is active while ``lifted_at`` is empty. Account rows have the account's id; a
global bounce has ``account_id`` None and applies to every account.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, distinct, func, or_, select
from sqlalchemy.orm import Session

from bounceback.service.db.models import (
    Account,
    BounceEvent,
    Contact,
    NotSentReason,
    Role,
    Suppression,
    SuppressionReason,
    UnbounceAudit,
    User,
    utcnow,
)
from bounceback.service.domain.contacts import add_timeline, get_contact
from bounceback.service.domain.errors import Conflict, Forbidden, Invalid
from bounceback.service.domain.policy import GLOBAL_CATEGORIES, NOT_LIFTABLE, policy_for

_NOT_SENT = {
    SuppressionReason.HARD_BOUNCE: NotSentReason.ACCOUNT_BOUNCE,
    SuppressionReason.COMPLAINT: NotSentReason.COMPLAINED,
    SuppressionReason.UNSUBSCRIBE: NotSentReason.UNSUBSCRIBED,
    SuppressionReason.GLOBAL_BOUNCE: NotSentReason.GLOBAL_BOUNCE,
}
# When several suppressions apply, the one a user can do least about is shown.
_PRECEDENCE = (
    SuppressionReason.GLOBAL_BOUNCE,
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.COMPLAINT,
    SuppressionReason.UNSUBSCRIBE,
)


def _active(account_id: int, email: str) -> Select[Suppression]:
    return select(Suppression).where(
        Suppression.email == email.strip().lower(),
        Suppression.lifted_at.is_(None),
        or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)),
    )


def active_suppressions(session: Session, account_id: int, email: str) -> list[Suppression]:
    return list(session.scalars(_active(account_id, email)).all())


def not_sent_reason(session: Session, account_id: int, email: str) -> NotSentReason | None:
    """Why a marketing email must not go to ``email`` in this account, or None if it may."""
    rows = active_suppressions(session, account_id, email)
    reason = _strongest({row.reason for row in rows})
    if reason is not None:
        return reason
    contact = session.scalar(
        select(Contact).where(
            Contact.account_id == account_id, Contact.email == email.strip().lower()
        )
    )
    if contact is not None and contact.unsubscribed_at is not None:
        return NotSentReason.UNSUBSCRIBED
    return None


def _strongest(reasons: set[SuppressionReason]) -> NotSentReason | None:
    for reason in _PRECEDENCE:
        if reason in reasons:
            return _NOT_SENT[reason]
    return None


CHUNK = 500  # addresses per query (well under every database's parameter limit)


def not_sent_reasons(
    session: Session, account_id: int, contacts: Sequence[Contact]
) -> dict[int, NotSentReason]:
    """``not_sent_reason`` for many contacts of the account at once (one query per 500): the
    contact ids that must not get a marketing email, and why."""
    suppressed: dict[str, set[SuppressionReason]] = {}
    addresses = sorted({c.email.strip().lower() for c in contacts})
    for start in range(0, len(addresses), CHUNK):
        rows = session.execute(
            select(Suppression.email, Suppression.reason).where(
                Suppression.email.in_(addresses[start : start + CHUNK]),
                Suppression.lifted_at.is_(None),
                or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)),
            )
        ).all()
        for address, reason in rows:
            suppressed.setdefault(address, set()).add(reason)
    reasons: dict[int, NotSentReason] = {}
    for contact in contacts:
        why = _strongest(suppressed.get(contact.email.strip().lower(), set()))
        if why is None and contact.unsubscribed_at is not None:
            why = NotSentReason.UNSUBSCRIBED
        if why is not None:
            reasons[contact.id] = why
    return reasons


def suppress(
    session: Session,
    account_id: int | None,
    email: str,
    reason: SuppressionReason,
    *,
    category: str = "",
    detail: str = "",
    event_id: int | None = None,
) -> Suppression:
    """Suppress ``email`` (in one account, or everywhere with ``account_id`` None); an active
    suppression for the same reason is kept, not doubled."""
    address = email.strip().lower()
    scope = (
        Suppression.account_id.is_(None)
        if account_id is None
        else Suppression.account_id == account_id
    )
    existing = session.scalar(
        select(Suppression).where(
            scope,
            Suppression.email == address,
            Suppression.reason == reason,
            Suppression.lifted_at.is_(None),
        )
    )
    if existing is not None:
        return existing
    row = Suppression(
        account_id=account_id,
        email=address,
        reason=reason,
        category=category,
        detail=detail[:4000],
        event_id=event_id,
    )
    session.add(row)
    session.flush()
    return row


def check_global(
    session: Session, email: str, *, accounts: int = 3, days: int = 60
) -> Suppression | None:
    """Make ``email`` a global bounce when it hard-bounced as unknown_user or invalid_domain in
    ``accounts`` or more accounts within ``days`` days."""
    since = utcnow() - timedelta(days=days)
    count = (
        session.scalar(
            select(func.count(distinct(BounceEvent.account_id))).where(
                BounceEvent.email == email.strip().lower(),
                BounceEvent.hard.is_(True),
                BounceEvent.category.in_(GLOBAL_CATEGORIES),
                # Bounces found in users' inboxes (one-to-one email) do not make global bounces.
                ~BounceEvent.matched_by.startswith("inbox:"),
                BounceEvent.created_at >= since,
            )
        )
        or 0
    )
    if count < accounts:
        return None
    return suppress(
        session,
        None,
        email,
        SuppressionReason.GLOBAL_BOUNCE,
        detail=f"hard-bounced as an unknown address in {count} accounts",
    )


def list_suppressions(
    session: Session, account_id: int, query: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[Suppression], int]:
    """Active suppressions that apply to this account (its own and global), searchable."""
    where = [
        Suppression.lifted_at.is_(None),
        or_(
            Suppression.account_id == account_id,
            and_(Suppression.account_id.is_(None), _contact_in(account_id)),
        ),
    ]
    if query.strip():
        where.append(Suppression.email.like(f"%{query.strip().lower()}%"))
    total = session.scalar(select(func.count()).select_from(Suppression).where(*where)) or 0
    rows = session.scalars(
        select(Suppression)
        .where(*where)
        .order_by(Suppression.created_at.desc(), Suppression.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def _contact_in(account_id: int) -> ColumnElement[bool]:
    """Global rows are listed in an account only for its own contacts."""
    return Suppression.email.in_(select(Contact.email).where(Contact.account_id == account_id))


def unbounce(
    session: Session, account_id: int, contact_id: int, user_id: int, note: str
) -> Suppression:
    """Lift the contact's account bounce (taxonomy section 3): admins only, a note required,
    audited; refused for global bounces, unknown_user and invalid_domain bounces, and more than
    once in 30 days. A new hard bounce re-suppresses the contact at once."""
    user = session.get(User, user_id)
    if user is None or user.account_id != account_id or user.role is not Role.ADMIN:
        raise Forbidden("only an administrator of this account can unbounce a contact")
    if not note.strip():
        raise Invalid("say why the contact is unbounced: a note is required")
    contact = get_contact(session, account_id, contact_id)
    rows = active_suppressions(session, account_id, contact.email)
    if any(row.reason is SuppressionReason.GLOBAL_BOUNCE for row in rows):
        raise Forbidden("a global bounce cannot be lifted by an account")
    bounce = next(
        (
            r
            for r in rows
            if r.reason is SuppressionReason.HARD_BOUNCE and r.account_id == account_id
        ),
        None,
    )
    if bounce is None:
        raise Conflict("this contact has no bounce to lift")
    if bounce.category in NOT_LIFTABLE:
        raise Forbidden(
            "the address does not exist (unknown user or invalid domain): it cannot be unbounced"
        )
    account = session.get(Account, account_id)
    every = policy_for(account.policy if account else None).unbounce_every_days
    last = contact.last_unbounced_at
    if last is not None and _aware(last) > utcnow() - timedelta(days=every):
        raise Conflict(f"this contact was unbounced less than {every} days ago")
    now = utcnow()
    bounce.lifted_at, bounce.lifted_by_id, bounce.lift_note = now, user_id, note.strip()
    contact.hard_bounce_reason = ""
    contact.last_unbounced_at = now
    session.add(
        UnbounceAudit(
            account_id=account_id,
            contact_id=contact.id,
            suppression_id=bounce.id,
            user_id=user_id,
            note=note.strip(),
        )
    )
    add_timeline(
        session,
        account_id,
        contact.id,
        "unbounced",
        f"Unbounced by {user.email}: {note.strip()}",
        data={"suppression": bounce.id},
    )
    session.flush()
    return bounce


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: read them as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
