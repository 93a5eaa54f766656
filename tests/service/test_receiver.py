"""The SMTP receiver: only the bounce domains, size limit, stored (committed) before 250."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Job, RawBounce
from bounceback.service.db.session import make_engine, make_sessionmaker
from bounceback.service.domain.intake import Arriving
from bounceback.service.receivers.smtp import BounceReceiver, GroupWriter, Incoming
from bounceback.service.settings import Settings

from outbound_support import BOUNCE_DOMAIN, settings

LIMIT = 4000
VERP = f"b+1.0123456789abcdef@{BOUNCE_DOMAIN}"
NDR = (
    b"From: MAILER-DAEMON@mx.example.org\r\n"
    b"To: " + VERP.encode() + b"\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <ndr-1@mx.example.org>\r\n"
    b"\r\n"
    b"The message to ann@example.org could not be delivered.\r\n"
    b".leading dot survives dot-stuffing\r\n"
)


def _receiver(factory: sessionmaker[Session], config: Settings) -> Iterator[BounceReceiver]:
    receiver = BounceReceiver(config, factory, host="127.0.0.1", port=0)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(factory: sessionmaker[Session]) -> Iterator[BounceReceiver]:
    yield from _receiver(factory, settings(max_message_bytes=LIMIT))


def _client(receiver: BounceReceiver) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", receiver.port, timeout=10)
    client.ehlo("mx.example.org")
    return client


def test_bounce_is_stored_before_250(
    receiver: BounceReceiver, factory: sessionmaker[Session]
) -> None:
    with _client(receiver) as client:
        refused = client.sendmail("", [VERP], NDR)  # MAIL FROM:<>, as every bounce
        assert refused == {}
    # Committed when we answered 250: a fresh session sees it at once.
    with factory() as session:
        rows = session.scalars(select(RawBounce)).all()
        assert len(rows) == 1
        row = rows[0]
        assert row.source == "smtp"
        assert row.envelope_from == ""
        assert row.envelope_to == VERP
        assert row.raw == NDR  # byte for byte, dot-stuffing undone
        job = session.scalars(select(Job).where(Job.kind == "process_bounce")).one()
        assert job.payload == {"raw_id": row.id}


def test_the_same_message_twice_is_stored_once(
    receiver: BounceReceiver, factory: sessionmaker[Session]
) -> None:
    with _client(receiver) as client:
        client.sendmail("", [VERP], NDR)
    with _client(receiver) as client:  # the sender retries, e.g. it missed our 250
        client.mail("")
        client.rcpt(VERP)
        code, reply = client.data(NDR)
        assert code == 250, reply
    with factory() as session:
        assert len(session.scalars(select(RawBounce)).all()) == 1


def test_other_domains_are_refused(receiver: BounceReceiver) -> None:
    with _client(receiver) as client:
        client.mail("")
        code, reply = client.rcpt("someone@other.example")
        assert code == 550
        assert reply.decode() == "5.1.1 <someone@other.example>: not a bounce address here"
        code, _ = client.rcpt(f"anything@{BOUNCE_DOMAIN.upper()}")  # domains are case-blind
        assert code == 250


def test_oversized_messages_are_refused(
    receiver: BounceReceiver, factory: sessionmaker[Session]
) -> None:
    big = NDR + b"x" * 76 + b"\r\n" * 1 + (b"y" * 76 + b"\r\n") * (LIMIT // 78 + 1)
    with _client(receiver) as client:
        # Declared in advance with SIZE (smtplib does when the server offers it): refused at MAIL.
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            client.sendmail("", [VERP], big)
        assert declared.value.smtp_code == 552
    with _client(receiver) as client:  # not declared: refused after DATA
        client.mail("")
        client.rcpt(VERP)
        code, _ = client.data(big)
        assert code == 552
    with factory() as session:
        assert session.scalars(select(RawBounce)).all() == []


def test_storage_failure_answers_451(tmp_path: Path) -> None:
    """A database without the schema: storing fails, and the sender is told to retry."""
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        for receiver in _receiver(make_sessionmaker(engine), settings()):
            with _client(receiver) as client:
                client.mail("")
                client.rcpt(VERP)
                code, reply = client.data(NDR)
            assert code == 451
            assert reply.decode().startswith("4.3.0")
    finally:
        engine.dispose()


def _arriving(raw: bytes, envelope_to: str = VERP) -> Arriving:
    return Arriving(raw, "smtp", "", envelope_to)


def _ndr(number: int) -> bytes:
    return NDR.replace(b"<ndr-1@", b"<ndr-%d@" % number)


def test_messages_waiting_together_share_one_transaction(
    factory: sessionmaker[Session],
) -> None:
    """Group commit: what queued up while the writer was busy goes into one transaction, each
    message keeping its own row and job; the same bytes twice in a batch are still one row."""
    writer = GroupWriter(factory)
    items = [Incoming(_arriving(_ndr(n))) for n in [*range(20), 3]]
    futures = [writer.submit(item) for item in items]  # all waiting before the writer starts
    writer.start()
    results = [future.result(timeout=30) for future in futures]
    writer.close()
    assert (writer.batches, writer.messages) == (1, 21)
    assert [new for _, new in results] == [True] * 20 + [False]
    assert results[20][0] == results[3][0]
    with factory() as session:
        rows = session.scalars(select(RawBounce)).all()
        jobs = session.scalars(select(Job).where(Job.kind == "process_bounce")).all()
    assert sorted(row.raw for row in rows) == sorted(_ndr(n) for n in range(20))
    assert sorted(job.payload["raw_id"] for job in jobs) == sorted(row.id for row in rows)


def test_a_message_that_cannot_be_stored_fails_alone(factory: sessionmaker[Session]) -> None:
    """A failure inside a batch rolls the batch back, then every message is tried on its own:
    only the bad one is refused (451 to its sender), the others are stored. The bad one here
    has an envelope address with an undecodable byte (aiosmtpd keeps it as a lone surrogate,
    which no database driver can encode)."""
    writer = GroupWriter(factory)
    good = [writer.submit(Incoming(_arriving(_ndr(n)))) for n in range(5)]
    bad = writer.submit(Incoming(_arriving(_ndr(99), "b+1.\udcff@" + BOUNCE_DOMAIN)))
    writer.start()
    assert all(future.result(timeout=30)[1] for future in good)
    with pytest.raises(UnicodeEncodeError):
        bad.result(timeout=30)
    writer.close()
    assert writer.messages == 5
    with factory() as session:
        assert len(session.scalars(select(RawBounce)).all()) == 5


def test_a_burst_over_many_connections_is_stored_once_each(
    receiver: BounceReceiver, factory: sessionmaker[Session]
) -> None:
    def send(number: int) -> int:
        with _client(receiver) as client:
            client.mail("")
            client.rcpt(VERP)
            code, _ = client.data(_ndr(number))
            return code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(send, range(100)))
    assert codes == [250] * 100
    with factory() as session:
        raws = session.scalars(select(RawBounce.raw)).all()
    assert sorted(raws) == sorted(_ndr(n) for n in range(100))
    assert receiver.writer.messages == 100
