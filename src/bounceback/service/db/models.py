"""The service's tables. Every row that belongs to a customer carries ``account_id``, and every
query of the domain layer filters on it: no input may let one account see another's data.

Raw first, derived after: a bounce message is stored (``RawBounce``) before anything is derived
from it; ``BounceEvent`` rows are derived and can be rebuilt by re-parsing after a parser upgrade.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as the enum's value (readable in SQL), checked by a constraint on both databases.
    return Enum(
        cls,
        values_callable=lambda c: [m.value for m in c],
        native_enum=False,
        validate_strings=True,
        length=32,
    )


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class SendStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(enum.StrEnum):
    """One recipient of one send. queued -> sent -> delivered | pending -> bounced_*; or
    not_sent (suppressed or invalid, never handed to the relay)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    PENDING = "pending"  # deferred: a delay notice or a 4xx from the relay; retried
    BOUNCED_HARD = "bounced_hard"
    BOUNCED_SOFT = "bounced_soft"
    NOT_SENT = "not_sent"


class NotSentReason(enum.StrEnum):
    ACCOUNT_BOUNCE = "account_bounce"  # hard-bounced in this account
    GLOBAL_BOUNCE = "global_bounce"  # hard-bounced in 3+ accounts in 60 days
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"
    INVALID_ADDRESS = "invalid_address"
    CANCELLED = "cancelled"  # the send was cancelled before this recipient was sent to


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    GLOBAL_BOUNCE = "global_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"


class RawStatus(enum.StrEnum):
    RECEIVED = "received"  # stored, not processed yet
    PROCESSED = "processed"  # parsed and matched; events recorded
    UNMATCHED = "unmatched"  # parsed, matched no delivery: kept for inspection, changed nothing
    FORGED = "forged"  # VERP token failed verification and nothing else matched
    NOT_BOUNCE = "not_bounce"  # an auto-reply or unrelated mail
    FAILED = "failed"  # processing raised; kept with the error, retried by the worker


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Per-account policy (see domain/policy.py for the defaults and their meaning).
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    account: Mapped[Account] = relationship()


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown to users, not secret
    key_hash: Mapped[str] = mapped_column(String(128))  # sha256 of the whole key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("account_id", "email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))  # normalised: stripped, lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # "Email hard bounce reason": the category label and the server's response.
    hard_bounce_reason: Mapped[str] = mapped_column(Text, default="")
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_unbounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Email(Base):
    __tablename__ = "emails"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    from_address: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(998))
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    cloned_from_id: Mapped[int | None] = mapped_column(ForeignKey("emails.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Send(Base):
    __tablename__ = "sends"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id"))
    status: Mapped[SendStatus] = mapped_column(_enum(SendStatus), default=SendStatus.DRAFT)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pause_reason: Mapped[str] = mapped_column(Text, default="")
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("sends.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    email: Mapped[Email] = relationship()


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("send_id", "contact_id"),
        Index("ix_deliveries_account_email", "account_id", "email"),
        Index("ix_deliveries_send_state", "send_id", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    send_id: Mapped[int] = mapped_column(ForeignKey("sends.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState), default=DeliveryState.QUEUED)
    not_sent_reason: Mapped[NotSentReason | None] = mapped_column(_enum(NotSentReason))
    message_id: Mapped[str] = mapped_column(String(300), default="", index=True)
    verp_token: Mapped[str] = mapped_column(String(100), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_deferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last classification of this delivery's failure, as shown in the Recipients tab.
    category: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(String(40), default="")
    response: Mapped[str] = mapped_column(Text, default="")  # the server's full response
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class RawBounce(Base):
    __tablename__ = "raw_bounces"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Known once matched (or given by the API key that posted it); None while unmatched.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # same bytes twice: one row
    source: Mapped[str] = mapped_column(String(20))  # smtp, http, relay, imap, sandbox
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    envelope_to: Mapped[str] = mapped_column(String(320), default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[RawStatus] = mapped_column(
        _enum(RawStatus), default=RawStatus.RECEIVED, index=True
    )
    kind: Mapped[str] = mapped_column(String(20), default="")
    parser_version: Mapped[str] = mapped_column(String(20), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BounceEvent(Base):
    """One recipient's fact from one raw message. Unique per (raw, address): receiving the same
    NDR twice, or re-parsing it, records one event."""

    __tablename__ = "bounce_events"
    __table_args__ = (
        UniqueConstraint("raw_bounce_id", "email"),
        Index("ix_bounce_events_account_email", "account_id", "email"),
        # The global-bounce check counts one address's bounces across every account.
        Index("ix_bounce_events_email", "email", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    raw_bounce_id: Mapped[int] = mapped_column(ForeignKey("raw_bounces.id"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(20))  # bounce, delay, delivered, complaint, ...
    reason: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(40))
    permanent: Mapped[bool] = mapped_column(Boolean)
    hard: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[str] = mapped_column(String(20), default="")
    reply_code: Mapped[str] = mapped_column(String(3), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    remote_mta: Mapped[str] = mapped_column(String(300), default="")
    rule_id: Mapped[str] = mapped_column(String(100), default="")
    matched_by: Mapped[str] = mapped_column(String(20), default="")  # verp, header, message-id, ...
    sender_side: Mapped[bool] = mapped_column(Boolean, default=False)  # counted against no one
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Suppression(Base):
    """An address that must not receive marketing email: in one account, or (account_id None)
    everywhere. Lifting keeps the row (lifted_at) so the history stays."""

    __tablename__ = "suppressions"
    __table_args__ = (Index("ix_suppressions_lookup", "email", "account_id", "lifted_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    category: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(Text, default="")  # the server's response
    event_id: Mapped[int | None] = mapped_column(ForeignKey("bounce_events.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lift_note: Mapped[str] = mapped_column(Text, default="")


class UnbounceAudit(Base):
    __tablename__ = "unbounce_audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    suppression_id: Mapped[int] = mapped_column(ForeignKey("suppressions.id"))
    # None: lifted automatically (a sender-side problem, not the contact's); the note says why.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TimelineEntry(Base):
    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_contact", "account_id", "contact_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(40))  # sent, delivered, bounced, complained, ...
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alert(Base):
    """A sender-side problem the account must act on (DMARC, a provider refusing many)."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(200), default="")  # one open alert per key
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """Background work shared by any number of workers (PostgreSQL: SELECT ... FOR UPDATE SKIP
    LOCKED; SQLite: one writer at a time). ``key`` makes enqueueing idempotent."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "done_at", "run_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_by: Mapped[str] = mapped_column(String(100), default="")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text, default="")


class OutboxMessage(Base):
    """A message the sandbox 'sent' (no relay configured): kept for the UI to show."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    envelope_from: Mapped[str] = mapped_column(String(320))
    envelope_to: Mapped[str] = mapped_column(String(320))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- Connected inboxes, one-to-one email and sequences (issue 6) ----------------------------


class MailboxSecurity(enum.StrEnum):
    TLS = "tls"  # implicit TLS (IMAPS 993, SMTPS 465)
    STARTTLS = "starttls"
    NONE = "none"  # loopback and tests only


class Mailbox(Base):
    """A user's own mailbox: IMAP to read (bounces of their one-to-one email land there), SMTP
    submission to send as themselves. Passwords are encrypted at rest (domain/secrets_box.py)."""

    __tablename__ = "mailboxes"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    address: Mapped[str] = mapped_column(String(320))  # the From of the user's email
    imap_host: Mapped[str] = mapped_column(String(255))
    imap_port: Mapped[int] = mapped_column(Integer)
    imap_security: Mapped[MailboxSecurity] = mapped_column(_enum(MailboxSecurity))
    imap_login: Mapped[str] = mapped_column(String(320))
    imap_password: Mapped[str] = mapped_column(Text)  # encrypted
    smtp_host: Mapped[str] = mapped_column(String(255))
    smtp_port: Mapped[int] = mapped_column(Integer)
    smtp_security: Mapped[MailboxSecurity] = mapped_column(_enum(MailboxSecurity))
    smtp_login: Mapped[str] = mapped_column(String(320))
    smtp_password: Mapped[str] = mapped_column(Text)  # encrypted
    bounce_folder: Mapped[str] = mapped_column(String(200), default="")  # "" = flag only
    # UIDVALIDITY/UID checkpoint of the INBOX: a restart neither reprocesses nor misses mail.
    # Both are unsigned 32-bit numbers in IMAP: wider than PostgreSQL's integer.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Which poller reads the mailbox (one at a time, however many workers run) and until when.
    poll_owner: Mapped[str] = mapped_column(String(100), default="")
    poll_lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DirectMessage(Base):
    """A one-to-one email (or a sequence step) a user sent to a contact from their mailbox."""

    __tablename__ = "direct_messages"
    __table_args__ = (Index("ix_direct_messages_mailbox_sent", "mailbox_id", "sent_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # None once the user disconnected the mailbox (the history stays).
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    body: Mapped[str] = mapped_column(Text, default="")  # kept to "send again later"
    message_id: Mapped[str] = mapped_column(String(300), index=True)
    in_reply_to: Mapped[str] = mapped_column(String(300), default="")  # threads sequence steps
    # sending (stored before the SMTP server is asked, so a fast bounce finds it), sent,
    # bounced, failed (the user's server refused or could not be reached), retried (sent again)
    status: Mapped[str] = mapped_column(String(20), default="sent")
    bounce_category: Mapped[str] = mapped_column(String(40), default="")
    bounce_response: Mapped[str] = mapped_column(Text, default="")
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # "send again later"
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Sequence(Base):
    __tablename__ = "sequences"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SequenceStep(Base):
    __tablename__ = "sequence_steps"
    __table_args__ = (UniqueConstraint("sequence_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 ...
    delay_seconds: Mapped[int] = mapped_column(Integer)  # after the previous step (or enrolment)
    subject: Mapped[str] = mapped_column(String(998))
    body: Mapped[str] = mapped_column(Text)


class EnrollmentState(enum.StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    REPLIED = "replied"  # unenrolled: the contact replied
    BOUNCED = "bounced"  # unenrolled: a step bounced
    STOPPED = "stopped"  # unenrolled by a user


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (Index("ix_enrollments_due", "state", "next_step_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # sends from this user's mailbox
    state: Mapped[EnrollmentState] = mapped_column(
        _enum(EnrollmentState), default=EnrollmentState.ACTIVE
    )
    next_position: Mapped[int] = mapped_column(Integer, default=1)
    next_step_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    thread_message_id: Mapped[str] = mapped_column(String(300), default="")  # step 1's Message-ID
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_reason: Mapped[str] = mapped_column(Text, default="")  # why it ended, for people
