"""One-to-one email: a user writes to a contact from their own mailbox (also each sequence step).

Sending is three steps, each in its own transaction where a ``factory`` is given:

1. ``start`` stores the message as ``sending`` with our own Message-ID, and is committed before
   the user's SMTP server is asked: a bounce can land in the user's INBOX within milliseconds, and
   the poller must find the message it belongs to by that Message-ID.
2. ``transmit`` hands it to the user's submission server (no database involved).
3. ``settle`` records what the server said: ``sent`` (and the contact's timeline gets it with its
   Message-ID), ``bounced`` when the server refused the recipient (5xx at RCPT or DATA), or
   ``failed`` when the server could not be used (connection, login, sender refused, 4xx); a
   status the poller set meanwhile (``bounced``) is kept.

"Send again later" (``retry_later``) schedules a new send of a bounced or failed message: a
``direct_retry`` job at that time sends a copy with a new Message-ID; the old one becomes
``retried``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bounceback.core.classify.engine import classify
from bounceback.core.report import Facts
from bounceback.core.standards.status import find_status
from bounceback.core.taxonomy import Action, categorize
from bounceback.service import jobs
from bounceback.service.db.models import Contact, DirectMessage, Mailbox, User, utcnow
from bounceback.service.db.session import transaction
from bounceback.service.domain import contacts, mailboxes
from bounceback.service.domain.errors import Conflict, Invalid, NotFound
from bounceback.service.outbound import submission
from bounceback.service.outbound.message import POLICY
from bounceback.service.outbound.relay import Outcome, SendResult
from bounceback.service.settings import Settings

RETRY = "direct_retry"
MAX_BODY = 200_000
MAX_RETRY_AHEAD = timedelta(days=90)
SENDING, SENT, BOUNCED, FAILED, RETRIED = "sending", "sent", "bounced", "failed", "retried"
RETRIABLE = frozenset({BOUNCED, FAILED})
_SAME_TIME = timedelta(seconds=1)


# --- reading ----------------------------------------------------------------------------------


def get_direct(session: Session, account_id: int, direct_id: int) -> DirectMessage:
    row = session.get(DirectMessage, direct_id)
    if row is None or row.account_id != account_id:
        raise NotFound("no such email")
    return row


def for_contact(
    session: Session, account_id: int, contact_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[DirectMessage], int]:
    """The contact's one-to-one emails and sequence steps, newest first, and the total."""
    contacts.get_contact(session, account_id, contact_id)
    where = (DirectMessage.account_id == account_id, DirectMessage.contact_id == contact_id)
    total = session.scalar(select(func.count()).select_from(DirectMessage).where(*where)) or 0
    rows = session.scalars(
        select(DirectMessage)
        .where(*where)
        .order_by(DirectMessage.sent_at.desc(), DirectMessage.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def by_message_id(session: Session, message_id: str) -> DirectMessage | None:
    """The message we sent with this Message-ID (with or without its angle brackets)."""
    value = message_id.strip()
    if value and not value.startswith("<"):
        value = f"<{value}>"
    if not value:
        return None
    return session.scalar(select(DirectMessage).where(DirectMessage.message_id == value).limit(1))


# --- sending ----------------------------------------------------------------------------------


def new_message_id(address: str) -> str:
    """Ours, on the sender's own domain (as their mail client would)."""
    domain = address.rpartition("@")[2] or "localhost"
    return f"<{secrets.token_hex(12)}.bb@{domain}>"


def check_text(subject: str, body: str) -> tuple[str, str]:
    subject = " ".join(subject.split())
    if not subject:
        raise Invalid("the email needs a subject")
    if len(subject) > 900:
        raise Invalid("the subject is too long (900 characters at most)")
    if not body.strip():
        raise Invalid("the email needs a body")
    if len(body) > MAX_BODY:
        raise Invalid(f"the body is too long ({MAX_BODY} characters at most)")
    return subject, body


def start(
    session: Session,
    account_id: int,
    user_id: int,
    contact_id: int,
    *,
    subject: str,
    body: str,
    enrollment_id: int | None = None,
    in_reply_to: str = "",
) -> DirectMessage:
    """Store a message from the user's mailbox to the contact as ``sending``. The contact is
    checked first (another account's is NotFound), then the mailbox (Conflict without one)."""
    contact = contacts.get_contact(session, account_id, contact_id)
    subject, body = check_text(subject, body)
    mailbox = mailboxes.require_mailbox(session, account_id, user_id)
    row = DirectMessage(
        account_id=account_id,
        mailbox_id=mailbox.id,
        contact_id=contact.id,
        enrollment_id=enrollment_id,
        to_address=contact.email,
        subject=subject,
        body=body,
        message_id=new_message_id(mailbox.address),
        in_reply_to=in_reply_to,
        status=SENDING,
        sent_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Prepared:
    """A stored message ready for its server: what ``transmit`` needs, no database rows."""

    direct_id: int
    server: submission.Server
    message: submission.Composed


def prepare(session: Session, settings: Settings, row: DirectMessage) -> Prepared:
    mailbox = session.get(Mailbox, row.mailbox_id) if row.mailbox_id is not None else None
    if mailbox is None:
        raise Conflict("the mailbox this email was to leave from is no longer connected")
    user = session.get(User, mailbox.user_id)
    contact = session.get(Contact, row.contact_id)
    message = compose(
        row, mailbox.address, user.name if user else "", contact.name if contact else ""
    )
    return Prepared(row.id, mailboxes.smtp_server(settings, mailbox), message)


def compose(
    row: DirectMessage, from_address: str, from_name: str = "", to_name: str = ""
) -> submission.Composed:
    """A plain-text message like a mail client writes: From the user, threaded when it
    answers an earlier one (In-Reply-To and References)."""
    message = EmailMessage(policy=POLICY)
    message["From"] = formataddr((from_name, from_address))
    message["To"] = formataddr((to_name, row.to_address))
    message["Subject"] = row.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = row.message_id
    if row.in_reply_to:
        message["In-Reply-To"] = row.in_reply_to
        message["References"] = row.in_reply_to
    message.set_content(row.body)
    return submission.Composed(from_address, row.to_address, row.message_id, message.as_bytes())


def transmit(prepared: Prepared) -> SendResult:
    return submission.submit(prepared.server, prepared.message)


def settle(session: Session, direct_id: int, result: SendResult, server: str = "") -> DirectMessage:
    """Record what the user's server answered (once: a settled message is left as it is). The
    row is locked first, so a bounce the poller records meanwhile is never overwritten."""
    row = session.get(DirectMessage, direct_id, with_for_update=True)
    if row is None:
        raise NotFound("no such email")
    if row.status != SENDING:
        return row  # the poller saw its bounce first
    if result.outcome is Outcome.ACCEPTED:
        row.status = SENT
        row.sent_at = utcnow()
        _timeline(session, row, "email_sent", f"Sent “{row.subject}”")
    elif submission.is_bounce(result):
        row.status = BOUNCED
        row.bounce_category = refusal_category(row.to_address, result)
        row.bounce_response = result.response
        _timeline(session, row, "email_bounced", f"“{row.subject}” refused: {result.text}")
    else:
        row.status = FAILED
        row.bounce_response = submission.describe(result, server or "the SMTP server")
        _timeline(session, row, "email_failed", f"“{row.subject}” not sent: {row.bounce_response}")
    session.flush()
    return row


def _one_line(result: SendResult) -> str:
    return " ".join(result.response.split()) or "no answer"


def refusal_category(address: str, result: SendResult) -> str:
    """The bounce category of a refusal seen while submitting (the classifier's, as for an
    NDR): less detail than a DSN, but the same words."""
    text = _one_line(result)
    facts = Facts(
        address=address,
        action=Action.FAILED,
        status=find_status(text),
        reply_code=result.reply_code,
        diagnostic=text,
        smtp_command=result.command,
    )
    decision = classify(facts)
    return categorize(decision.reason, True, sender_dmarc=decision.sender_dmarc).value


def _timeline(session: Session, row: DirectMessage, kind: str, summary: str) -> None:
    mailbox = session.get(Mailbox, row.mailbox_id) if row.mailbox_id is not None else None
    sender = mailbox.address if mailbox else ""
    contacts.add_timeline(
        session,
        row.account_id,
        row.contact_id,
        kind,
        f"{summary} from {sender} · Message-ID {row.message_id}" if sender else summary,
        data={
            "direct_message_id": row.id,
            "message_id": row.message_id,
            "enrollment_id": row.enrollment_id,
            "from": sender,
            "subject": row.subject,
            "status": row.status,
        },
    )


def send_now(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    user_id: int,
    contact_id: int,
    *,
    subject: str,
    body: str,
) -> DirectMessage:
    """Compose and send one email now, from the user's mailbox to the contact."""
    with transaction(factory) as session:
        row = start(session, account_id, user_id, contact_id, subject=subject, body=body)
        prepared = prepare(session, settings, row)
    result = transmit(prepared)
    with transaction(factory) as session:
        return settle(session, prepared.direct_id, result, prepared.server.name)


# --- send again later -------------------------------------------------------------------------


def retry_later(
    session: Session, account_id: int, direct_id: int, at: datetime, now: datetime | None = None
) -> DirectMessage:
    """Schedule a new send of a bounced (or failed) message at ``at``; scheduling again moves
    it (only the latest time sends)."""
    row = get_direct(session, account_id, direct_id)
    if row.status not in RETRIABLE:
        raise Conflict(
            f"only a bounced or failed email can be sent again (this one is {row.status})"
        )
    if row.mailbox_id is None:
        raise Conflict("the mailbox this email left from is no longer connected")
    now = now or utcnow()
    at = _aware(at)
    if at < now - timedelta(minutes=1):
        raise Invalid("the time to send again is in the past")
    if at > now + MAX_RETRY_AHEAD:
        raise Invalid("the time to send again is more than 90 days ahead")
    row.retry_at = at
    jobs.enqueue(
        session,
        RETRY,
        {"direct_id": row.id, "at": at.isoformat()},
        key=f"{RETRY}:{row.id}:{at.isoformat()}",
        run_at=at,
    )
    contacts.add_timeline(
        session,
        account_id,
        row.contact_id,
        "email_retry_scheduled",
        f"“{row.subject}” will be sent again at {at.strftime('%Y-%m-%d %H:%M')} UTC",
        data={"direct_message_id": row.id, "retry_at": at.isoformat()},
    )
    session.flush()
    return row


def run_retry(factory: sessionmaker[Session], settings: Settings, payload: dict[str, Any]) -> None:
    """The ``direct_retry`` job: a copy of the message, sent from the same mailbox."""
    direct_id, at = int(payload["direct_id"]), datetime.fromisoformat(str(payload["at"]))
    with transaction(factory) as session:
        old = session.get(DirectMessage, direct_id)
        if old is None or old.retry_at is None or abs(_aware(old.retry_at) - at) > _SAME_TIME:
            return  # rescheduled (another job sends) or gone
        mailbox = session.get(Mailbox, old.mailbox_id) if old.mailbox_id is not None else None
        if mailbox is None:
            return  # disconnected since: nothing to send from
        taken = session.execute(  # at most once, whoever else runs this job
            update(DirectMessage)
            .where(DirectMessage.id == direct_id, DirectMessage.status.in_(RETRIABLE))
            .values(status=RETRIED)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            return
        row = start(
            session,
            old.account_id,
            mailbox.user_id,
            old.contact_id,
            subject=old.subject,
            body=old.body,
            enrollment_id=old.enrollment_id,
            in_reply_to=old.in_reply_to,
        )
        prepared = prepare(session, settings, row)
    result = transmit(prepared)
    with transaction(factory) as session:
        settle(session, prepared.direct_id, result, prepared.server.name)


def job_handlers(settings: Settings) -> dict[str, jobs.Handler]:
    def retry(factory: sessionmaker[Session], payload: dict[str, Any]) -> None:
        run_retry(factory, settings, payload)

    return {RETRY: retry}


def _aware(value: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
