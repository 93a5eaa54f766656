"""Sending through a real SMTP server on 127.0.0.1 standing in for the relay: per-recipient
VERP envelopes, DSN parameters when offered, refusals at RCPT and DATA as bounces, 4xx retried
with backoff and given up as a soft bounce after the retry period."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Delivery,
    DeliveryState,
    Email,
    Job,
    RawBounce,
    SendStatus,
    TimelineEntry,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import sending, verp
from bounceback.service.outbound.message import Outgoing, build
from bounceback.service.outbound.relay import (
    Outcome,
    Relay,
    RelayError,
    parse_relay_url,
    reply_text,
    xtext,
)
from bounceback.service.settings import Settings
from bounceback.service.worker import Deliverer, build_handlers, retry_delay, run_until_idle

from outbound_support import (
    BOUNCE_DOMAIN,
    SECRET,
    FakeRelay,
    RelayHandler,
    make_world,
    self_signed_certificate,
    settings,
    start_send,
)

RULES_RCPT = {
    "rcpt550": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown in local recipient "
    "table",
    "rcpt451": "451 4.7.1 <{addr}>: Recipient address rejected: Greylisted, try again later",
}
RULES_DATA = {"data554": "554 5.7.1 Message rejected: spam content detected"}
ADDRESSES = [
    "ok1@example.org",
    "ok2@example.org",
    "rcpt550@example.org",
    "data554@example.org",
    "rcpt451@example.org",
]


@pytest.fixture
def handler() -> RelayHandler:
    return RelayHandler(dsn=True, rcpt=dict(RULES_RCPT), data=dict(RULES_DATA))


@pytest.fixture
def relay(handler: RelayHandler) -> Iterator[FakeRelay]:
    server = FakeRelay(handler)
    server.start()
    yield server
    server.stop()


def _aware(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _deliveries(factory: sessionmaker[Session], send_id: int) -> dict[str, Delivery]:
    with factory() as session:
        rows = session.scalars(select(Delivery).where(Delivery.send_id == send_id)).all()
        return {d.email: d for d in rows}


def _run(factory: sessionmaker[Session], config: Settings) -> int:
    deliverer = Deliverer(config)
    try:
        return run_until_idle(factory, build_handlers(config, deliverer))
    finally:
        deliverer.close()


# The relay URL -----------------------------------------------------------------------------


def test_relay_urls() -> None:
    plain = parse_relay_url("smtp://relay.example")
    assert (plain.host, plain.port, plain.security, plain.username) == (
        "relay.example",
        25,
        "plain",
        "",
    )
    starttls = parse_relay_url("smtp+starttls://us%40er:p%3Ass@relay.example?timeout=5&helo=me")
    assert (starttls.port, starttls.security) == (587, "starttls")
    assert (starttls.username, starttls.password) == ("us@er", "p:ss")
    assert (starttls.timeout, starttls.helo) == (5.0, "me")
    tls = parse_relay_url("smtps://relay.example:2465?verify=no")
    assert (tls.port, tls.security, tls.verify) == (2465, "tls", False)
    assert tls.name == "relay.example:2465"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://relay.example", "unknown scheme 'http'"),
        ("smtp://", "no host"),
        ("smtp://relay.example:99999", "out of range"),
        ("smtp://relay.example/path", "no path"),
        ("smtp://relay.example?tls=1", "unknown option"),
        ("smtp://relay.example?timeout=soon", "not a number"),
        ("relay.example:25", "unknown scheme"),
    ],
)
def test_bad_relay_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(RelayError, match=message):
        parse_relay_url(url)


def test_relay_url_errors_hide_the_password() -> None:
    with pytest.raises(RelayError) as error:
        parse_relay_url("ftp://user:secret@relay.example")
    assert "secret" not in str(error.value)


def test_reply_text_and_xtext() -> None:
    assert reply_text(550, b"5.1.1 first\n5.1.1 second") == "550-5.1.1 first\n550 5.1.1 second"
    assert reply_text(250, b"Ok") == "250 Ok"
    assert xtext("b+1.ab=c d") == "b+2B1.ab+3Dc+20d"


# Sending through the worker ----------------------------------------------------------------


def test_send_through_relay_with_dsn(
    relay: FakeRelay, handler: RelayHandler, factory: sessionmaker[Session]
) -> None:
    config = settings(relay_url=relay.url())
    world = make_world(factory, ADDRESSES)
    send_id = start_send(factory, world, ADDRESSES)
    before = utcnow()
    assert _run(factory, config) == 5 + 2  # and processing the two refusals' reports
    rows = _deliveries(factory, send_id)

    # Accepted: sent, with a timeline entry; one transaction per recipient, own VERP envelope.
    for address in ("ok1@example.org", "ok2@example.org"):
        assert rows[address].state is DeliveryState.SENT
        assert rows[address].sent_at is not None and rows[address].attempts == 1
    assert len(handler.received) == 2
    for seen in handler.received:
        [rcpt] = seen.rcpt_to
        delivery = rows[rcpt]
        assert seen.mail_from == verp.return_path(SECRET, delivery.id, BOUNCE_DOMAIN)
        # RFC 3461: notices of success too, headers only, our token as the envelope id.
        assert "RET=HDRS" in seen.mail_options
        assert f"ENVID={delivery.verp_token}".upper() in seen.mail_options
        assert seen.rcpt_options == [
            ["NOTIFY=SUCCESS,FAILURE,DELAY", f"ORCPT=RFC822;{rcpt}".upper()]
        ]
        assert f"Message-ID: {delivery.message_id}".encode() in seen.data
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in seen.data
    with factory() as session:
        sent = session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "sent")).all()
        assert {e.contact_id for e in sent} == {
            rows["ok1@example.org"].contact_id,
            rows["ok2@example.org"].contact_id,
        }

    # Refused with 5xx at RCPT or DATA: a bounce of that recipient, with the server's response.
    unknown = rows["rcpt550@example.org"]
    assert unknown.state is DeliveryState.BOUNCED_HARD
    assert "5.1.1" in unknown.response and "User unknown" in unknown.response
    spam = rows["data554@example.org"]
    assert spam.state is DeliveryState.BOUNCED_HARD
    assert "spam content detected" in spam.response
    with factory() as session:
        relay_raws = session.scalars(select(RawBounce).where(RawBounce.source == "relay")).all()
        assert len(relay_raws) == 2
        assert all(r.account_id == world.account_id for r in relay_raws)

    # 451 at RCPT: pending, retried 5 minutes later by a job of its own.
    grey = rows["rcpt451@example.org"]
    assert grey.state is DeliveryState.PENDING
    assert grey.attempts == 1
    assert "Greylisted" in grey.response and grey.response.startswith("451 ")
    assert _aware(grey.first_deferred_at) >= before
    due = _aware(grey.next_attempt_at)
    assert abs(due - (_aware(grey.first_deferred_at) + retry_delay(1))) < timedelta(seconds=5)
    with factory() as session:
        retry = session.scalars(select(Job).where(Job.key == f"deliver:{grey.id}:retry:1")).one()
        assert abs(_aware(retry.run_at) - due) < timedelta(seconds=1)
        assert retry.done_at is None
        assert sending.get_send(session, world.account_id, send_id).status is SendStatus.SENDING

    # When the retry is due and the relay takes it, it is sent and the send is done.
    _make_due(factory, grey.id)
    handler.rcpt.pop("rcpt451")
    assert _run(factory, config) == 1
    grey = _deliveries(factory, send_id)["rcpt451@example.org"]
    assert grey.state is DeliveryState.SENT and grey.attempts == 2
    with factory() as session:
        send = sending.get_send(session, world.account_id, send_id)
        assert send.status is SendStatus.DONE and send.finished_at is not None


def _make_due(
    factory: sessionmaker[Session], delivery_id: int, deferred_for: timedelta | None = None
) -> None:
    """Move a deferred delivery's clock: its retry is due now (and it was first deferred
    ``deferred_for`` ago)."""
    past = utcnow() - timedelta(seconds=1)
    with transaction(factory) as session:
        session.execute(update(Job).where(Job.done_at.is_(None)).values(run_at=past))
        values: dict[str, object] = {"next_attempt_at": past}
        if deferred_for is not None:
            values["first_deferred_at"] = utcnow() - deferred_for
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def test_retries_back_off_then_give_up_as_soft_bounce(
    relay: FakeRelay, factory: sessionmaker[Session]
) -> None:
    config = settings(relay_url=relay.url())
    world = make_world(factory, ["rcpt451@example.org"])
    send_id = start_send(factory, world, ["rcpt451@example.org"])
    _run(factory, config)
    delivery = _deliveries(factory, send_id)["rcpt451@example.org"]
    first_due = _aware(delivery.next_attempt_at)

    _make_due(factory, delivery.id)
    assert _run(factory, config) == 1
    delivery = _deliveries(factory, send_id)["rcpt451@example.org"]
    assert delivery.state is DeliveryState.PENDING and delivery.attempts == 2
    assert _aware(delivery.next_attempt_at) - utcnow() > retry_delay(1)  # the delay grows
    assert retry_delay(2) > retry_delay(1) and retry_delay(50) == timedelta(hours=2)
    assert first_due > utcnow()

    # 73 hours after the first deferral: given up, a soft bounce with the last response.
    _make_due(factory, delivery.id, deferred_for=timedelta(hours=73))
    assert _run(factory, config) == 2  # the retry, and processing the refusal's report
    delivery = _deliveries(factory, send_id)["rcpt451@example.org"]
    assert delivery.state is DeliveryState.BOUNCED_SOFT
    assert delivery.next_attempt_at is None
    assert "Greylisted" in delivery.response
    with factory() as session:
        assert sending.get_send(session, world.account_id, send_id).status is SendStatus.DONE
        assert session.scalars(select(Job).where(Job.done_at.is_(None))).all() == []


def test_without_dsn_no_dsn_parameters(factory: sessionmaker[Session]) -> None:
    handler = RelayHandler(dsn=False)
    with_relay = FakeRelay(handler)
    with_relay.start()
    try:
        world = make_world(factory, ["ok@example.org"])
        send_id = start_send(factory, world, ["ok@example.org"])
        _run(factory, settings(relay_url=with_relay.url()))
    finally:
        with_relay.stop()
    assert _deliveries(factory, send_id)["ok@example.org"].state is DeliveryState.SENT
    [seen] = handler.received
    assert not any(o.startswith(("RET=", "ENVID=")) for o in seen.mail_options)
    assert seen.rcpt_options == [[]]


def test_relay_down_is_a_temporary_failure(factory: sessionmaker[Session]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    world = make_world(factory, ["ok@example.org"])
    send_id = start_send(factory, world, ["ok@example.org"])
    _run(factory, settings(relay_url=f"smtp://127.0.0.1:{port}?timeout=5"))
    delivery = _deliveries(factory, send_id)["ok@example.org"]
    assert delivery.state is DeliveryState.PENDING
    assert delivery.response.startswith(f"CONN failed at the relay 127.0.0.1:{port}: ")


def test_a_claimed_delivery_is_not_sent_twice(
    relay: FakeRelay, handler: RelayHandler, factory: sessionmaker[Session]
) -> None:
    """The same job run twice (a worker died after sending) sends the message once."""
    world = make_world(factory, ["ok@example.org"])
    send_id = start_send(factory, world, ["ok@example.org"])
    delivery_id = _deliveries(factory, send_id)["ok@example.org"].id
    deliver = Deliverer(settings(relay_url=relay.url()))
    try:
        deliver(factory, {"delivery_id": delivery_id})
        deliver(factory, {"delivery_id": delivery_id})
    finally:
        deliver.close()
    assert len(handler.received) == 1


def test_a_paused_send_waits(
    relay: FakeRelay, handler: RelayHandler, factory: sessionmaker[Session]
) -> None:
    world = make_world(factory, ["ok@example.org"])
    send_id = start_send(factory, world, ["ok@example.org"])
    with transaction(factory) as session:
        sending.get_send(session, world.account_id, send_id).status = SendStatus.PAUSED
    config = settings(relay_url=relay.url())
    _run(factory, config)
    assert handler.received == []
    assert _deliveries(factory, send_id)["ok@example.org"].state is DeliveryState.QUEUED
    with transaction(factory) as session:  # resumed: its open deliveries get new jobs
        assert sending.start_send(session, world.account_id, send_id).status is (SendStatus.SENDING)
    _run(factory, config)
    assert _deliveries(factory, send_id)["ok@example.org"].state is DeliveryState.SENT
    assert len(handler.received) == 1


# TLS, login and connection reuse, with the Relay client directly ---------------------------


def _outgoing(address: str = "ok@example.org", delivery_id: int = 5) -> Outgoing:
    delivery = Delivery(
        id=delivery_id, account_id=1, send_id=1, contact_id=1, email=address, message_id=""
    )
    email = Email(account_id=1, from_address="news@shop.example", subject="Hi", text="Hello")
    return build(settings(), delivery, email)


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_and_login(scheme: str, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    handler = RelayHandler()
    server = FakeRelay(handler, scheme=scheme, login=("sender", "s3cret"), certificate=(cert, key))
    server.start()
    try:
        with Relay(parse_relay_url(server.url(f"cafile={cert}&timeout=10"))) as client:
            result = client.send(_outgoing())
        assert result.outcome is Outcome.ACCEPTED, result
        assert result.dsn_requested
        assert len(handler.received) == 1
        # An unverifiable certificate or a wrong password: temporary, never a bounce.
        with Relay(parse_relay_url(server.url("timeout=10"))) as client:
            untrusted = client.send(_outgoing())
        assert untrusted.outcome is Outcome.TEMPORARY
        assert "certificate" in untrusted.response.lower()
        wrong = server.url(f"cafile={cert}&timeout=10").replace("s3cret", "wrong")
        with Relay(parse_relay_url(wrong)) as client:
            refused = client.send(_outgoing())
        assert (refused.outcome, refused.command, refused.reply_code) == (
            Outcome.TEMPORARY,
            "AUTH",
            "535",
        )
    finally:
        server.stop()


def test_connection_is_reused_and_reopened(tmp_path: Path) -> None:
    handler = RelayHandler(rcpt={"no": "550 5.1.1 <{addr}>: User unknown"})
    server = FakeRelay(handler)
    server.start()
    port = server.port
    client = Relay(parse_relay_url(server.url()))
    try:
        assert client.send(_outgoing("a@example.org", 1)).accepted
        refused = client.send(_outgoing("no@example.org", 2))
        assert (refused.outcome, refused.command, refused.reply_code) == (
            Outcome.PERMANENT,
            "RCPT",
            "550",
        )
        assert refused.text == "5.1.1 <no@example.org>: User unknown"
        assert client.send(_outgoing("b@example.org", 3)).accepted  # after RSET
        assert handler.sessions == 1  # one connection for all three
        server.stop()  # the relay drops the idle connection
        server = FakeRelay(handler, port=port)
        server.start()
        assert client.send(_outgoing("c@example.org", 4)).accepted
        assert handler.sessions == 2
        assert [t.rcpt_to for t in handler.received] == [
            ["a@example.org"],
            ["b@example.org"],
            ["c@example.org"],
        ]
    finally:
        client.close()
        server.stop()


def test_non_ascii_recipient_needs_smtputf8() -> None:
    handler = RelayHandler()
    server = FakeRelay(handler)
    server.start()
    try:
        with Relay(parse_relay_url(server.url())) as client:
            out = replace(_outgoing(), recipient="jürgen@example.org")
            assert client.send(out).accepted  # aiosmtpd offers SMTPUTF8
        assert handler.received[0].rcpt_to == ["jürgen@example.org"]
    finally:
        server.stop()
