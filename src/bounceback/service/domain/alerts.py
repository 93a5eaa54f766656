"""Alerts: problems on the sending side that the account must act on. One open alert per key, so
that a problem seen a thousand times is one alert with a count, not a thousand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bounceback.service.db.models import Alert, utcnow


def open_alert(session: Session, account_id: int, key: str) -> Alert | None:
    return session.scalar(
        select(Alert).where(
            Alert.account_id == account_id, Alert.key == key, Alert.resolved_at.is_(None)
        )
    )


def ever_raised(session: Session, account_id: int, key: str) -> list[Alert]:
    """Every alert with this key, open or resolved (what was decided about it before)."""
    return list(
        session.scalars(
            select(Alert).where(Alert.account_id == account_id, Alert.key == key).order_by(Alert.id)
        ).all()
    )


def raise_alert(
    session: Session,
    account_id: int,
    *,
    key: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
) -> Alert:
    """Open an alert, or return the open one with this key unchanged."""
    existing = open_alert(session, account_id, key)
    if existing is not None:
        return existing
    alert = Alert(
        account_id=account_id,
        kind=kind,
        key=key,
        title=title[:300],
        body=body,
        data=data or {},
    )
    session.add(alert)
    session.flush()
    return alert


def resolve(session: Session, account_id: int, key: str) -> int:
    """Close the open alert with this key (its problem was dealt with); how many were closed."""
    alert = open_alert(session, account_id, key)
    if alert is None:
        return 0
    alert.resolved_at = utcnow()
    return 1
