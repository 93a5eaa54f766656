"""What a message arriving in a user's connected mailbox is, and what bounceback does about it.

Sales users send one-to-one email and sequence steps from their own mailbox (``DirectMessage``);
the notices about those come back to that mailbox, mixed with everything else the user receives.
Each new message is one of:

- a bounce or a delay notice of a message we sent: matched by our Message-ID (in the notice's
  In-Reply-To or References, or in the returned message or headers inside it), or, for notices
  that quote nothing of ours (security gateways sending their own notice), by the failed address
  and the time: a message from this mailbox to that address in the last few days;
- an auto-reply (out of office): not a bounce, changes nothing;
- a reply of the contact (threaded to our message, or from the address we wrote to): ends the
  contact's sequence (state replied);
- none of ours: left alone. Bounces of email the user sent with another client are not recorded
  and not touched (the poller reads with BODY.PEEK: they stay unread).

A matched bounce keeps the notice (``RawBounce``, source "imap"), records a ``BounceEvent`` and a
timeline entry for the contact, marks the ``DirectMessage`` bounced, ends its sequence enrollment
(state bounced), and asks the poller to flag the notice (and to move it to the mailbox's bounce
folder when one is set). It suppresses the contact from marketing email only when the account's
policy says so (``inbox_bounces_suppress``): a bounce of a hand-written email is the user's
business first. Everything here is idempotent: the same notice seen twice records one event.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import bounceback
from bounceback import Category, Kind, parse
from bounceback.core.report import RecipientResult, Report
from bounceback.service.db.models import (
    Account,
    BounceEvent,
    Contact,
    DirectMessage,
    Enrollment,
    EnrollmentState,
    Mailbox,
    RawBounce,
    RawStatus,
    SuppressionReason,
    TimelineEntry,
    utcnow,
)
from bounceback.service.domain import direct, intake, sequences
from bounceback.service.domain.contacts import add_timeline
from bounceback.service.domain.errors import NotFound
from bounceback.service.domain.policy import policy_for
from bounceback.service.domain.suppression import check_global, suppress

# A notice that quotes nothing of ours is matched to a message sent to the failed address from
# this mailbox within this many days (notices come within minutes; delays within days).
RECENT = timedelta(days=5)
_MSGID = re.compile(r"<[^<>\s]+>")


class InboxKind(enum.StrEnum):
    BOUNCE = "bounce"
    DELAY = "delay"
    AUTO_REPLY = "auto_reply"
    REPLY = "reply"
    NOT_OURS = "not_ours"


@dataclass(frozen=True)
class InboxDecision:
    """What one inbox message is. ``direct_message_id``: the message of ours it is about (None
    when not ours); ``matched_by``: how it was found (``in-reply-to``, ``references``,
    ``returned-message``, ``recipient``, ``from``)."""

    kind: InboxKind
    direct_message_id: int | None = None
    matched_by: str = ""
    report: Report | None = field(default=None, compare=False, repr=False)
    recipient: RecipientResult | None = field(default=None, compare=False, repr=False)

    @property
    def is_notice(self) -> bool:
        return self.kind in (InboxKind.BOUNCE, InboxKind.DELAY)


@dataclass(frozen=True)
class MailboxAction:
    """What the poller does with the message in the user's mailbox after it was recorded."""

    flag: bool = False
    move_to: str = ""  # a folder name; "" stays in the INBOX


@dataclass(frozen=True)
class _Headers:
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_address: str


def _headers(raw: bytes) -> _Headers:
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)

    def ids(name: str) -> tuple[str, ...]:
        return tuple(_MSGID.findall(" ".join(str(v) for v in message.get_all(name, []))))

    own = ids("Message-ID")
    senders = getaddresses([str(v) for v in message.get_all("From", [])])
    return _Headers(
        message_id=own[0] if own else "",
        in_reply_to=ids("In-Reply-To"),
        references=ids("References"),
        from_address=(senders[0][1] if senders else "").strip().lower(),
    )


def _mailbox(session: Session, account_id: int, mailbox_id: int) -> Mailbox:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None or mailbox.account_id != account_id:
        raise NotFound("no such mailbox")
    return mailbox


def _ours(session: Session, mailbox: Mailbox, message_id: str) -> DirectMessage | None:
    """The message this mailbox sent with this Message-ID (with or without its brackets)."""
    bare = message_id.strip().strip("<>")
    if not bare:
        return None
    return session.scalar(
        select(DirectMessage)
        .where(
            DirectMessage.account_id == mailbox.account_id,
            DirectMessage.mailbox_id == mailbox.id,
            DirectMessage.message_id.in_((f"<{bare}>", bare)),
        )
        .order_by(DirectMessage.id.desc())
        .limit(1)
    )


def _recent_to(
    session: Session, mailbox: Mailbox, address: str, before: datetime
) -> DirectMessage | None:
    """The latest message from this mailbox to ``address`` sent in the ``RECENT`` days before
    the notice arrived."""
    address = address.strip().lower()
    if not address:
        return None
    return session.scalar(
        select(DirectMessage)
        .where(
            DirectMessage.account_id == mailbox.account_id,
            DirectMessage.mailbox_id == mailbox.id,
            DirectMessage.to_address == address,
            DirectMessage.sent_at >= before - RECENT,
            DirectMessage.sent_at <= before + timedelta(minutes=5),
        )
        .order_by(DirectMessage.sent_at.desc(), DirectMessage.id.desc())
        .limit(1)
    )


def classify_inbox_message(
    session: Session,
    account_id: int,
    mailbox_id: int,
    raw: bytes,
    *,
    received_at: datetime | None = None,
) -> InboxDecision:
    """Decide what one message of the mailbox's INBOX is (reads only; nothing is changed)."""
    mailbox = _mailbox(session, account_id, mailbox_id)
    headers = _headers(raw)
    if _ours(session, mailbox, headers.message_id) is not None:
        return InboxDecision(InboxKind.NOT_OURS)  # a copy of our own message (Bcc to oneself)
    report = parse(raw)
    if report.kind in (Kind.BOUNCE, Kind.DELAY):
        return _notice(session, mailbox, headers, report, _aware(received_at or utcnow()))
    threaded = _threaded(session, mailbox, headers)
    if report.kind is Kind.AUTO_REPLY:
        if threaded is None:
            return InboxDecision(InboxKind.NOT_OURS, report=report)
        return InboxDecision(InboxKind.AUTO_REPLY, threaded[0].id, threaded[1], report)
    if report.kind is not Kind.NOT_BOUNCE or headers.from_address == mailbox.address.lower():
        return InboxDecision(InboxKind.NOT_OURS, report=report)
    if threaded is None:
        latest = _recent_to(session, mailbox, headers.from_address, _aware(received_at or utcnow()))
        threaded = (latest, "from") if latest is not None else None
    if threaded is None:
        return InboxDecision(InboxKind.NOT_OURS, report=report)
    return InboxDecision(InboxKind.REPLY, threaded[0].id, threaded[1], report)


def _threaded(
    session: Session, mailbox: Mailbox, headers: _Headers
) -> tuple[DirectMessage, str] | None:
    for how, ids in (("in-reply-to", headers.in_reply_to), ("references", headers.references)):
        for message_id in reversed(ids):  # the latest of the thread first
            message = _ours(session, mailbox, message_id)
            if message is not None:
                return message, how
    return None


def _notice(
    session: Session, mailbox: Mailbox, headers: _Headers, report: Report, received_at: datetime
) -> InboxDecision:
    kind = InboxKind.BOUNCE if report.kind is Kind.BOUNCE else InboxKind.DELAY
    returned = report.original.message_id
    candidates = [("returned-message", returned)] if returned else []
    candidates += [("in-reply-to", m) for m in reversed(headers.in_reply_to)]
    candidates += [("references", m) for m in reversed(headers.references)]
    for how, message_id in candidates:
        message = _ours(session, mailbox, message_id)
        if message is None:
            continue
        recipient = _recipient_of(report, message.to_address)
        if recipient is not None:
            return InboxDecision(kind, message.id, how, report, recipient)
    if candidates:
        return InboxDecision(InboxKind.NOT_OURS, report=report)  # about another message
    # A notice that quotes no message (a gateway's own): the failed address and the time.
    for recipient in report.recipients:
        for address in (recipient.address, recipient.original_recipient):
            message = _recent_to(session, mailbox, address, received_at)
            if message is not None:
                return InboxDecision(kind, message.id, "recipient", report, recipient)
    return InboxDecision(InboxKind.NOT_OURS, report=report)


def _recipient_of(report: Report, address: str) -> RecipientResult | None:
    """The notice's recipient that is ``address``; a notice about one recipient whose address
    was rewritten on the way (forwarding) still counts. A notice naming only other addresses
    is not about this message."""
    address = address.strip().lower()
    for recipient in report.recipients:
        names = {a.strip().lower() for a in (recipient.address, recipient.original_recipient)}
        if address in names:
            return recipient
    if len(report.recipients) == 1:
        return report.recipients[0]
    return None


def _aware(value: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- acting on a decision ------------------------------------------------------------------------


def process_inbox_message(
    session: Session,
    account_id: int,
    mailbox_id: int,
    raw: bytes,
    *,
    received_at: datetime | None = None,
) -> tuple[InboxDecision, MailboxAction]:
    """Classify one message and record what it means; what to do with it in the mailbox.
    Safe to run twice for the same message (the caller owns the transaction)."""
    decision = classify_inbox_message(session, account_id, mailbox_id, raw, received_at=received_at)
    return decision, act_on_inbox_message(session, account_id, mailbox_id, raw, decision)


def act_on_inbox_message(
    session: Session, account_id: int, mailbox_id: int, raw: bytes, decision: InboxDecision
) -> MailboxAction:
    mailbox = _mailbox(session, account_id, mailbox_id)
    message = (
        session.get(DirectMessage, decision.direct_message_id)
        if decision.direct_message_id
        else None
    )
    if message is None or message.account_id != account_id:
        return MailboxAction()
    if decision.kind is InboxKind.REPLY:
        _replied(session, message)
        return MailboxAction()
    if not decision.is_notice or decision.report is None or decision.recipient is None:
        return MailboxAction()  # an auto-reply changes nothing
    event = _record_notice(session, mailbox, message, raw, decision)
    if event is not None:
        _apply_notice(session, message, event)
    return MailboxAction(flag=True, move_to=mailbox.bounce_folder.strip())


def _record_notice(
    session: Session,
    mailbox: Mailbox,
    message: DirectMessage,
    raw: bytes,
    decision: InboxDecision,
) -> BounceEvent | None:
    """The notice kept and its event recorded; None when this notice was recorded before."""
    assert decision.report is not None and decision.recipient is not None
    report, recipient = decision.report, decision.recipient
    digest = hashlib.sha256(f"imap:{mailbox.id}\n".encode() + raw).hexdigest()
    if session.scalar(select(RawBounce.id).where(RawBounce.sha256 == digest)) is not None:
        return None
    stored = RawBounce(
        account_id=mailbox.account_id,
        sha256=digest,
        source="imap",
        envelope_to=mailbox.address[:320],
        raw=raw,
        status=RawStatus.PROCESSED,
        kind=report.kind.value,
        parser_version=bounceback.__version__,
        processed_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(stored)
    except IntegrityError:  # the same notice recorded by another poller at the same moment
        return None
    event = BounceEvent(
        account_id=mailbox.account_id,
        raw_bounce_id=stored.id,
        delivery_id=None,
        contact_id=message.contact_id,
        email=message.to_address,
        matched_by=f"inbox:{decision.matched_by}"[:20],
        **intake.parsed_facts(report, recipient),
    )
    session.add(event)
    session.flush()
    return event


def _apply_notice(session: Session, message: DirectMessage, event: BounceEvent) -> None:
    label = Category(event.category).label
    data = {
        "event": event.id,
        "direct_message_id": message.id,
        "message_id": message.message_id,
        "category": event.category,
    }
    if event.kind == Kind.DELAY.value:
        add_timeline(
            session,
            message.account_id,
            message.contact_id,
            "email_delayed",
            f"“{message.subject}” delayed – {label}: {event.diagnostic[:300]}",
            data=data,
        )
        return
    if message.status in (direct.SENDING, direct.SENT):  # not one sent again since
        message.status = direct.BOUNCED
    message.bounce_category = event.category
    message.bounce_response = event.diagnostic
    strength = "Hard bounce" if event.hard else "Soft bounce"
    add_timeline(
        session,
        message.account_id,
        message.contact_id,
        "email_bounced",
        f"{strength} of “{message.subject}” (found in the sender's inbox) – {label}: "
        f"{event.diagnostic[:300]}",
        data=data,
    )
    _end_enrollments(
        session,
        message,
        EnrollmentState.BOUNCED,
        f"“{message.subject}” bounced: {label}",
        everything=event.hard,
    )
    _maybe_suppress(session, message, event, label)


def _maybe_suppress(
    session: Session, message: DirectMessage, event: BounceEvent, label: str
) -> None:
    """Only when the account says inbox bounces count for marketing email too."""
    account = session.get(Account, message.account_id)
    policy = policy_for(account.policy if account else None)
    if not policy.inbox_bounces_suppress or not policy.suppresses(event.category, event.hard):
        return
    suppress(
        session,
        message.account_id,
        event.email,
        SuppressionReason.HARD_BOUNCE,
        category=event.category,
        detail=event.diagnostic,
        event_id=event.id,
    )
    contact = session.get(Contact, message.contact_id)
    if contact is not None:
        contact.hard_bounce_reason = f"{label}: {event.diagnostic}"[:2000]
    check_global(session, event.email, accounts=policy.global_accounts, days=policy.global_days)


def _replied(session: Session, message: DirectMessage) -> None:
    ended = _end_enrollments(
        session,
        message,
        EnrollmentState.REPLIED,
        f"the contact replied to “{message.subject}”",
        everything=True,
    )
    if ended or not _reply_recorded(session, message):
        add_timeline(
            session,
            message.account_id,
            message.contact_id,
            "email_replied",
            f"Replied to “{message.subject}”",
            data={"direct_message_id": message.id, "message_id": message.message_id},
        )


def _reply_recorded(session: Session, message: DirectMessage) -> bool:
    """Whether a reply to this message is on the timeline already (seen before a restart)."""
    entries = session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.account_id == message.account_id,
            TimelineEntry.contact_id == message.contact_id,
            TimelineEntry.kind == "email_replied",
        )
    ).all()
    return any(entry.data.get("direct_message_id") == message.id for entry in entries)


def _end_enrollments(
    session: Session,
    message: DirectMessage,
    state: EnrollmentState,
    reason: str,
    *,
    everything: bool,
) -> int:
    """Unenroll: the message's sequence enrollment, and with ``everything`` every active one of
    the contact from the same sender (their address fails, or they answered). How many ended."""
    where = [
        Enrollment.account_id == message.account_id,
        Enrollment.state == EnrollmentState.ACTIVE,
    ]
    mailbox = session.get(Mailbox, message.mailbox_id) if message.mailbox_id else None
    if everything and mailbox is not None:
        where += [
            Enrollment.contact_id == message.contact_id,
            Enrollment.user_id == mailbox.user_id,
        ]
    elif message.enrollment_id is not None:
        where.append(Enrollment.id == message.enrollment_id)
    else:
        return 0
    ids = session.scalars(select(Enrollment.id).where(*where).order_by(Enrollment.id)).all()
    for enrollment_id in ids:
        sequences.unenroll(session, message.account_id, enrollment_id, state, reason)
    return len(ids)
