"""The sandbox: sending with no relay configured.

Every message goes to a local outbox (``OutboxMessage``) that the UI shows. Recipients on the
simulator domain (``BOUNCEBACK_SIMULATOR_DOMAIN``, by default ``simulator.bounceback.test``)
answer the way real servers do, chosen by how the local part begins:

=============  ===================================================================
unknown...     an RFC 3464 bounce: 550 5.1.1 user unknown
full...        an RFC 3464 bounce: 552 5.2.2 mailbox full
spam...        an RFC 3464 bounce: 554 5.7.1 rejected as spam
dmarc...       an RFC 3464 bounce: 550 5.7.26 refused by the sender domain's DMARC policy
tempfail...    an RFC 3464 delay notice: 4.4.1, still being retried
autoreply...   a success notice, then an RFC 3834 auto-reply (out of office)
complaint...   a success notice, then an RFC 5965 (ARF) spam complaint
anything else  an RFC 3464 success notice (action: delivered), since we asked for one
=============  ===================================================================

The generated messages are real mail, addressed to the delivery's VERP return path, and enter
through ``intake.store_raw`` like any bounce from the outside: the sandbox exercises the whole
pipeline, it does not shortcut it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, formatdate, make_msgid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bounceback.service.db.models import OutboxMessage, utcnow
from bounceback.service.domain import intake
from bounceback.service.domain.errors import NotFound
from bounceback.service.outbound.message import Outgoing
from bounceback.service.outbound.relay import Outcome, SendResult
from bounceback.service.settings import Settings

SOURCE = "sandbox"


@dataclass(frozen=True)
class Failure:
    """What the simulated destination answers for one kind of address."""

    action: str  # failed or delayed
    status: str
    reply: str  # the SMTP reply; {rcpt} and {domain} are filled in


_FAILURES = {
    "unknown": Failure(
        "failed",
        "5.1.1",
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
    ),
    "full": Failure(
        "failed", "5.2.2", "552 5.2.2 <{rcpt}>: Mailbox full: the recipient's quota is exceeded"
    ),
    "spam": Failure("failed", "5.7.1", "554 5.7.1 Message rejected as spam by Content Filtering"),
    "dmarc": Failure(
        "failed",
        "5.7.26",
        "550 5.7.26 Unauthenticated email from {domain} is not accepted due to domain's DMARC "
        "policy. Please contact the administrator of {domain} domain if this was a legitimate "
        "mail.",
    ),
    "tempfail": Failure(
        "delayed",
        "4.4.1",
        "451 4.4.1 No answer from host: connection timed out; the message stays queued",
    ),
}


def deliver(session: Session, settings: Settings, account_id: int, message: Outgoing) -> SendResult:
    """'Send' ``message``: keep it in the outbox and, for the simulator domain, feed what the
    destination would send back into the intake (in the caller's transaction)."""
    session.add(
        OutboxMessage(
            account_id=account_id,
            delivery_id=message.delivery_id,
            envelope_from=message.envelope_from,
            envelope_to=message.recipient,
            raw=message.data,
        )
    )
    session.flush()
    for raw in simulate(settings, message):
        intake.store_raw(session, raw, source=SOURCE, envelope_to=message.envelope_from)
    return SendResult(
        Outcome.ACCEPTED,
        "250",
        "250 2.0.0 Ok: kept in the sandbox outbox",
        "DATA",
        dsn_requested=True,
    )


def simulate(settings: Settings, message: Outgoing) -> list[bytes]:
    """The messages the destination of ``message`` sends back (none outside the simulator)."""
    local, _, domain = message.recipient.rpartition("@")
    if domain.lower() != settings.simulator_domain.lower():
        return []
    local = local.lower()
    for prefix, failure in _FAILURES.items():
        if local.startswith(prefix):
            return [dsn(settings, message, failure)]
    success = Failure("delivered", "2.0.0", "250 2.0.0 Ok: queued as {queue_id}")
    follow_ups: dict[str, Callable[[Settings, Outgoing], bytes]] = {
        "autoreply": auto_reply,
        "complaint": complaint,
    }
    out = [dsn(settings, message, success)]
    for prefix, make in follow_ups.items():
        if local.startswith(prefix):
            out.append(make(settings, message))
    return out


def list_outbox(
    session: Session, account_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[OutboxMessage], int]:
    """The account's sandbox outbox, newest first, and its total."""
    where = OutboxMessage.account_id == account_id
    total = session.scalar(select(func.count()).select_from(OutboxMessage).where(where)) or 0
    items = session.scalars(
        select(OutboxMessage)
        .where(where)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(items), total


def get_outbox_message(session: Session, account_id: int, message_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, message_id)
    if row is None or row.account_id != account_id:
        raise NotFound("no such outbox message")
    return row


# The generated messages -------------------------------------------------------------------


def _mta(settings: Settings) -> str:
    return f"mx.{settings.simulator_domain}"


def _original_headers(message: Outgoing) -> str:
    head = message.data.split(b"\r\n\r\n", 1)[0]
    return head.decode("ascii", "replace")


def _original(message: Outgoing) -> EmailMessage:
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(message.data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _sender_domain(message: Outgoing) -> str:
    sender = _original(message).get("From")
    addresses = getattr(sender, "addresses", ())
    return addresses[0].domain if addresses else "example.com"


def dsn(settings: Settings, message: Outgoing, failure: Failure) -> bytes:
    """An RFC 3464 delivery status notification about ``message``, as an MTA writes it."""
    mta = _mta(settings)
    now = formatdate(usegmt=True)
    boundary = f"=_simulator_{secrets.token_hex(8)}"
    reply = failure.reply.format(
        rcpt=message.recipient, domain=_sender_domain(message), queue_id=secrets.token_hex(5)
    )
    subject, human = _wording(failure.action, message.recipient, reply, mta)
    recipient_fields = [
        f"Original-Recipient: rfc822; {message.recipient}",
        f"Final-Recipient: rfc822; {message.recipient}",
        f"Action: {failure.action}",
        f"Status: {failure.status}",
        f"Remote-MTA: dns; {mta}",
        f"Diagnostic-Code: smtp; {reply}",
        f"Last-Attempt-Date: {now}",
    ]
    if failure.action == "delayed":
        until = format_datetime(utcnow() + timedelta(hours=72), usegmt=True)
        recipient_fields.append(f"Will-Retry-Until: {until}")
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>",
        f"To: <{message.envelope_from}>",
        f"Subject: {subject}",
        f"Date: {now}",
        f"Message-ID: {make_msgid(domain=mta)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        human,
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {mta}",
        f"Original-Envelope-Id: {message.envid}",
        f"Arrival-Date: {now}",
        "",
        *recipient_fields,
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        _original_headers(message),
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


_INTRO = "This is the mail delivery system of {mta} (the bounceback simulator)."
_WORDING = {
    "delivered": (
        "Successful Mail Delivery Report",
        "Your message was successfully delivered to the destination(s) listed below.",
        "<{rcpt}>: delivery via {mta}: {reply}",
    ),
    "delayed": (
        "Delayed Mail (still being retried)",
        "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.\r\n\r\nYour message "
        "could not be delivered for some time. It will be retried until it is too old.",
        "<{rcpt}>: host {mta} said: {reply}",
    ),
    "failed": (
        "Undelivered Mail Returned to Sender",
        "I'm sorry to have to inform you that your message could not be delivered to one or "
        "more recipients.",
        "<{rcpt}>: host {mta} said: {reply}",
    ),
}


def _wording(action: str, recipient: str, reply: str, mta: str) -> tuple[str, str]:
    """The subject and the human-readable part of a notice, as MTAs word them."""
    subject, body, detail = _WORDING[action]
    text = "\r\n\r\n".join(
        (_INTRO.format(mta=mta), body, detail.format(rcpt=recipient, mta=mta, reply=reply))
    )
    return subject, text


def auto_reply(settings: Settings, message: Outgoing) -> bytes:
    """An out-of-office reply (RFC 3834), sent to the return path as that RFC says."""
    original = _original(message)
    reply = EmailMessage(policy=policy.SMTP)
    reply["From"] = message.recipient
    reply["To"] = message.envelope_from
    reply["Subject"] = f"Automatic reply: {original.get('Subject', '')}"
    reply["Date"] = formatdate(usegmt=True)
    reply["Message-ID"] = make_msgid(domain=settings.simulator_domain)
    reply["In-Reply-To"] = message.message_id
    reply["References"] = message.message_id
    reply["Auto-Submitted"] = "auto-replied"
    reply.set_content(
        "Thank you for your message. I am out of the office with no access to email and will "
        "answer when I am back.\n"
    )
    return reply.as_bytes()


def complaint(settings: Settings, message: Outgoing) -> bytes:
    """A mailbox provider's feedback-loop report (RFC 5965 ARF): the recipient pressed "spam"."""
    mta = _mta(settings)
    now = formatdate(usegmt=True)
    boundary = f"=_simulator_arf_{secrets.token_hex(8)}"
    domain = _sender_domain(message)
    source_ip = [f"Source-IP: {settings.sending_ips[0]}"] if settings.sending_ips else []
    lines = [
        f"From: Feedback Loop <fbl@{mta}>",
        f"To: <{message.envelope_from}>",
        f"Subject: Complaint about a message from {domain}",
        f"Date: {now}",
        f"Message-ID: {make_msgid(domain=mta)}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is an email abuse report for a message from {domain} received on {now}.",
        "The recipient marked it as spam.",
        "",
        f"--{boundary}",
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: bounceback-simulator/1.0",
        "Version: 1",
        f"Original-Mail-From: <{message.envelope_from}>",
        f"Original-Rcpt-To: <{message.recipient}>",
        f"Arrival-Date: {now}",
        f"Reported-Domain: {domain}",
        *source_ip,
        "",
        f"--{boundary}",
        "Content-Type: message/rfc822",
        "Content-Disposition: inline",
        "",
        message.data.decode("ascii", "replace").rstrip("\r\n"),
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")
