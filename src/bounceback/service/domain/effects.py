"""What one recorded event does: the delivery's state, the contact's suppression, its "Email hard
bounce reason", the timeline, global bounces, soft bounces turning hard, and alerts for problems
that are the sender's (taxonomy section 3, with the account's policy).

The lifecycle of one delivery: ``sent`` -> a delay notice makes it ``pending`` -> a success
notice makes it ``delivered``; a failure makes it ``bounced_soft`` or ``bounced_hard`` (a final
failure with a temporary code is a soft bounce of its category). Repeated soft bounces of an
address turn into a hard bounce (``_soft_bounces``). Two neighbours act on the send: many
refusals at one provider are the sender's problem (``providers``), and too many hard bounces or
complaints pause it (``guardrails``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bounceback import Category, Kind
from bounceback.core.report import Report
from bounceback.service import jobs
from bounceback.service.db.models import (
    Account,
    Alert,
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Send,
    SuppressionReason,
    utcnow,
)
from bounceback.service.domain import dnscheck, guardrails, providers
from bounceback.service.domain.contacts import add_timeline
from bounceback.service.domain.policy import SENDER_SIDE_CATEGORIES, Policy, policy_for
from bounceback.service.domain.suppression import check_global, suppress

# A delivery's state never goes back from these (a late delay notice changes nothing).
_FINAL = frozenset({DeliveryState.BOUNCED_HARD, DeliveryState.NOT_SENT})


def apply_event(
    session: Session, event: BounceEvent, report: Report, delivery: Delivery | None
) -> None:
    account = session.get(Account, event.account_id)
    policy = policy_for(account.policy if account else None)
    contact = session.get(Contact, event.contact_id) if event.contact_id else None
    kind = Kind(event.kind)
    if kind is Kind.DELIVERED:
        _set_state(delivery, DeliveryState.DELIVERED, event)
        _timeline(session, event, "delivered", "Delivered")
    elif kind is Kind.DELAY:
        if delivery is not None and delivery.state in (DeliveryState.SENT, DeliveryState.PENDING):
            delivery.state = DeliveryState.PENDING
            delivery.first_deferred_at = delivery.first_deferred_at or utcnow()
            _describe(delivery, event)
        _timeline(session, event, "delayed", f"Delayed: {event.diagnostic[:200]}")
    elif kind is Kind.COMPLAINT:
        suppress(
            session,
            event.account_id,
            event.email,
            SuppressionReason.COMPLAINT,
            category=Category.COMPLAINT.value,
            detail="spam complaint",
            event_id=event.id,
        )
        _timeline(session, event, "complained", "Reported the email as spam")
    elif kind is Kind.BOUNCE:
        _bounce(session, event, policy, contact=contact, delivery=delivery, report=report)
    if delivery is not None and kind in (Kind.BOUNCE, Kind.COMPLAINT):
        send = session.get(Send, delivery.send_id)
        if send is not None:
            guardrails.check_send(session, send, policy)


def _bounce(
    session: Session,
    event: BounceEvent,
    policy: Policy,
    *,
    contact: Contact | None,
    delivery: Delivery | None,
    report: Report,
) -> None:
    blocked = _provider_blocks(session, event, delivery, policy)
    if blocked or event.sender_side or event.category in SENDER_SIDE_CATEGORIES:
        _sender_side(session, event, delivery, report, alert=not blocked)
    else:
        _contact_bounce(session, event, policy, contact=contact, delivery=delivery)


def _provider_blocks(
    session: Session, event: BounceEvent, delivery: Delivery | None, policy: Policy
) -> bool:
    """Whether this refusal belongs to a provider refusing the sender in this send: one known
    already, or one that this refusal brings past the policy's thresholds (``providers``)."""
    provider = providers.candidate(event, delivery)
    if provider is None or delivery is None:
        return False
    if providers.is_blocked(session, event.account_id, delivery.send_id, provider):
        providers.note_bounce(session, event, provider)
        return True
    return providers.check(session, event, delivery.send_id, provider, policy)


def _sender_side(
    session: Session,
    event: BounceEvent,
    delivery: Delivery | None,
    report: Report,
    *,
    alert: bool,
) -> None:
    """Not the contact's problem: a soft bounce that counts against no one, and an alert."""
    event.sender_side = True
    _set_state(delivery, DeliveryState.BOUNCED_SOFT, event)
    if alert:
        _alert_sender_side(session, event, report)
    label = Category(event.category).label
    _timeline(session, event, "bounced", f"Not delivered (sender-side problem): {label}")


def _contact_bounce(
    session: Session,
    event: BounceEvent,
    policy: Policy,
    *,
    contact: Contact | None,
    delivery: Delivery | None,
) -> None:
    """A bounce that is the contact's: soft, or hard (suppressed, "Email hard bounce reason")."""
    label = Category(event.category).label
    hard = policy.suppresses(event.category, event.hard)
    if not hard and _soft_bounces(session, event, policy) >= policy.soft_to_hard_count:
        hard = True  # repeated soft bounces: a hard bounce of the same category
        event.hard = True
    if not hard:
        _set_state(delivery, DeliveryState.BOUNCED_SOFT, event)
        _timeline(session, event, "bounced", f"Soft bounce – {label}: {event.diagnostic[:300]}")
        return
    _set_state(delivery, DeliveryState.BOUNCED_HARD, event)
    suppress(
        session,
        event.account_id,
        event.email,
        SuppressionReason.HARD_BOUNCE,
        category=event.category,
        detail=event.diagnostic,
        event_id=event.id,
    )
    if contact is not None:
        contact.hard_bounce_reason = f"{label}: {event.diagnostic}"[:2000]
    _timeline(session, event, "bounced", f"Hard bounce – {label}: {event.diagnostic[:300]}")
    check_global(session, event.email, accounts=policy.global_accounts, days=policy.global_days)


def _soft_bounces(session: Session, event: BounceEvent, policy: Policy) -> int:
    """Soft bounces of this address in the account within the period, since its last delivery
    (a delivery resets the count), this one included."""
    since = utcnow() - timedelta(days=policy.soft_to_hard_days)
    last_delivered = session.scalar(
        select(func.max(BounceEvent.created_at)).where(
            BounceEvent.account_id == event.account_id,
            BounceEvent.email == event.email,
            BounceEvent.kind == Kind.DELIVERED.value,
        )
    )
    if last_delivered is not None:
        since = max(since, _aware(last_delivered))
    return (
        session.scalar(
            select(func.count(func.distinct(BounceEvent.delivery_id))).where(
                BounceEvent.account_id == event.account_id,
                BounceEvent.email == event.email,
                BounceEvent.kind == Kind.BOUNCE.value,
                BounceEvent.sender_side.is_(False),
                BounceEvent.created_at >= since,
            )
        )
        or 0
    )


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: read them as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _set_state(delivery: Delivery | None, state: DeliveryState, event: BounceEvent) -> None:
    if delivery is None or delivery.state in _FINAL:
        return
    if delivery.state is DeliveryState.BOUNCED_SOFT and state is DeliveryState.DELIVERED:
        return  # a success notice after a failure of the same message is not believed
    delivery.state = state
    if state is DeliveryState.DELIVERED:
        # The success notice's answer replaces what an earlier delay notice said.
        delivery.category = delivery.reason = ""
        delivery.response = event.diagnostic or delivery.response
    else:
        _describe(delivery, event)


def _describe(delivery: Delivery, event: BounceEvent) -> None:
    delivery.category = event.category
    delivery.reason = event.reason
    delivery.response = event.diagnostic


def _timeline(session: Session, event: BounceEvent, kind: str, summary: str) -> None:
    if event.contact_id is not None:
        add_timeline(
            session,
            event.account_id,
            event.contact_id,
            kind,
            summary,
            data={"event": event.id, "delivery": event.delivery_id, "category": event.category},
        )


def _alert_sender_side(session: Session, event: BounceEvent, report: Report) -> None:
    """One open alert per problem: DMARC refusals (per sending domain) and our own relay
    refusing the envelope sender are the sender's to fix, not the contacts'."""
    if event.category != Category.DMARC_UNAUTHORIZED.value:
        _alert(
            session,
            event,
            key=f"sender:{event.remote_mta}",
            kind="sender_refused",
            title=f"The relay {event.remote_mta} refuses the sender address of your email",
            body="Check the From address and the relay's settings (allowed senders, login). "
            f"The relay answered: {event.diagnostic[:500]}",
        )
        return
    domain = report.original.from_.rpartition("@")[2].strip(" >").lower() or "your domain"
    key = f"dmarc:{domain}"
    existing = session.scalar(
        select(Alert).where(
            Alert.account_id == event.account_id, Alert.key == key, Alert.resolved_at.is_(None)
        )
    )
    if existing is not None:
        existing.data = {**existing.data, "count": int(existing.data.get("count", 1)) + 1}
        return
    alert = Alert(
        account_id=event.account_id,
        kind="dmarc_unauthorized",
        key=key,
        title=f"Receivers refuse email from {domain}: this service is not authorized to send "
        "for it",
        body=(
            f"{Category.DMARC_UNAUTHORIZED.advice}\n\nA receiving server answered: "
            f"{event.diagnostic[:500]}"
        ),
        data={"count": 1, "domain": domain, "remote_mta": event.remote_mta},
    )
    session.add(alert)
    if dnscheck.normalize_domain(domain):  # the worker asks DNS what the domain lacks
        session.flush()
        payload = {"account_id": event.account_id, "domain": domain, "alert_id": alert.id}
        jobs.enqueue(session, dnscheck.DNS_CHECK, payload, key=f"dnscheck:{alert.id}")


def _alert(
    session: Session, event: BounceEvent, *, key: str, kind: str, title: str, body: str
) -> None:
    existing = session.scalar(
        select(Alert).where(
            Alert.account_id == event.account_id, Alert.key == key, Alert.resolved_at.is_(None)
        )
    )
    if existing is not None:
        existing.data = {**existing.data, "count": int(existing.data.get("count", 1)) + 1}
        return
    session.add(
        Alert(
            account_id=event.account_id,
            kind=kind,
            key=key,
            title=title,
            body=body,
            data={"count": 1, "remote_mta": event.remote_mta},
        )
    )
