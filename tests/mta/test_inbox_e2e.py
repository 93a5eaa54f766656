"""End to end with a real user mailbox: a private Dovecot (IMAP, and LMTP for delivery) holds the
user's INBOX; a private Postfix is the user's submission server and delivers their mail's notices
to that INBOX over LMTP; the remote domain's server refuses unknown users. bounceback's inbox
poller (receivers/imap.py) watches the INBOX with IDLE and puts the bounces of the email it sent
on the contact's timeline, leaving everything else untouched.

Runs on SQLite and on PostgreSQL. Dovecot and Postfix are started once for the module; each test
has its own Dovecot user (and so its own INBOX) and its own database.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from email.message import EmailMessage
from time import monotonic, sleep
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service import worker
from bounceback.service.db.models import (
    BounceEvent,
    Contact,
    DirectMessage,
    Enrollment,
    EnrollmentState,
    Mailbox,
    MailboxSecurity,
    TimelineEntry,
    utcnow,
)
from bounceback.service.db.session import make_engine, make_sessionmaker, transaction
from bounceback.service.domain import accounts, contacts, direct, mailboxes, sequences
from bounceback.service.receivers import imapconn
from bounceback.service.receivers.imap import InboxPoller, PollerOptions
from bounceback.service.settings import Settings
from imap_support import INBOX_DOMAIN, Dovecot, InboxPostfix, require_dovecot
from mta_support import RemoteMX, require_postfix, start_smtp, wait_for

SETTINGS = Settings(secret_key="inbox-e2e-secret")
PASSWORD = "mailbox-password-1"
FAST = PollerOptions(
    idle_cycle=2.0, interval=0.5, lease=30.0, refresh=0.2, backoff_min=0.2, backoff_max=1.0,
    timeout=10.0,
)  # fmt: skip
DETECTED_WITHIN = 5.0  # seconds from sending to the bounce on the timeline


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@dataclass
class Lab:
    dovecot: Dovecot
    postfix: InboxPostfix
    remote: RemoteMX


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_dovecot()
    require_postfix()
    remote = RemoteMX()
    controller = start_smtp(remote)
    dovecot = Dovecot(password=PASSWORD, tls=True)
    postfix = InboxPostfix(controller.port, dovecot.lmtp_port)
    try:
        dovecot.start()
        postfix.start()
        yield Lab(dovecot, postfix, remote)
    finally:
        postfix.stop()
        dovecot.remove()
        controller.stop()


@dataclass(frozen=True)
class User:
    """One sales user: their Dovecot mailbox connected in bounceback, and a contact."""

    login: str
    account_id: int
    user_id: int
    mailbox_id: int
    contact_id: int
    contact: str


def connect_user(
    lab: Lab, factory: sessionmaker[Session], *, contact: str = "", bounce_folder: str = ""
) -> User:
    login = f"sales-{uuid.uuid4().hex[:8]}@{INBOX_DOMAIN}"
    imap = mailboxes.Endpoint(
        "127.0.0.1", lab.dovecot.imap_port, MailboxSecurity.NONE, login, PASSWORD
    )
    smtp = mailboxes.Endpoint("127.0.0.1", lab.postfix.port, MailboxSecurity.NONE, "")
    form = mailboxes.MailboxForm(imap, smtp, login, bounce_folder)
    address = contact or f"unknown-{uuid.uuid4().hex[:6]}@remote.test"
    with transaction(factory) as session:
        account = accounts.create_account(session, "Acme")
        user = accounts.create_user(session, account.id, login, "user password 123")
        mailbox = mailboxes.connect(session, account.id, user.id, form, SETTINGS)  # checked
        row = contacts.create_contact(session, account.id, address, "Bob")
        return User(login, account.id, user.id, mailbox.id, row.id, address)


@pytest.fixture
def poller(factory: sessionmaker[Session]) -> Iterator[Callable[..., InboxPoller]]:
    """``poller(options)``: a running inbox poller, stopped at the end of the test."""
    started: list[InboxPoller] = []

    def start(options: PollerOptions = FAST) -> InboxPoller:
        running = InboxPoller(SETTINGS, factory, options)
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def send(factory: sessionmaker[Session], user: User, subject: str = "Hello") -> DirectMessage:
    return direct.send_now(
        factory, SETTINGS, user.account_id, user.user_id, user.contact_id,
        subject=subject, body="Hi Bob, a quick question.",
    )  # fmt: skip


def timeline(factory: sessionmaker[Session], user: User, kind: str) -> list[TimelineEntry]:
    with factory() as session:
        rows = session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.contact_id == user.contact_id, TimelineEntry.kind == kind)
            .order_by(TimelineEntry.id)
        ).all()
    return list(rows)


def events(factory: sessionmaker[Session], user: User) -> int:
    with factory() as session:
        where = BounceEvent.contact_id == user.contact_id
        return session.scalar(select(func.count()).select_from(BounceEvent).where(where)) or 0


def mailbox_row(factory: sessionmaker[Session], user: User) -> Mailbox:
    with factory() as session:
        row = session.get(Mailbox, user.mailbox_id)
        assert row is not None
        return row


def wait_bounces(factory: sessionmaker[Session], user: User, n: int, lab: Lab) -> None:
    wait_for(
        f"{n} bounce(s) on the timeline\n{lab.postfix.log_tail(8)}\n{lab.dovecot.log_tail(8)}",
        lambda: len(timeline(factory, user, "email_bounced")) >= n,
        20,
        0.05,
    )


def other_client_mail(user: User, to: str) -> tuple[str, bytes]:
    """A message the user writes with their own mail client (not through bounceback)."""
    message = EmailMessage()
    message_id = f"<{uuid.uuid4().hex}@thunderbird.{INBOX_DOMAIN}>"
    message["From"], message["To"], message["Subject"] = user.login, to, "Sent with Thunderbird"
    message["Message-ID"] = message_id
    message.set_content("Hello from my desktop client.")
    return message_id, message.as_bytes()


def out_of_office(user: User, in_reply_to: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = user.contact, user.login
    message["Subject"] = "Automatic reply: Hello"
    message["Auto-Submitted"] = "auto-replied"
    message["In-Reply-To"] = in_reply_to
    message["Message-ID"] = f"<ooo-{uuid.uuid4().hex}@remote.test>"
    message.set_content("I am out of the office until Monday.")
    return message.as_bytes()


# --- the tests ------------------------------------------------------------------------------------


def test_a_bounce_in_the_inbox_reaches_the_timeline_and_nothing_else_is_touched(
    lab: Lab,
    factory: sessionmaker[Session],
    poller: Callable[..., InboxPoller],
) -> None:
    user = connect_user(lab, factory)
    poller()
    wait_for("the first poll", lambda: mailbox_row(factory, user).last_poll_at, 10, 0.05)

    # One-to-one email to an unknown remote user: Postfix's notice lands in the INBOX (LMTP).
    started = monotonic()
    sent = send(factory, user)
    assert sent.status == "sent", sent.bounce_response
    wait_bounces(factory, user, 1, lab)
    assert monotonic() - started < DETECTED_WITHIN
    entry = timeline(factory, user, "email_bounced")[0]
    assert "Hard bounce of “Hello”" in entry.summary and "550 5.1.1" in entry.summary
    with factory() as session:
        row = session.get(DirectMessage, sent.id)
        assert row is not None and (row.status, row.bounce_category) == ("bounced", "unknown_user")
    # The notice is flagged, and still unread: we read it with BODY.PEEK.
    assert lab.dovecot.flags(user.login, "TEXT", sent.message_id) == [{"\\Flagged"}]

    # The same user writes to an unknown address with another client: left unread, unflagged.
    stranger = f"unknown-other-{uuid.uuid4().hex[:6]}@remote.test"
    other_id, data = other_client_mail(user, stranger)
    lab.postfix.send(user.login, [stranger], data)
    wait_for(
        "the other client's notice in the INBOX",
        lambda: lab.dovecot.flags(user.login, "TEXT", other_id),
        10,
        0.05,
    )
    # An out-of-office reply to our email: not a bounce, changes nothing.
    ooo = out_of_office(user, sent.message_id)
    lab.dovecot.deliver(user.login, ooo)
    # A marker behind them: once it is read, so are they (UIDs in order).
    marker = send(factory, user, "Marker")
    wait_bounces(factory, user, 2, lab)
    assert lab.dovecot.flags(user.login, "TEXT", other_id) == [set()]  # unread, unflagged
    assert lab.dovecot.flags(user.login, "HEADER", "Subject", "Automatic reply") == [set()]
    assert events(factory, user) == 2  # ours only
    assert [e.data["direct_message_id"] for e in timeline(factory, user, "email_bounced")] == [
        sent.id,
        marker.id,
    ]
    assert mailbox_row(factory, user).last_error == ""


def test_a_sequence_whose_first_step_bounces_sends_nothing_more(
    lab: Lab,
    factory: sessionmaker[Session],
    poller: Callable[..., InboxPoller],
) -> None:
    user = connect_user(lab, factory)
    steps = [sequences.StepInput("Intro", "Step one", 0)]
    steps += [sequences.StepInput("", f"Step {n}", 2) for n in (2, 3)]
    with transaction(factory) as session:
        sequence = sequences.create_sequence(session, user.account_id, "Outreach", steps)
        enrollment_id = sequences.enroll(
            session, user.account_id, sequence.id, user.contact_id, user.user_id
        ).id
    handlers = {**sequences.job_handlers(SETTINGS), **direct.job_handlers(SETTINGS)}
    poller()
    assert worker.run_until_idle(factory, handlers) >= 1  # step one, through Postfix
    wait_bounces(factory, user, 1, lab)
    with factory() as session:
        enrollment = session.get(Enrollment, enrollment_id)
        assert enrollment is not None and enrollment.state is EnrollmentState.BOUNCED
    sleep(2.2)  # step two's time has come: its job runs and sends nothing
    worker.run_until_idle(factory, handlers)
    with factory() as session:
        sent = session.scalars(
            select(DirectMessage).where(DirectMessage.contact_id == user.contact_id)
        ).all()
    assert [m.subject for m in sent] == ["Intro"]
    assert lab.remote.refused.get(user.contact) == 1  # one attempt reached the remote server
    assert len(timeline(factory, user, "unenrolled")) == 1


def test_the_poller_survives_the_server_restarting_and_its_own_restart(
    lab: Lab,
    factory: sessionmaker[Session],
    poller: Callable[..., InboxPoller],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetched: list[tuple[str, int]] = []
    real_fetch = imapconn.ImapConnection.fetch

    def spy(self: imapconn.ImapConnection, uid: int, max_bytes: int) -> Any:
        fetched.append((self.name, uid))
        return real_fetch(self, uid, max_bytes)

    monkeypatch.setattr(imapconn.ImapConnection, "fetch", spy)
    user = connect_user(lab, factory)
    first = poller()
    send(factory, user, "One")
    wait_bounces(factory, user, 1, lab)

    # The IMAP server goes away: the notice waits in Postfix's queue, the poller reconnects.
    lab.dovecot.stop()
    wait_for("the poller to notice", lambda: mailbox_row(factory, user).last_error, 10, 0.05)
    send(factory, user, "Two")
    lab.dovecot.start()
    lab.postfix.flush()
    wait_bounces(factory, user, 2, lab)
    wait_for("the error to clear", lambda: not mailbox_row(factory, user).last_error, 10, 0.05)

    # bounceback itself stops; a notice arrives meanwhile; a new poller starts.
    first.stop()
    assert mailbox_row(factory, user).poll_owner == ""  # its lease released
    # ... as if killed (SIGKILL): its lease is still held, by a process that is gone.
    dead = subprocess.Popen(["true"])
    dead.wait()
    with transaction(factory) as session:
        row = session.get(Mailbox, user.mailbox_id)
        assert row is not None
        row.poll_owner = f"{socket.gethostname()}:{dead.pid}:0badc0de:00000000"
        row.poll_lease_until = utcnow() + timedelta(hours=1)
    send(factory, user, "Three")
    wait_for("the third notice in the INBOX", lambda: lab.dovecot.count(user.login) == 3, 10, 0.05)
    poller()
    wait_bounces(factory, user, 3, lab)
    sleep(0.5)  # a few more cycles: nothing is read twice
    assert events(factory, user) == 3
    assert len(fetched) == len(set(fetched)) == 3, fetched
    assert mailbox_row(factory, user).last_uid == 3


def test_a_renumbered_inbox_is_read_again_from_the_last_poll(
    lab: Lab,
    factory: sessionmaker[Session],
    poller: Callable[..., InboxPoller],
) -> None:
    user = connect_user(lab, factory)
    first = poller()
    send(factory, user, "Before")
    wait_bounces(factory, user, 1, lab)
    first.stop()
    old = mailbox_row(factory, user).uidvalidity
    assert old is not None
    lab.dovecot.set_uidvalidity(user.login, old + 1000)
    send(factory, user, "After")
    wait_for("the notice in the INBOX", lambda: lab.dovecot.count(user.login) == 2, 10, 0.05)
    poller()
    wait_bounces(factory, user, 2, lab)
    # The checkpoint is saved after the message it covers is recorded: wait for it too.
    wait_for(
        "the new checkpoint", lambda: mailbox_row(factory, user).uidvalidity == old + 1000, 10, 0.05
    )
    row = mailbox_row(factory, user)
    assert "renumbered the INBOX" in row.last_error
    assert events(factory, user) == 2  # the notice read again is recorded once


def test_without_idle_a_bounce_folder_and_interval_polling(
    lab: Lab,
    factory: sessionmaker[Session],
    poller: Callable[..., InboxPoller],
) -> None:
    user = connect_user(lab, factory, bounce_folder="Bounces/bounceback")
    poller(replace(FAST, use_idle=False))
    sent = send(factory, user)
    wait_bounces(factory, user, 1, lab)
    moved = "Bounces/bounceback"
    wait_for(
        "the notice moved",
        lambda: lab.dovecot.flags(user.login, "TEXT", sent.message_id, folder=moved),
        10,
        0.05,
    )
    assert lab.dovecot.flags(user.login, "TEXT", sent.message_id, folder=moved) == [{"\\Flagged"}]
    assert lab.dovecot.flags(user.login, "TEXT", sent.message_id) == []  # not in the INBOX
    with factory() as session:
        assert session.scalar(select(Contact.hard_bounce_reason).where(
            Contact.id == user.contact_id)) == ""  # fmt: skip


@pytest.mark.parametrize("security", [MailboxSecurity.TLS, MailboxSecurity.STARTTLS])
def test_tls_connections_wait_in_idle_and_check_the_certificate(
    lab: Lab, security: MailboxSecurity
) -> None:
    login = f"tls-{uuid.uuid4().hex[:8]}@{INBOX_DOMAIN}"
    dovecot = lab.dovecot
    port = dovecot.imaps_port if security is MailboxSecurity.TLS else dovecot.imap_port
    with pytest.raises(imapconn.ImapError, match="certificate verify failed"):
        imapconn.ImapConnection("127.0.0.1", port, security, login, PASSWORD, timeout=10)
    conn = imapconn.ImapConnection(
        "127.0.0.1", port, security, login, PASSWORD, timeout=10, cafile=dovecot.cafile
    )
    try:
        assert conn.select_inbox().uidvalidity > 0 and conn.can_idle
        message = f"From: carol@remote.test\nTo: {login}\nSubject: Over TLS\n\nHello\n"
        timer = threading.Timer(0.3, dovecot.deliver, (login, message.encode()))
        timer.start()
        started = monotonic()
        assert conn.idle(10, lambda: False)  # woken by the new message, not by the time
        assert monotonic() - started < 5
        timer.join()
        [uid] = conn.uids_after(0)
        fetched = conn.fetch(uid, 100_000)
        assert fetched is not None and b"Subject: Over TLS" in fetched.raw
        assert fetched.internal_date is not None
    finally:
        conn.close()
    assert dovecot.flags(login, "SUBJECT", "Over TLS") == [set()]  # read, and still unread
