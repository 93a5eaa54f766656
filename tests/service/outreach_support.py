"""What the one-to-one email and sequence tests share: a user's submission server (a real SMTP
server on loopback that wants a login), a user with a connected mailbox, and making jobs due."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    DirectMessage,
    Enrollment,
    EnrollmentState,
    Job,
    Mailbox,
    MailboxSecurity,
    Sequence,
    SequenceStep,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, contacts
from bounceback.service.domain.secrets_box import box
from bounceback.service.settings import Settings
from bounceback.service.worker import build_handlers, run_until_idle

from api_support import Tenant, session_creds
from builders import admin, member
from outbound_support import FakeRelay, RelayHandler, Transaction

SMTP_LOGIN = ("ann@inbox.test", "smtp-secret-9")
IMAP_LOGIN = ("ann@inbox.test", "imap-secret-7")


@contextmanager
def submission_server(handler: RelayHandler | None = None) -> Iterator[FakeRelay]:
    """The user's SMTP submission server: a real SMTP server on 127.0.0.1 that takes the login
    ``SMTP_LOGIN`` (AUTH PLAIN/LOGIN without TLS, as on loopback) and no DSN extension."""
    server = FakeRelay(handler or RelayHandler(dsn=False), login=SMTP_LOGIN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def add_mailbox(
    session: Session,
    settings: Settings,
    account_id: int,
    user_id: int,
    *,
    smtp_port: int,
    address: str = "ann@inbox.test",
    smtp_password: str = SMTP_LOGIN[1],
    imap_port: int = 9,
) -> Mailbox:
    """A connected mailbox stored as ``mailboxes.connect`` stores it, without the checks (the
    tests of connecting check against real servers)."""
    secrets = box(settings)
    row = Mailbox(
        account_id=account_id,
        user_id=user_id,
        address=address,
        imap_host="127.0.0.1",
        imap_port=imap_port,
        imap_security=MailboxSecurity.NONE,
        imap_login=IMAP_LOGIN[0],
        imap_password=secrets.encrypt(IMAP_LOGIN[1]),
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security=MailboxSecurity.NONE,
        smtp_login=SMTP_LOGIN[0],
        smtp_password=secrets.encrypt(smtp_password),
        last_uid=0,
    )
    session.add(row)
    session.flush()
    return row


@dataclass
class Sales:
    """An account with a user (``ann``, a member with a mailbox), an admin without one, and
    contacts by address."""

    account_id: int
    user_id: int
    admin_id: int
    mailbox_id: int
    contact_ids: dict[str, int]


def sales_team(
    factory: sessionmaker[Session],
    settings: Settings,
    smtp_port: int,
    addresses: list[str],
    name: str = "Sales",
) -> Sales:
    slug = name.lower()
    with transaction(factory) as session:
        account = accounts.create_account(session, f"{name} Inc")
        ann = member(session, account.id, f"ann@{slug}.example")
        ann.name = "Ann Seller"
        boss = admin(session, account.id, f"boss@{slug}.example")
        box_row = add_mailbox(session, settings, account.id, ann.id, smtp_port=smtp_port)
        ids = {
            address: contacts.create_contact(session, account.id, address, name="Carl Client").id
            for address in addresses
        }
        return Sales(account.id, ann.id, boss.id, box_row.id, ids)


def parsed(transaction_: Transaction) -> EmailMessage:
    message = message_from_bytes(transaction_.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def make_due(factory: sessionmaker[Session]) -> None:
    """Move time forward: every pending job and enrollment step is due now."""
    past = utcnow() - timedelta(seconds=1)
    with transaction(factory) as session:
        session.execute(sa.update(Job).where(Job.done_at.is_(None)).values(run_at=past))
        session.execute(
            sa.update(Enrollment)
            .where(Enrollment.state == EnrollmentState.ACTIVE)
            .values(next_step_at=past)
        )


def run_jobs(factory: sessionmaker[Session], settings: Settings) -> int:
    return run_until_idle(factory, build_handlers(settings))


def add_outreach(factory: sessionmaker[Session], settings: Settings, tenant: Tenant) -> None:
    """Give a security-test tenant a mailbox (its member's), a one-to-one email, a sequence and
    an enrollment, each with a marker no other tenant has."""
    slug = tenant.name.lower()
    with transaction(factory) as session:
        mailbox = add_mailbox(
            session,
            settings,
            tenant.account_id,
            tenant.member_id,
            smtp_port=9,
            address=f"member@{slug}.example",
        )
        sent = DirectMessage(
            account_id=tenant.account_id,
            mailbox_id=mailbox.id,
            contact_id=tenant.contact_id,
            to_address=tenant.contact_email,
            subject=f"{tenant.name} private follow-up",
            body="Hello",
            message_id=f"<{slug}.1@{slug}.example>",
            status="sent",
        )
        sequence = Sequence(account_id=tenant.account_id, name=f"{tenant.name} outreach plan")
        session.add_all([sent, sequence])
        session.flush()
        session.add(
            SequenceStep(
                sequence_id=sequence.id, position=1, delay_seconds=0, subject="Hi", body="Hi"
            )
        )
        enrollment = Enrollment(
            account_id=tenant.account_id,
            sequence_id=sequence.id,
            contact_id=tenant.contact_id,
            user_id=tenant.member_id,
            state=EnrollmentState.ACTIVE,
            next_step_at=utcnow() + timedelta(days=1),
        )
        session.add(enrollment)
        session.flush()
        tenant.direct_id, tenant.sequence_id = sent.id, sequence.id
        tenant.enrollment_id = enrollment.id
        tenant.markers += [sent.subject, sequence.name]


def page(client: TestClient, user_id: int, url: str) -> Response:
    creds = session_creds(user_id)
    return client.get(url, headers={"Cookie": creds.headers["Cookie"]})


def submit(
    client: TestClient, user_id: int, url: str, data: dict[str, str | list[str]]
) -> Response:
    """A form post from a logged-in browser, with the session's CSRF token."""
    creds = session_creds(user_id)
    return client.post(
        url,
        data={**data, "csrf_token": creds.headers["X-CSRF-Token"]},
        headers={"Cookie": creds.headers["Cookie"]},
        follow_redirects=False,
    )
