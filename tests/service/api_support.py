"""What the HTTP tests share: an app on the test database, tenants with data, and credentials
(an API key, or a logged-in browser session as the login view leaves it)."""

from __future__ import annotations

import hashlib
import json
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import itsdangerous
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.app import SESSION_COOKIE, create_app
from bounceback.service.db.models import (
    Alert,
    BounceEvent,
    Contact,
    DeliveryState,
    Email,
    RawBounce,
    RawStatus,
    Send,
    SuppressionReason,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, security, suppression
from bounceback.service.settings import Settings

from builders import SECRET, admin, delivery, dsn, member, return_path

SENDING_IPS = ("192.0.2.10", "2001:db8::25")


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "data_dir": str(tmp_path / "data"),
        "sending_ips": SENDING_IPS,
        "bounce_domains": ("bounces.example.net",),
    }
    values.update(overrides)
    return Settings(**values)


def make_client(
    factory: sessionmaker[Session], tmp_path: Path, **overrides: Any
) -> tuple[TestClient, Settings]:
    settings = make_settings(tmp_path, **overrides)
    return TestClient(create_app(settings, factory)), settings


@dataclass(frozen=True)
class Creds:
    """Headers that authenticate a request."""

    headers: dict[str, str]
    kind: str

    def __str__(self) -> str:
        return self.kind


def key_creds(key: str) -> Creds:
    return Creds({"Authorization": f"Bearer {key}"}, "api key")


def session_creds(user_id: int, secret: str = SECRET, sid: str = "test-session-id") -> Creds:
    """A browser session cookie as Starlette's SessionMiddleware signs it, holding what the login
    view stores (``user_id`` and the CSRF session id ``sid``), and the matching CSRF header."""
    data = b64encode(json.dumps({"user_id": user_id, "sid": sid}).encode())
    cookie = itsdangerous.TimestampSigner(secret).sign(data).decode()
    return Creds(
        {"Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": security.csrf_token(secret, sid)},
        "browser session",
    )


@dataclass
class Tenant:
    """An account with one of everything, each carrying a marker no other tenant has."""

    name: str
    account_id: int
    admin_id: int
    member_id: int
    key: str
    contact_id: int
    contact_email: str
    email_id: int
    subject: str
    send_id: int
    delivery_id: int
    raw_id: int
    bounce_id: int
    markers: list[str] = field(default_factory=list)
    alert_id: int = 0
    # One-to-one email and sequences: filled by outreach_support.add_outreach.
    direct_id: int = 0
    sequence_id: int = 0
    enrollment_id: int = 0

    @property
    def api(self) -> Creds:
        return key_creds(self.key)

    @property
    def admin(self) -> Creds:
        return session_creds(self.admin_id)

    @property
    def member(self) -> Creds:
        return session_creds(self.member_id)


def tenant(factory: sessionmaker[Session], name: str) -> Tenant:
    """An account named ``name`` with users, a key, a contact that hard-bounced in a send (the
    raw NDR and its event stored as intake stores them) and so is suppressed."""
    slug = name.lower()
    address = f"{slug}-contact@{slug}.example"
    with transaction(factory) as session:
        acct = accounts.create_account(session, f"{name} Corp")
        boss = admin(session, acct.id, f"admin@{slug}.example")
        staff = member(session, acct.id, f"member@{slug}.example")
        _, key = accounts.create_api_key(session, acct.id, "test")
        row = delivery(session, acct.id, address, state=DeliveryState.BOUNCED_HARD)
        row.category, row.reason, row.response = "policy", "blocked", f"550 5.7.1 {slug} blocked"
        email = _email_of(session, row.send_id)
        email.subject = f"{name} spring news"
        message = dsn(
            address,
            to=return_path(row.id),
            status="5.7.1",
            diagnostic="550 5.7.1 <{r}>: blocked by policy",
        )
        raw = RawBounce(
            account_id=acct.id,
            sha256=hashlib.sha256(message).hexdigest(),
            source="smtp",
            raw=message,
            status=RawStatus.PROCESSED,
        )
        session.add(raw)
        session.flush()
        event = BounceEvent(
            account_id=acct.id,
            raw_bounce_id=raw.id,
            delivery_id=row.id,
            contact_id=row.contact_id,
            email=address,
            kind="bounce",
            reason="blocked",
            category="policy",
            permanent=True,
            hard=True,
            status_code="5.7.1",
            reply_code="550",
            diagnostic=f"550 5.7.1 {slug} blocked",
            matched_by="verp",
        )
        session.add(event)
        session.flush()
        suppression.suppress(
            session,
            acct.id,
            address,
            SuppressionReason.HARD_BOUNCE,
            category="policy",
            detail=f"550 5.7.1 {slug} blocked",
            event_id=event.id,
        )
        contact = session.get(Contact, row.contact_id)
        assert contact is not None
        contact.hard_bounce_reason = f"Policy: 550 5.7.1 {slug} blocked"
        alert = Alert(
            account_id=acct.id,
            kind="dmarc_unauthorized",
            key=f"dmarc:{slug}.example",
            title=f"Receivers refuse email from {slug}.example",
            body=f"550 5.7.26 {slug} blocked",
            data={"count": 1, "domain": f"{slug}.example"},
        )
        session.add(alert)
        session.flush()
        return Tenant(
            name=name,
            account_id=acct.id,
            admin_id=boss.id,
            member_id=staff.id,
            key=key,
            contact_id=row.contact_id,
            contact_email=address,
            email_id=email.id,
            subject=email.subject,
            send_id=row.send_id,
            delivery_id=row.id,
            raw_id=raw.id,
            bounce_id=event.id,
            markers=[address, email.subject, f"{name} Corp", f"{slug} blocked"],
            alert_id=alert.id,
        )


def _email_of(session: Session, send_id: int) -> Email:
    send = session.get(Send, send_id)
    assert send is not None
    email = session.get(Email, send.email_id)
    assert email is not None
    return email
