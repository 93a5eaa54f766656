"""Rows and messages for service tests, built directly so each test shows what it relies on."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bounceback.service.db.models import (
    Account,
    Contact,
    Delivery,
    DeliveryState,
    Email,
    Role,
    Send,
    SendStatus,
    User,
    utcnow,
)
from bounceback.service.domain import accounts, verp

SECRET = "test-secret"
BOUNCE_DOMAIN = "bounces.example.net"


def account(session: Session, name: str = "Acme") -> Account:
    return accounts.create_account(session, name)


def admin(session: Session, account_id: int, email: str = "admin@acme.example") -> User:
    password = "correct horse battery"
    return accounts.create_user(session, account_id, email, password, role=Role.ADMIN)


def member(session: Session, account_id: int, email: str = "member@acme.example") -> User:
    return accounts.create_user(session, account_id, email, "correct horse battery")


def delivery(
    session: Session, account_id: int, address: str, state: DeliveryState = DeliveryState.SENT
) -> Delivery:
    """A contact, an email, a send and one sent delivery to ``address``."""
    contact = session.query(Contact).filter_by(account_id=account_id, email=address).one_or_none()
    if contact is None:
        contact = Contact(account_id=account_id, email=address, name="", properties={})
        session.add(contact)
        session.flush()
    email = Email(account_id=account_id, from_address="news@acme.example", subject="News")
    session.add(email)
    session.flush()
    send = Send(account_id=account_id, email_id=email.id, status=SendStatus.SENDING)
    session.add(send)
    session.flush()
    row = Delivery(
        account_id=account_id,
        send_id=send.id,
        contact_id=contact.id,
        email=address,
        state=state,
        sent_at=utcnow(),
    )
    session.add(row)
    session.flush()
    row.message_id = f"<d{row.id}.x7q2@{BOUNCE_DOMAIN}>"
    row.verp_token = verp.make_token(SECRET, row.id)
    return row


def return_path(delivery_id: int, secret: str = SECRET) -> str:
    return verp.return_path(secret, delivery_id, BOUNCE_DOMAIN)


def dsn(
    recipient: str,
    *,
    to: str,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    action: str = "failed",
    message_id: str = "<unrelated@elsewhere.example>",
    envid: str = "",
) -> bytes:
    """A Postfix-style RFC 3464 report about ``recipient``, delivered to ``to``."""
    envid_line = f"Original-Envelope-ID: {envid}\n" if envid else ""
    return (
        f"From: MAILER-DAEMON@mx.remote.example\nTo: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nSorry.\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.remote.example\n{envid_line}\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"
        f"Remote-MTA: dns; mx.remote.example\n"
        f"Diagnostic-Code: smtp; {diagnostic.format(r=recipient)}\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"From: news@acme.example\nTo: {recipient}\nMessage-ID: {message_id}\nSubject: News\n\n"
        "--B--\n"
    ).encode()
