"""Deciding what a message in a user's connected mailbox is, and acting on it (domain/inbox.py):
a bounce or delay notice of an email we sent, an auto-reply, a reply, or none of ours. On SQLite
and PostgreSQL; the IMAP side is tested against a real Dovecot in tests/mta/test_inbox_e2e.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Account,
    BounceEvent,
    DirectMessage,
    Enrollment,
    EnrollmentState,
    MailboxSecurity,
    RawBounce,
    Suppression,
    TimelineEntry,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import direct, inbox, mailboxes, policy, sequences
from bounceback.service.domain.errors import Invalid, NotFound
from bounceback.service.domain.inbox import InboxKind
from bounceback.service.receivers import imap, imapconn
from bounceback.service.settings import Settings

from builders import account, member

SETTINGS = Settings(secret_key="inbox-test-secret")
SENDER = "alice@inbox.test"
CONTACT = "bob@remote.test"


# --- messages as they arrive in the INBOX ---------------------------------------------------------


def dsn(original_id: str, recipient: str = CONTACT, *, action: str = "failed") -> bytes:
    """A delivery status notification like Postfix's, with the returned message's headers."""
    status, code = ("5.1.1", "550 5.1.1") if action == "failed" else ("4.7.0", "421 4.7.0")
    words = "User unknown" if action == "failed" else "Service not available, try again later"
    return f"""\
From: MAILER-DAEMON@mta.test (Mail Delivery System)
To: {SENDER}
Subject: {"Undelivered Mail Returned to Sender" if action == "failed" else "Delayed Mail"}
Message-ID: <notice-{original_id.strip("<>")}@mta.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.test

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.remote.test
Diagnostic-Code: smtp; {code} <{recipient}>: Recipient address rejected: {words}

--B
Content-Type: text/rfc822-headers

From: Alice <{SENDER}>
To: {recipient}
Subject: Hello
Message-ID: {original_id}

--B--
""".encode()


def gateway_notice(recipient: str = CONTACT) -> bytes:
    """A security gateway's own notice: no report, nothing of the original message."""
    return f"""\
From: Mail Security Gateway <postmaster@gw.remote.test>
To: {SENDER}
Subject: Delivery failure notification
Message-ID: <gw-1@gw.remote.test>

Your message could not be delivered to the following recipients:

    {recipient}
    Reason: 550 5.1.1 <{recipient}>... User unknown

This is an automatically generated message.
""".encode()


def out_of_office(in_reply_to: str) -> bytes:
    return f"""\
From: Bob <{CONTACT}>
To: {SENDER}
Subject: Out of Office: Hello
Auto-Submitted: auto-replied
In-Reply-To: {in_reply_to}
Message-ID: <ooo-1@remote.test>

I am out of the office until Monday and will read your message when I return.
""".encode()


def reply(in_reply_to: str = "", sender: str = CONTACT) -> bytes:
    threading = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n" if in_reply_to else ""
    return f"""\
From: Bob <{sender}>
To: {SENDER}
Subject: Re: Hello
{threading}Message-ID: <reply-1@remote.test>

Thanks, sounds good. The box was full of work today, I will call you.
""".encode()


# --- the world ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    account_id: int
    user_id: int
    mailbox_id: int
    contact_id: int
    message_id: str  # of the email we sent to the contact
    direct_id: int
    enrollment_id: int | None


def make_world(
    factory: sessionmaker[Session], *, enrolled: bool = False, bounce_folder: str = ""
) -> World:
    from bounceback.service.domain import contacts  # noqa: PLC0415

    with transaction(factory) as session:
        acme = account(session)
        user = member(session, acme.id, SENDER)
        endpoint = mailboxes.Endpoint("127.0.0.1", 1143, MailboxSecurity.NONE, SENDER, "secret")
        form = mailboxes.MailboxForm(endpoint, endpoint, SENDER, bounce_folder)
        mailbox = mailboxes.connect(session, acme.id, user.id, form, SETTINGS, check=False)
        contact = contacts.create_contact(session, acme.id, CONTACT, "Bob")
        enrollment_id = None
        if enrolled:
            steps = [sequences.StepInput(f"Step {n}", f"Body {n}", 3600) for n in (1, 2, 3)]
            sequence = sequences.create_sequence(session, acme.id, "Outreach", steps)
            enrollment = sequences.enroll(session, acme.id, sequence.id, contact.id, user.id)
            enrollment_id = enrollment.id
        sent = direct.start(
            session,
            acme.id,
            user.id,
            contact.id,
            subject="Hello",
            body="Hi Bob",
            enrollment_id=enrollment_id,
        )
        sent.status = direct.SENT
        return World(
            acme.id, user.id, mailbox.id, contact.id, sent.message_id, sent.id, enrollment_id
        )


def process(factory: sessionmaker[Session], world: World, raw: bytes) -> tuple[object, object]:
    with transaction(factory) as session:
        return inbox.process_inbox_message(session, world.account_id, world.mailbox_id, raw)


def count(factory: sessionmaker[Session], model: type, **where: object) -> int:
    with factory() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query) or 0


def timeline_kinds(factory: sessionmaker[Session], world: World) -> list[str]:
    with factory() as session:
        rows = session.scalars(
            select(TimelineEntry.kind)
            .where(TimelineEntry.contact_id == world.contact_id)
            .order_by(TimelineEntry.id)
        ).all()
    return list(rows)


def enrollment_state(factory: sessionmaker[Session], world: World) -> EnrollmentState:
    with factory() as session:
        enrollment = session.get(Enrollment, world.enrollment_id)
        assert enrollment is not None
        return enrollment.state


# --- bounces ----------------------------------------------------------------------------------


def test_a_bounce_of_our_email_is_recorded_once_and_flagged(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, enrolled=True)
    decision, action = process(factory, world, dsn(world.message_id))
    assert isinstance(decision, inbox.InboxDecision)
    assert decision.kind is InboxKind.BOUNCE
    assert decision.direct_message_id == world.direct_id
    assert decision.matched_by == "returned-message"
    assert action == inbox.MailboxAction(flag=True, move_to="")
    with factory() as session:
        event = session.scalars(select(BounceEvent)).one()
        assert (event.email, event.kind, event.category, event.hard) == (
            CONTACT,
            "bounce",
            "unknown_user",
            True,
        )
        assert event.contact_id == world.contact_id and event.delivery_id is None
        assert "550 5.1.1" in event.diagnostic
        raw = session.get(RawBounce, event.raw_bounce_id)
        assert raw is not None and (raw.source, raw.account_id) == ("imap", world.account_id)
        sent = session.get(DirectMessage, world.direct_id)
        assert sent is not None
        assert (sent.status, sent.bounce_category) == ("bounced", "unknown_user")
        assert "User unknown" in sent.bounce_response
        entry = session.scalars(
            select(TimelineEntry).where(TimelineEntry.kind == "email_bounced")
        ).one()
        assert entry.summary.startswith("Hard bounce of “Hello”")
        assert "550 5.1.1" in entry.summary
        assert entry.data["event"] == event.id
    assert enrollment_state(factory, world) is EnrollmentState.BOUNCED
    # Not suppressed from marketing email: the account's policy does not say so.
    assert count(factory, Suppression) == 0
    # The same notice again (a restart before the checkpoint was written): nothing more.
    kinds = timeline_kinds(factory, world)
    decision, action = process(factory, world, dsn(world.message_id))
    assert action == inbox.MailboxAction(flag=True, move_to="")
    assert count(factory, BounceEvent) == 1
    assert timeline_kinds(factory, world) == kinds


def test_the_policy_can_make_inbox_bounces_suppress(factory: sessionmaker[Session]) -> None:
    world = make_world(factory)
    with transaction(factory) as session:
        acme = session.get(Account, world.account_id)
        assert acme is not None
        acme.policy = policy.validated({"inbox_bounces_suppress": True})
    process(factory, world, dsn(world.message_id))
    with factory() as session:
        row = session.scalars(select(Suppression)).one()
        assert (row.account_id, row.email, row.category) == (
            world.account_id,
            CONTACT,
            "unknown_user",
        )


def test_the_policy_key_is_a_switch() -> None:
    assert policy.policy_for({}).inbox_bounces_suppress is False
    assert policy.policy_for({"inbox_bounces_suppress": True}).inbox_bounces_suppress is True
    assert policy.as_dict(policy.policy_for({}))["inbox_bounces_suppress"] is False
    with pytest.raises(Invalid, match="inbox_bounces_suppress: true or false"):
        policy.validated({"inbox_bounces_suppress": "yes"})


def test_a_bounce_folder_moves_the_notice(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, bounce_folder="Bounces")
    _, action = process(factory, world, dsn(world.message_id))
    assert action == inbox.MailboxAction(flag=True, move_to="Bounces")


def test_a_gateway_notice_is_matched_by_address_and_time(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, enrolled=True)
    decision, action = process(factory, world, gateway_notice())
    assert isinstance(decision, inbox.InboxDecision)
    assert (decision.kind, decision.direct_message_id, decision.matched_by) == (
        InboxKind.BOUNCE,
        world.direct_id,
        "recipient",
    )
    assert action == inbox.MailboxAction(flag=True)
    assert enrollment_state(factory, world) is EnrollmentState.BOUNCED


def test_a_gateway_notice_long_after_our_send_is_not_ours(factory: sessionmaker[Session]) -> None:
    world = make_world(factory)
    with transaction(factory) as session:
        sent = session.get(DirectMessage, world.direct_id)
        assert sent is not None
        sent.sent_at = utcnow() - inbox.RECENT - timedelta(hours=1)
    decision, action = process(factory, world, gateway_notice())
    assert isinstance(decision, inbox.InboxDecision) and decision.kind is InboxKind.NOT_OURS
    assert action == inbox.MailboxAction()
    assert count(factory, BounceEvent) == 0


def test_a_bounce_of_mail_sent_with_another_client_is_left_alone(
    factory: sessionmaker[Session],
) -> None:
    """Even to the same address we wrote to: the notice names another message."""
    world = make_world(factory, enrolled=True)
    kinds = timeline_kinds(factory, world)
    decision, action = process(factory, world, dsn("<by-thunderbird-1@inbox.test>"))
    assert isinstance(decision, inbox.InboxDecision) and decision.kind is InboxKind.NOT_OURS
    assert action == inbox.MailboxAction()
    assert count(factory, BounceEvent) == 0
    assert count(factory, RawBounce) == 0
    assert timeline_kinds(factory, world) == kinds
    assert enrollment_state(factory, world) is EnrollmentState.ACTIVE


def test_a_notice_about_another_recipient_of_ours_is_not_this_contact(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory)
    both = dsn(world.message_id, "someone.else@remote.test").replace(
        b"\n--B\nContent-Type: text/rfc822-headers",
        b"Final-Recipient: rfc822; third@remote.test\nAction: failed\nStatus: 5.1.1\n\n"
        b"--B\nContent-Type: text/rfc822-headers",
    )
    decision, _ = process(factory, world, both)
    assert isinstance(decision, inbox.InboxDecision) and decision.kind is InboxKind.NOT_OURS


def test_a_delay_notice_is_on_the_timeline_and_ends_nothing(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, enrolled=True)
    decision, action = process(factory, world, dsn(world.message_id, action="delayed"))
    assert isinstance(decision, inbox.InboxDecision) and decision.kind is InboxKind.DELAY
    assert action == inbox.MailboxAction(flag=True)
    assert "email_delayed" in timeline_kinds(factory, world)
    assert enrollment_state(factory, world) is EnrollmentState.ACTIVE
    with factory() as session:
        sent = session.get(DirectMessage, world.direct_id)
        assert sent is not None and sent.status == "sent"


# --- auto-replies and replies -------------------------------------------------------------------


def test_an_out_of_office_reply_is_not_a_bounce_and_changes_nothing(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, enrolled=True)
    kinds = timeline_kinds(factory, world)
    decision, action = process(factory, world, out_of_office(world.message_id))
    assert isinstance(decision, inbox.InboxDecision)
    assert (decision.kind, decision.direct_message_id) == (InboxKind.AUTO_REPLY, world.direct_id)
    assert action == inbox.MailboxAction()
    assert enrollment_state(factory, world) is EnrollmentState.ACTIVE
    assert timeline_kinds(factory, world) == kinds
    assert count(factory, BounceEvent) == 0
    with factory() as session:
        sent = session.get(DirectMessage, world.direct_id)
        assert sent is not None and sent.status == "sent"


def test_a_reply_unenrolls_once(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, enrolled=True)
    decision, action = process(factory, world, reply(world.message_id))
    assert isinstance(decision, inbox.InboxDecision)
    assert (decision.kind, decision.matched_by) == (InboxKind.REPLY, "in-reply-to")
    assert action == inbox.MailboxAction()  # the user's reply is theirs: not touched
    assert enrollment_state(factory, world) is EnrollmentState.REPLIED
    process(factory, world, reply(world.message_id))
    assert timeline_kinds(factory, world).count("email_replied") == 1
    assert count(factory, BounceEvent) == 0


def test_an_unthreaded_message_from_the_contact_is_a_reply(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, enrolled=True)
    decision, _ = process(factory, world, reply())
    assert isinstance(decision, inbox.InboxDecision)
    assert (decision.kind, decision.matched_by) == (InboxKind.REPLY, "from")
    assert enrollment_state(factory, world) is EnrollmentState.REPLIED


def test_mail_from_strangers_and_our_own_copies_are_not_ours(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, enrolled=True)
    stranger = reply(sender="carol@elsewhere.test")
    own_copy = f"From: {SENDER}\nTo: {CONTACT}\nSubject: Hello\nMessage-ID: {world.message_id}\n"
    own_copy += f"References: {world.message_id}\n\nHi Bob\n"
    for raw in (stranger, own_copy.encode()):
        decision, action = process(factory, world, raw)
        assert isinstance(decision, inbox.InboxDecision) and decision.kind is InboxKind.NOT_OURS
        assert action == inbox.MailboxAction()
    assert enrollment_state(factory, world) is EnrollmentState.ACTIVE


def test_another_accounts_mailbox_is_not_found(factory: sessionmaker[Session]) -> None:
    world = make_world(factory)
    with transaction(factory) as session:
        other = account(session, "Globex")
        with pytest.raises(NotFound):
            inbox.classify_inbox_message(session, other.id, world.mailbox_id, dsn(world.message_id))


def test_a_lease_of_a_gone_process_of_this_machine_is_stale() -> None:
    me = imap.owner_name()
    host, pid, incarnation, _ = me.split(":")
    assert not imap.stale(me)
    assert not imap.stale(f"{host}:{pid}:{incarnation}:another-poller")  # this process, alive
    assert imap.stale(f"{host}:{pid}:earlier:poller")  # an earlier process with our pid
    assert not imap.stale(f"elsewhere.example:{pid}:x:y")  # another machine's: wait for it
    assert not imap.stale(f"{host}:1:x:y")  # alive
    assert not imap.stale("not an owner")


def test_imap_folder_names_dates_and_internal_dates() -> None:
    assert imapconn.folder_name("Bounces") == '"Bounces"'
    assert imapconn.folder_name("Sales & co") == '"Sales &- co"'
    assert imapconn.folder_name("Rückläufer") == '"R&APw-ckl&AOQ-ufer"'  # modified UTF-7
    assert imapconn.imap_date(datetime(2026, 3, 7, 23, 59, tzinfo=UTC)) == "07-Mar-2026"
    parsed = imapconn.parse_internal_date(b" 1-Dec-2026 06:18:11 +0100")
    assert parsed == datetime(2026, 12, 1, 5, 18, 11, tzinfo=UTC)
    assert imapconn.parse_internal_date(b"yesterday") is None
