"""Sender-side problems at one receiving provider (taxonomy section 3).

When many recipients of one send at one provider are refused for policy, security-filter or
DMARC reasons, the provider is refusing the *sender* (its IP addresses' or domain's reputation,
its authentication, a link in the email), not those contacts. Such bounces suppress nobody; the
suppressions already made for them are lifted again (audited as automatic), and the account gets
one alert naming the provider, the responses seen and what to do.

A provider is the registrable domain of the remote MTA that refused (``google.com`` for
``gmail-smtp-in.l.google.com``), or the recipient's domain when the report names no host. The
thresholds are the account policy's ``provider_block_min_bounces`` (in the send, at the
provider) and ``provider_block_min_percent`` (of the send's recipients at the provider).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bounceback.core.taxonomy import Category, Kind
from bounceback.service.db.models import (
    Alert,
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Send,
    Suppression,
    SuppressionReason,
    UnbounceAudit,
    utcnow,
)
from bounceback.service.domain import alerts
from bounceback.service.domain.contacts import add_timeline
from bounceback.service.domain.policy import PROVIDER_BLOCK_CATEGORIES, Policy

KIND = "provider_block"
MAX_RESPONSES = 5  # distinct responses quoted in the alert
# Second-level labels under which country domains register names (yahoo.co.jp, bt.co.uk): a
# short list instead of the whole public suffix list, enough to name a mail provider.
_SECOND_LEVEL = frozenset(
    {"ac", "co", "com", "edu", "go", "gob", "gov", "gr", "ne", "net", "or", "org", "mil", "ltd"}
)
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")


def registrable(host: str) -> str:
    """The name a host's owner registered: ``gmail-smtp-in.l.google.com`` -> ``google.com``,
    ``mx1.mail.yahoo.co.jp`` -> ``yahoo.co.jp``."""
    labels = host.lower().strip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def provider_of(remote_mta: str, email: str) -> str:
    """The receiving provider of a bounce: the remote MTA's registrable domain, or the
    recipient's domain when the report names no host (or only an address)."""
    host = _host_name(remote_mta)
    return registrable(host) if host else email.rpartition("@")[2].lower()


def _host_name(remote_mta: str) -> str:
    """The host name in "mx.example.com [192.0.2.1]", "mx.example.com:25" and the like."""
    text = remote_mta.strip().lower()
    first = re.split(r"[\s\[\](),;]+", text, maxsplit=1)[0] if text else ""
    first = first.rsplit(":", 1)[0] if first.count(":") == 1 else first
    try:
        ipaddress.ip_address(first.strip("[]"))
    except ValueError:
        match = _HOST.fullmatch(first.strip("."))
        return match.group(0) if match else ""
    return ""


def candidate(event: BounceEvent, delivery: Delivery | None) -> str | None:
    """The provider this bounce counts towards, or None when it is no candidate (not a
    policy, security-filter or DMARC refusal, not of a send, or our relay refusing us)."""
    if delivery is None or event.kind != Kind.BOUNCE.value:
        return None
    if event.category not in PROVIDER_BLOCK_CATEGORIES:
        return None
    if event.sender_side and event.category != Category.DMARC_UNAUTHORIZED.value:
        return None  # the relay refused our envelope sender: alerted as that
    return provider_of(event.remote_mta, event.email)


def _key(provider: str) -> str:
    return f"{KIND}:{provider}"


def is_blocked(session: Session, account_id: int, send_id: int, provider: str) -> bool:
    """Whether this send's bounces at this provider were found to be the sender's problem."""
    return any(
        send_id in alert.data.get("sends", [])
        for alert in alerts.ever_raised(session, account_id, _key(provider))
    )


def note_bounce(session: Session, event: BounceEvent, provider: str) -> None:
    """One more refusal in a cluster known to be the sender's: count it in the open alert."""
    alert = alerts.open_alert(session, event.account_id, _key(provider))
    if alert is not None:
        _add_to(alert, [event])


def check(
    session: Session, event: BounceEvent, send_id: int, provider: str, policy: Policy
) -> bool:
    """A candidate bounce (recorded, its effects not applied yet): when with it the send's
    refusals at this provider pass the policy's thresholds, they all become the sender's
    problem, this one included. True when this call found so."""
    if is_blocked(session, event.account_id, send_id, provider):
        return False
    events = _cluster(session, event.account_id, send_id, provider)
    bounced = len({e.delivery_id for e in events})
    if bounced < policy.provider_block_min_bounces:
        return False
    there = _recipients_at(session, send_id, {_domain(e.email) for e in events})
    if 100.0 * bounced / max(there, 1) < policy.provider_block_min_percent:
        return False
    _flag(session, Cluster(event.account_id, send_id, provider, events, there))
    return True


@dataclass(frozen=True)
class Cluster:
    """The refusals of one send at one provider, and how many of its recipients are there."""

    account_id: int
    send_id: int
    provider: str
    events: list[BounceEvent]
    recipients_there: int


def _domain(email: str) -> str:
    return email.rpartition("@")[2]


def _cluster(session: Session, account_id: int, send_id: int, provider: str) -> list[BounceEvent]:
    rows = session.scalars(
        select(BounceEvent)
        .join(Delivery, Delivery.id == BounceEvent.delivery_id)
        .where(
            BounceEvent.account_id == account_id,
            Delivery.send_id == send_id,
            BounceEvent.kind == Kind.BOUNCE.value,
            BounceEvent.category.in_(PROVIDER_BLOCK_CATEGORIES),
            or_(
                BounceEvent.sender_side.is_(False),
                BounceEvent.category == Category.DMARC_UNAUTHORIZED.value,
            ),
        )
        .order_by(BounceEvent.id)
    ).all()
    return [e for e in rows if provider_of(e.remote_mta, e.email) == provider]


def _recipients_at(session: Session, send_id: int, domains: set[str]) -> int:
    """How many of the send's recipients (those handed over) have an address at these domains."""
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.send_id == send_id,
            Delivery.state != DeliveryState.NOT_SENT,
            or_(*(Delivery.email.endswith(f"@{d}", autoescape=True) for d in sorted(domains))),
        )
    )
    return int(count or 0)


def _flag(session: Session, cluster: Cluster) -> None:
    note = (
        f"Automatic: {cluster.provider} refused many recipients of this send for policy or "
        "security reasons; a problem on the sending side, not this contact's."
    )
    for event in cluster.events:
        event.sender_side = True
        _undo_contact_effects(session, event, note)
    _alert(session, cluster)


def _undo_contact_effects(session: Session, event: BounceEvent, note: str) -> None:
    """What the bounce did to the contact, undone: its suppression lifted (audited), its
    delivery a soft bounce, its "Email hard bounce reason" cleared."""
    delivery = session.get(Delivery, event.delivery_id) if event.delivery_id else None
    if delivery is not None and delivery.state is DeliveryState.BOUNCED_HARD:
        delivery.state = DeliveryState.BOUNCED_SOFT
    rows = session.scalars(
        select(Suppression).where(
            Suppression.event_id == event.id,
            Suppression.account_id == event.account_id,
            Suppression.reason == SuppressionReason.HARD_BOUNCE,
            Suppression.lifted_at.is_(None),
        )
    ).all()
    for row in rows:
        row.lifted_at, row.lift_note = utcnow(), note
        if event.contact_id is None:
            continue
        session.add(
            UnbounceAudit(
                account_id=event.account_id,
                contact_id=event.contact_id,
                suppression_id=row.id,
                user_id=None,
                note=note,
            )
        )
        contact = session.get(Contact, event.contact_id)
        if contact is not None:
            contact.hard_bounce_reason = ""
        add_timeline(
            session,
            event.account_id,
            event.contact_id,
            "unbounced",
            f"Unbounced automatically. {note[len('Automatic: ') :]}",
            data={"suppression": row.id, "event": event.id},
        )


def _alert(session: Session, cluster: Cluster) -> None:
    """One open alert per provider: a second send refused there adds to it."""
    provider = cluster.provider
    send = session.get(Send, cluster.send_id)
    alert = alerts.raise_alert(
        session,
        cluster.account_id,
        key=_key(provider),
        kind=KIND,
        title=f"{provider} is refusing your email: a sender-side problem",
        body="",
        data={"provider": provider, "sends": [], "count": 0, "responses": []},
    )
    data = dict(alert.data)
    data["sends"] = [*data.get("sends", []), cluster.send_id]
    data.setdefault("subject", send.email.subject if send is not None else "")
    data.setdefault("recipients_there", cluster.recipients_there)
    alert.data = data
    _add_to(alert, cluster.events)


def _add_to(alert: Alert, events: list[BounceEvent]) -> None:
    """Count the refusals and keep a few distinct responses; rewrite the alert's text."""
    data = dict(alert.data)
    responses: list[str] = list(data.get("responses", []))
    for event in events:
        response = " ".join(event.diagnostic.split())[:500]
        if response and response not in responses and len(responses) < MAX_RESPONSES:
            responses.append(response)
    data["responses"] = responses
    data["count"] = int(data.get("count", 0)) + len(events)
    alert.data = data
    alert.body = _body(data)


def _body(data: dict[str, Any]) -> str:
    provider = data["provider"]
    quoted = "\n".join(f"- {r}" for r in data["responses"])
    return (
        f"{data['count']} recipients at {provider} were refused for policy, security-filter or "
        f"DMARC reasons (in the send “{data['subject']}”, {data['recipients_there']} recipients "
        f"were at {provider}). So many refusals at one provider are a problem on the sending "
        "side, not the contacts': none of them is suppressed for it.\n\n"
        "What to do: check that your From domain publishes SPF, DKIM and DMARC records that "
        "authorize this service; look up the sending IP addresses on block lists and on "
        f"{provider}'s postmaster pages; review the links and the content of the email. Then use "
        "“Resend to soft-bounced” on the send's page to reach these contacts again.\n\n"
        f"Responses seen:\n{quoted}"
    )
