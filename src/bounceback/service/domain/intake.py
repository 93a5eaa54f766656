"""Bounce intake: store the raw message first, then parse, match and apply policy.

``store_raw`` is what every entry point calls (SMTP receiver, HTTP endpoint, sandbox, the relay's
own refusals): it keeps the bytes, idempotently by content hash, and enqueues the processing in
the same transaction. ``process`` (run by a worker) parses the message with the pure core, finds
the delivery each recipient's failure answers, records one event per recipient (again
idempotent), and lets ``effects`` apply the account's policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate, make_msgid

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import bounceback
from bounceback import Kind, parse
from bounceback.core.report import RecipientResult, Report
from bounceback.core.standards.status import find_status
from bounceback.service import jobs
from bounceback.service.db.models import (
    BounceEvent,
    Contact,
    Delivery,
    RawBounce,
    RawStatus,
    utcnow,
)
from bounceback.service.domain.effects import apply_event
from bounceback.service.domain.matching import Match, match_recipient, signed_deliveries
from bounceback.service.settings import Settings

PROCESS = "process_bounce"
# SMTP steps of our own session with the relay whose failure is ours, not the recipient's.
_OUR_SIDE = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL"})


def store_raw(
    session: Session,
    raw: bytes,
    *,
    source: str,
    envelope_from: str = "",
    envelope_to: str = "",
    account_id: int | None = None,
) -> tuple[RawBounce, bool]:
    """Keep the message (idempotent by content hash) and enqueue its processing in the same
    transaction. Returns the row and whether it is new. Commit before acknowledging receipt."""
    digest = _digest(raw, account_id)
    existing = session.scalar(select(RawBounce).where(RawBounce.sha256 == digest))
    if existing is not None:
        return existing, False
    row = RawBounce(
        sha256=digest,
        source=source,
        envelope_from=envelope_from[:320],
        envelope_to=envelope_to[:320],
        raw=raw,
        account_id=account_id,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same message stored by another process at the same moment
        again = session.scalar(select(RawBounce).where(RawBounce.sha256 == digest))
        if again is None:
            raise
        return again, False
    jobs.enqueue(session, PROCESS, {"raw_id": row.id}, key=f"raw:{row.id}")
    return row, True


def parsed_facts(report: Report, recipient: RecipientResult) -> dict[str, object]:
    """The columns of a ``BounceEvent`` that come from the parser (for every intake path)."""
    return {
        "kind": report.kind.value,
        "reason": recipient.reason.value,
        "category": recipient.category.value,
        "permanent": recipient.permanent,
        "hard": recipient.hard,
        "status_code": recipient.status,
        "reply_code": recipient.reply_code,
        "diagnostic": recipient.diagnostic[:8000],
        "remote_mta": recipient.remote_mta[:300],
        "rule_id": recipient.rule_id,
    }


def _digest(raw: bytes, account_id: int | None) -> str:
    # Idempotency is per sender: the same bytes posted by two accounts are two messages (and
    # one account's post never reveals that another sent the same).
    scope = f"account:{account_id}\n".encode() if account_id is not None else b""
    return hashlib.sha256(scope + raw).hexdigest()


@dataclass(frozen=True)
class Arriving:
    """A message received by a server of ours (no account yet: matching finds it)."""

    raw: bytes
    source: str
    envelope_from: str = ""
    envelope_to: str = ""


def store_many(session: Session, messages: Sequence[Arriving]) -> list[tuple[int, bool]]:
    """``store_raw`` for several messages at once, in three statements whatever their number
    (the SMTP receiver's group commit): ``(raw_id, new)`` for each, in order. The same bytes
    twice are one row. An ``IntegrityError`` means another process stored one of them at the
    same moment: roll back and store them one at a time with ``store_raw``."""
    digests = [_digest(message.raw, None) for message in messages]
    known = select(RawBounce.sha256, RawBounce.id).where(RawBounce.sha256.in_(set(digests)))
    ids: dict[str, int] = dict(session.execute(known).all())
    first: dict[str, int] = {}  # each digest not stored yet, and the first message carrying it
    for index, digest in enumerate(digests):
        if digest not in ids:
            first.setdefault(digest, index)
    if first:
        rows = [_raw_row(digest, messages[index]) for digest, index in first.items()]
        statement = insert(RawBounce).returning(RawBounce.id, sort_by_parameter_order=True)
        new_ids = session.scalars(statement, rows).all()
        ids.update(zip(first, new_ids, strict=True))
        now = utcnow()
        jobs.enqueue_new(session, PROCESS, [({"raw_id": i}, f"raw:{i}", now) for i in new_ids])
    return [(ids[digest], first.get(digest) == index) for index, digest in enumerate(digests)]


def _raw_row(digest: str, message: Arriving) -> dict[str, object]:
    return {
        "sha256": digest,
        "source": message.source,
        "envelope_from": message.envelope_from[:320],
        "envelope_to": message.envelope_to[:320],
        "raw": message.raw,
        "account_id": None,
    }


def process(factory: sessionmaker[Session], raw_id: int, settings: Settings) -> RawStatus:
    """Parse, match and apply one stored message (a worker job). Safe to run twice."""
    with factory() as session, session.begin():
        raw = session.get(RawBounce, raw_id, with_for_update=True)
        if raw is None:
            return RawStatus.FAILED
        if raw.status is not RawStatus.RECEIVED:
            return raw.status  # done already: processing is idempotent
        raw.status = process_in_session(session, raw, settings.secret_key)
        raw.processed_at = utcnow()
        return raw.status


def process_in_session(
    session: Session,
    raw: RawBounce,
    secret: str,
    forced: Delivery | None = None,
    *,
    sender_side: bool = False,
) -> RawStatus:
    report = parse(raw.raw)
    raw.kind = report.kind.value
    raw.parser_version = bounceback.__version__
    if not report.recipients or report.kind in (Kind.NOT_BOUNCE, Kind.AUTO_REPLY):
        return RawStatus.NOT_BOUNCE
    signed, forged = signed_deliveries(report, secret, raw.envelope_to)
    matched = 0
    for recipient in report.recipients:
        match = (
            Match(forced, "relay")
            if forced is not None
            else match_recipient(session, recipient, report, signed, trusted_account=_trusted(raw))
        )
        account_id = match.delivery.account_id if match else _trusted(raw)
        if account_id is None:
            continue
        if record_event(
            session,
            raw,
            report,
            recipient,
            account_id=account_id,
            match=match,
            sender_side=sender_side,
        ):
            matched += 1
        if raw.account_id is None:
            raw.account_id = account_id
    if matched:
        return RawStatus.PROCESSED
    return RawStatus.FORGED if forged else RawStatus.UNMATCHED


def _trusted(raw: RawBounce) -> int | None:
    """Only messages posted by an account's own systems (API key) are trusted without a token."""
    return raw.account_id if raw.source == "http" else None


def record_event(
    session: Session,
    raw: RawBounce,
    report: Report,
    recipient: RecipientResult,
    *,
    account_id: int,
    match: Match | None,
    sender_side: bool = False,
) -> BounceEvent | None:
    """One event per (raw message, address); the policy is applied once, when it is new."""
    email = (match.delivery.email if match else recipient.address).strip().lower()
    if not email:
        return None
    if (
        session.scalar(
            select(BounceEvent.id).where(
                BounceEvent.raw_bounce_id == raw.id, BounceEvent.email == email
            )
        )
        is not None
    ):
        return None
    contact_id = (
        match.delivery.contact_id
        if match
        else session.scalar(
            select(Contact.id).where(Contact.account_id == account_id, Contact.email == email)
        )
    )
    if match is None and contact_id is None:
        return None  # a trusted post about an address this account does not know
    event = BounceEvent(
        account_id=account_id,
        raw_bounce_id=raw.id,
        delivery_id=match.delivery.id if match else None,
        contact_id=contact_id,
        email=email,
        matched_by=match.by if match else "recipient",
        **parsed_facts(report, recipient),
        sender_side=sender_side,
    )
    session.add(event)
    session.flush()
    apply_event(session, event, report, match.delivery if match else None)
    return event


def record_rejection(
    session: Session,
    delivery: Delivery,
    *,
    reply_code: str,
    response: str,
    command: str,
    secret: str = "",
    relay: str = "relay",
) -> RawBounce:
    """The relay refused this recipient during the SMTP transaction (5xx at RCPT or DATA, or a
    temporary failure given up after the retry period): a bounce of that recipient with the
    server's response, exactly like a later NDR. An RFC 3464 report of the refusal is stored as
    the raw message (downloadable like any bounce) and processed at once for this delivery."""
    raw_bytes = rejection_report(
        delivery, reply_code=reply_code, response=response, command=command, relay=relay
    )
    raw, _ = store_raw(session, raw_bytes, source="relay", account_id=delivery.account_id)
    if raw.status is RawStatus.RECEIVED:
        # A refusal at MAIL FROM is the relay refusing our sender, and a failure before it (no
        # connection, greeting, TLS or login for the whole retry period) is our relay's problem:
        # neither says anything about the contact.
        raw.status = process_in_session(
            session, raw, secret, forced=delivery, sender_side=command.upper() in _OUR_SIDE
        )
        raw.processed_at = utcnow()
    return raw


def rejection_report(
    delivery: Delivery, *, reply_code: str, response: str, command: str, relay: str
) -> bytes:
    """An RFC 3464 delivery status notification of a refusal seen during our own SMTP session."""
    permanent = reply_code.startswith("5")
    status = find_status(response) or ("5.0.0" if permanent else "4.0.0")
    now = formatdate(localtime=False)
    boundary = f"bounceback-{delivery.id}-{utcnow().strftime('%Y%m%d%H%M%S%f')}"
    answer = " ".join(f"{reply_code} {response}".split())
    when = f"(in reply to {command or 'RCPT'} command)"
    return "\n".join(
        [
            "From: Mail Delivery System <mailer-daemon@bounceback.invalid>",
            f"To: {delivery.email}",
            "Subject: Undelivered Mail Returned to Sender",
            f"Date: {now}",
            f"Message-ID: {make_msgid(domain='bounceback.invalid')}",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain; charset=utf-8",
            "",
            f"The relay {relay} refused <{delivery.email}> during the SMTP session:",
            "",
            f"    {answer} {when}",
            "",
            f"--{boundary}",
            "Content-Type: message/delivery-status",
            "",
            f"Reporting-MTA: dns; {relay}",
            f"Arrival-Date: {now}",
            "",
            f"Final-Recipient: rfc822; {delivery.email}",
            "Action: failed",
            f"Status: {status}",
            f"Remote-MTA: dns; {relay}",
            f"Diagnostic-Code: smtp; {answer} {when}",
            f"Last-Attempt-Date: {now}",
            "",
            f"--{boundary}",
            "Content-Type: text/rfc822-headers",
            "",
            f"Message-ID: {delivery.message_id}",
            f"To: {delivery.email}",
            "",
            f"--{boundary}--",
            "",
        ]
    ).encode("utf-8", "replace")


@dataclass(frozen=True)
class ReparseSummary:
    messages: int
    changed: int  # events whose classification changed
    matched: int  # messages that matched nothing before and do now


def reparse_all(
    factory: sessionmaker[Session], settings: Settings, batch: int = 200
) -> ReparseSummary:
    """Re-read every stored message with this parser version (after a parser upgrade).

    Events keep their identity; their classification is brought up to date, and a bounce that
    becomes hard now has the effects of a hard bounce. Messages that matched nothing are
    processed again: a better parser may now find the delivery they answer.
    """
    messages = changed = matched = 0
    last_id = 0
    while True:
        with factory() as session, session.begin():
            rows = session.scalars(
                select(RawBounce).where(RawBounce.id > last_id).order_by(RawBounce.id).limit(batch)
            ).all()
            if not rows:
                break
            for raw in rows:
                last_id = raw.id
                messages += 1
                changed += _reclassify(session, raw)
                if raw.status in (
                    RawStatus.UNMATCHED,
                    RawStatus.FORGED,
                    RawStatus.NOT_BOUNCE,
                    RawStatus.FAILED,
                ):
                    status = process_in_session(session, raw, settings.secret_key)
                    matched += status is RawStatus.PROCESSED
                    raw.status = status
                raw.parser_version = bounceback.__version__
    return ReparseSummary(messages, changed, matched)


def _reclassify(session: Session, raw: RawBounce) -> int:
    events = session.scalars(select(BounceEvent).where(BounceEvent.raw_bounce_id == raw.id)).all()
    if not events:
        return 0
    report = parse(raw.raw)
    by_address = {r.address.strip().lower(): r for r in report.recipients}
    changed = 0
    for event in events:
        recipient = by_address.get(event.email)
        if recipient is None:
            continue
        fresh = (
            recipient.reason.value,
            recipient.category.value,
            recipient.rule_id,
            recipient.hard,
            recipient.permanent,
        )
        if fresh == (event.reason, event.category, event.rule_id, event.hard, event.permanent):
            continue
        became_hard = recipient.hard and not event.hard
        event.reason, event.category, event.rule_id, event.hard, event.permanent = fresh
        changed += 1
        # Inbox bounces (one-to-one email) suppress only by the account's policy, which their
        # own processing applied; re-reading does not apply marketing effects to them.
        if became_hard and event.kind == Kind.BOUNCE.value and raw.source != "imap":
            delivery = session.get(Delivery, event.delivery_id) if event.delivery_id else None
            apply_event(session, event, report, delivery)
    return changed
