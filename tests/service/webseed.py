"""Data and an app for the web UI tests (test_views.py, test_browser.py).

Two accounts: "Acme" (an admin, a member, contacts, one send with bounces, an alert, the sandbox
outbox) and "Globex" (its own contact, send and bounce, which Acme's users must never see). Rows
are made with the domain functions where they exist and directly otherwise, so that each test
relies on the web layer only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.app import create_app
from bounceback.service.db.models import (
    Alert,
    BounceEvent,
    Delivery,
    DeliveryState,
    OutboxMessage,
    RawBounce,
    RawStatus,
    Role,
    SendStatus,
    SuppressionReason,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, contacts, sending, suppression
from bounceback.service.settings import Settings

from builders import SECRET, dsn, return_path

PASSWORD = "correct horse battery"
ADMIN = "admin@acme.example"
MEMBER = "member@acme.example"
OTHER_ADMIN = "boss@globex.example"
BLOCKED_RESPONSE = "550 5.7.1 Service unavailable; client [192.0.2.10] blocked using zen.example"
UNKNOWN_RESPONSE = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown"


@dataclass(frozen=True)
class Seed:
    account_id: int
    other_account_id: int
    alice: int  # hard bounce (policy): can be unbounced by an admin
    bob: int  # hard bounce (unknown user): cannot be unbounced
    carol: int  # unsubscribed: in the Not sent tab
    dave: int  # delivered
    send_id: int
    bob_event: int
    other_contact: int
    other_send: int
    other_event: int


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"secret_key": SECRET, "sending_ips": ("192.0.2.10", "192.0.2.11")}
    values.update(overrides)
    return Settings(**values)


def make_app(settings: Settings, factory: sessionmaker[Session]) -> FastAPI:
    return create_app(settings, factory)


def _raw_bounce(session: Session, account_id: int, raw: bytes) -> RawBounce:
    row = RawBounce(
        account_id=account_id,
        sha256=hashlib.sha256(raw).hexdigest(),
        source="smtp",
        raw=raw,
        status=RawStatus.PROCESSED,
    )
    session.add(row)
    session.flush()
    return row


def _bounce(
    session: Session, delivery: Delivery, *, category: str, response: str, status: str
) -> BounceEvent:
    """A hard bounce of ``delivery``: the raw DSN, the event, the delivery's state, the
    suppression and the contact's "Email hard bounce reason", as intake would leave them."""
    raw = _raw_bounce(
        session,
        delivery.account_id,
        dsn(delivery.email, to=return_path(delivery.id), status=status, diagnostic=response),
    )
    event = BounceEvent(
        account_id=delivery.account_id,
        raw_bounce_id=raw.id,
        delivery_id=delivery.id,
        contact_id=delivery.contact_id,
        email=delivery.email,
        kind="bounce",
        reason="user_unknown" if category == "unknown_user" else "blocked",
        category=category,
        permanent=True,
        hard=True,
        status_code=status,
        reply_code="550",
        diagnostic=response,
        remote_mta="mx.remote.example",
        matched_by="verp",
    )
    session.add(event)
    session.flush()
    delivery.state = DeliveryState.BOUNCED_HARD
    delivery.category = category
    delivery.response = response
    suppression.suppress(
        session,
        delivery.account_id,
        delivery.email,
        SuppressionReason.HARD_BOUNCE,
        category=category,
        detail=response,
        event_id=event.id,
    )
    contact = contacts.get_contact(session, delivery.account_id, delivery.contact_id)
    label = "Unknown user" if category == "unknown_user" else "Policy"
    contact.hard_bounce_reason = f"{label}: {response}"
    contacts.add_timeline(
        session, delivery.account_id, delivery.contact_id, "bounced", f"Hard bounce: {response}"
    )
    return event


def _delivery(session: Session, send_id: int, contact_id: int) -> Delivery:
    row = session.query(Delivery).filter_by(send_id=send_id, contact_id=contact_id).one()
    row.state = DeliveryState.SENT
    row.sent_at = utcnow()
    return row


def seed(factory: sessionmaker[Session]) -> Seed:
    with transaction(factory) as session:
        acme = accounts.create_account(session, "Acme").id
        globex = accounts.create_account(session, "Globex").id
        accounts.create_user(session, acme, ADMIN, PASSWORD, role=Role.ADMIN, name="Ada")
        accounts.create_user(session, acme, MEMBER, PASSWORD)
        accounts.create_user(session, globex, OTHER_ADMIN, PASSWORD, role=Role.ADMIN)

        ids = {
            name: contacts.create_contact(
                session, acme, f"{name}@example.com", name.title(), {"city": "Lyon"}
            ).id
            for name in ("alice", "bob", "carol", "dave")
        }
        contacts.get_contact(session, acme, ids["carol"]).unsubscribed_at = utcnow()
        email = sending.create_email(
            session, acme, from_address="news@acme.example", subject="Spring news", text="Hi"
        )
        send = sending.create_send(session, acme, email.id)
        send.status = SendStatus.SENDING
        alice = _delivery(session, send.id, ids["alice"])
        bob = _delivery(session, send.id, ids["bob"])
        _delivery(session, send.id, ids["dave"]).state = DeliveryState.DELIVERED
        _bounce(session, alice, category="policy", response=BLOCKED_RESPONSE, status="5.7.1")
        bob_event = _bounce(
            session, bob, category="unknown_user", response=UNKNOWN_RESPONSE, status="5.1.1"
        )
        session.add(
            Alert(
                account_id=acme,
                kind="dmarc",
                key="dmarc:acme.example",
                title="Your domain's DMARC policy refuses this service",
                body="Ask your IT team to authorize the service for acme.example.",
            )
        )
        session.add(
            OutboxMessage(
                account_id=acme,
                delivery_id=alice.id,
                envelope_from=return_path(alice.id),
                envelope_to="alice@example.com",
                raw=b"From: news@acme.example\r\nTo: alice@example.com\r\n"
                b"Subject: Spring news\r\n\r\nHi\r\n",
            )
        )

        secret_contact = contacts.create_contact(session, globex, "zed@globex-only.example")
        other_email = sending.create_email(
            session, globex, from_address="hq@globex.example", subject="Globex secret", text="x"
        )
        other_send = sending.create_send(session, globex, other_email.id)
        other_delivery = _delivery(session, other_send.id, secret_contact.id)
        other_event = _bounce(
            session, other_delivery, category="policy", response=BLOCKED_RESPONSE, status="5.7.1"
        )
        return Seed(
            account_id=acme,
            other_account_id=globex,
            alice=ids["alice"],
            bob=ids["bob"],
            carol=ids["carol"],
            dave=ids["dave"],
            send_id=send.id,
            bob_event=bob_event.id,
            other_contact=secret_contact.id,
            other_send=other_send.id,
            other_event=other_event.id,
        )


# More recipients in every state, so that the browser test's screenshots look like a real send.
_MORE: tuple[tuple[str, DeliveryState, str, str], ...] = (
    ("emma", DeliveryState.DELIVERED, "", "250 2.0.0 Ok: queued as 4XkT1"),
    ("farid", DeliveryState.DELIVERED, "", "250 2.0.0 Ok: queued as 9QmZ2"),
    (
        "grace",
        DeliveryState.BOUNCED_SOFT,
        "mailbox_full",
        "452 4.2.2 The email account that you tried to reach is over quota.",
    ),
    (
        "hugo",
        DeliveryState.PENDING,
        "recipient_server",
        "421 4.3.0 mx.remote.example: temporary failure, try again later",
    ),
    ("ines", DeliveryState.SENT, "", ""),
    ("jules", DeliveryState.DELIVERED, "", "250 2.0.0 Ok: queued as 1AbC3"),
)


def enrich(factory: sessionmaker[Session], data: Seed) -> None:
    with transaction(factory) as session:
        for name, state, category, response in _MORE:
            contact = contacts.create_contact(
                session, data.account_id, f"{name}@example.com", name.title(), {"city": "Lyon"}
            )
            session.add(
                Delivery(
                    account_id=data.account_id,
                    send_id=data.send_id,
                    contact_id=contact.id,
                    email=contact.email,
                    state=state,
                    category=category,
                    response=response,
                    sent_at=utcnow(),
                )
            )
