"""Bounce intake end to end over the domain layer: store, parse, match, record, apply policy.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback import parse
from bounceback.service import jobs
from bounceback.service.db.models import (
    Alert,
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Job,
    NotSentReason,
    RawBounce,
    RawStatus,
    Suppression,
    TimelineEntry,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import intake, suppression
from bounceback.service.settings import load

from builders import SECRET, account, delivery, dsn, return_path

SETTINGS = load({}, secret_key=SECRET)


def _ingest(factory: sessionmaker[Session], raw: bytes, **kwargs: object) -> RawStatus:
    with transaction(factory) as session:
        row, _ = intake.store_raw(session, raw, source=str(kwargs.pop("source", "smtp")), **kwargs)  # type: ignore[arg-type]
        raw_id = row.id
    return intake.process(factory, raw_id, SETTINGS)


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_hard_bounce_through_the_verp_address(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "gone@example.org")
        ids = acme.id, target.id
    raw = dsn("gone@example.org", to=return_path(ids[1]))
    assert _ingest(factory, raw) is RawStatus.PROCESSED
    assert _ingest(factory, raw) is RawStatus.PROCESSED  # the same NDR again: nothing new
    with factory() as session:
        assert _count(session, BounceEvent) == 1
        row = session.get(Delivery, ids[1])
        assert row is not None and row.state is DeliveryState.BOUNCED_HARD
        assert row.category == "unknown_user" and "User unknown" in row.response
        contact = session.get(Contact, row.contact_id)
        assert contact is not None
        assert contact.hard_bounce_reason.startswith("Unknown user: 550 5.1.1")
        assert suppression.not_sent_reason(session, ids[0], "gone@example.org") is (
            NotSentReason.ACCOUNT_BOUNCE
        )
        kinds = session.scalars(select(TimelineEntry.kind)).all()
        assert list(kinds) == ["bounced"]
        event = session.scalars(select(BounceEvent)).one()
        assert event.matched_by == "verp" and event.rule_id.startswith("status.")


def test_store_raw_is_idempotent_and_enqueues_once(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        first, new = intake.store_raw(session, b"Subject: x\n\nbody", source="smtp")
        again, new_again = intake.store_raw(session, b"Subject: x\n\nbody", source="smtp")
        assert new and not new_again and first.id == again.id
    with factory() as session:
        assert _count(session, RawBounce) == 1
        assert session.scalars(select(Job.kind)).all() == [intake.PROCESS]


@pytest.mark.parametrize(
    "to",
    [
        "b+zz.0000000000000000@bounces.example.net",  # a token with a wrong signature
        "bounces@bounces.example.net",  # no token at all
    ],
)
def test_forged_or_unsigned_bounces_change_nothing(factory: sessionmaker[Session], to: str) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "alice@example.org")
        target_id = target.id
    raw = dsn("alice@example.org", to=to.replace("zz", format(target_id, "x")))
    status = _ingest(factory, raw)
    assert status in (RawStatus.FORGED, RawStatus.UNMATCHED)
    with factory() as session:
        assert _count(session, BounceEvent) == 0 and _count(session, Suppression) == 0
        row = session.get(Delivery, target_id)
        assert row is not None and row.state is DeliveryState.SENT
        stored = session.scalars(select(RawBounce)).one()
        assert stored.raw == raw  # kept for inspection


def test_a_replayed_token_with_another_address_matches_nothing(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        acme = account(session)
        real = delivery(session, acme.id, "alice@example.org")
        delivery(session, acme.id, "bob@example.org")
        real_id = real.id
    raw = dsn("bob@example.org", to=return_path(real_id))
    assert _ingest(factory, raw) is RawStatus.UNMATCHED
    with factory() as session:
        assert _count(session, Suppression) == 0


def test_our_message_id_matches_without_a_token(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "carol@example.org")
        message_id, target_id = target.message_id, target.id
    raw = dsn("carol@example.org", to="postmaster@bounces.example.net", message_id=message_id)
    assert _ingest(factory, raw) is RawStatus.PROCESSED
    with factory() as session:
        assert session.scalars(select(BounceEvent.matched_by)).one() == "message-id"
        row = session.get(Delivery, target_id)
        assert row is not None and row.state is DeliveryState.BOUNCED_HARD


def test_trusted_http_intake_matches_the_recipient_in_its_own_account_only(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        acme, other = account(session, "Acme"), account(session, "Other")
        mine = delivery(session, acme.id, "dave@example.org")
        theirs = delivery(session, other.id, "dave@example.org")
        ids = acme.id, mine.id, theirs.id
    raw = dsn("dave@example.org", to="whatever@acme.example")
    assert _ingest(factory, raw, source="http", account_id=ids[0]) is RawStatus.PROCESSED
    with factory() as session:
        mine_row, theirs_row = session.get(Delivery, ids[1]), session.get(Delivery, ids[2])
        assert mine_row is not None and mine_row.state is DeliveryState.BOUNCED_HARD
        assert theirs_row is not None and theirs_row.state is DeliveryState.SENT


def test_soft_bounces_turn_hard_and_a_delivery_resets_the_count(
    factory: sessionmaker[Session],
) -> None:
    address = "full@example.org"
    with transaction(factory) as session:
        acme = account(session)
        acme.policy = {"soft_to_hard_count": 3}
        rows = [delivery(session, acme.id, address) for _ in range(5)]
        ids = [r.id for r in rows]
    full = "552 5.2.2 <{r}>: Mailbox full"

    def soft(delivery_id: int) -> None:
        _ingest(factory, dsn(address, to=return_path(delivery_id), status="5.2.2", diagnostic=full))

    soft(ids[0])
    soft(ids[1])
    # A success notice for another message resets the count.
    _ingest(
        factory,
        dsn(
            address,
            to=return_path(ids[2]),
            status="2.0.0",
            action="delivered",
            diagnostic="250 2.0.0 Ok",
        ),
    )
    soft(ids[3])
    with factory() as session:
        states = [session.get(Delivery, i).state for i in ids]  # type: ignore[union-attr]
        assert states[:4] == [
            DeliveryState.BOUNCED_SOFT,
            DeliveryState.BOUNCED_SOFT,
            DeliveryState.DELIVERED,
            DeliveryState.BOUNCED_SOFT,
        ]
        assert suppression.not_sent_reason(session, rows[0].account_id, address) is None
    soft(ids[4])
    soft(ids[2])  # the delivered message bounced after all: still counts as one more
    with factory() as session:
        assert suppression.not_sent_reason(session, rows[0].account_id, address) is (
            NotSentReason.ACCOUNT_BOUNCE
        )


def test_complaint_suppresses(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "eve@isp.example")
        ids = acme.id, target.id
    arf = (
        f"From: fbl@isp.example\nTo: {return_path(ids[1])}\nSubject: complaint\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nabuse report\n--F\n"
        "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: x/1\n"
        "Version: 1\nOriginal-Rcpt-To: eve@isp.example\n\n--F\nContent-Type: message/rfc822\n\n"
        "From: news@acme.example\nTo: eve@isp.example\nSubject: News\n\nhi\n--F--\n"
    ).encode()
    assert parse(arf).kind.value == "complaint"
    assert _ingest(factory, arf) is RawStatus.PROCESSED
    with factory() as session:
        assert suppression.not_sent_reason(session, ids[0], "eve@isp.example") is (
            NotSentReason.COMPLAINED
        )


def test_global_bounce_after_three_accounts(factory: sessionmaker[Session]) -> None:
    address = "nobody@example.org"
    with transaction(factory) as session:
        accounts = [account(session, f"A{i}") for i in range(4)]
        rows = [delivery(session, a.id, address) for a in accounts[:3]]
        fourth = accounts[3].id
        session.add(Contact(account_id=fourth, email=address, name="", properties={}))
        ids = [r.id for r in rows]
    for delivery_id in ids[:2]:
        _ingest(factory, dsn(address, to=return_path(delivery_id)))
    with factory() as session:
        assert suppression.not_sent_reason(session, fourth, address) is None
    _ingest(factory, dsn(address, to=return_path(ids[2])))
    with factory() as session:
        assert suppression.not_sent_reason(session, fourth, address) is (
            NotSentReason.GLOBAL_BOUNCE
        )
        contact = session.scalars(select(Contact).where(Contact.account_id == fourth)).one()
        assert contact.hard_bounce_reason == ""  # it never bounced in this account
        listed, total = suppression.list_suppressions(session, fourth)
        assert total == 1 and listed[0].account_id is None


def test_dmarc_refusal_alerts_the_sender_and_suppresses_nobody(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "frank@gmail.example")
        ids = acme.id, target.id
    raw = dsn(
        "frank@gmail.example",
        to=return_path(ids[1]),
        status="5.7.26",
        diagnostic="550-5.7.26 Unauthenticated email from acme.example is not accepted "
        "due to domain's DMARC policy",
    )
    assert _ingest(factory, raw) is RawStatus.PROCESSED
    with factory() as session:
        assert _count(session, Suppression) == 0
        alert = session.scalars(select(Alert)).one()
        assert alert.kind == "dmarc_unauthorized" and "acme.example" in alert.title
        row = session.get(Delivery, ids[1])
        assert row is not None and row.state is DeliveryState.BOUNCED_SOFT


def test_delay_then_delivered(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "slow@example.org")
        target_id = target.id
    _ingest(
        factory,
        dsn(
            "slow@example.org",
            to=return_path(target_id),
            status="4.4.1",
            action="delayed",
            diagnostic="421 4.4.1 connection timed out",
        ),
    )
    with factory() as session:
        assert session.get(Delivery, target_id).state is DeliveryState.PENDING  # type: ignore[union-attr]
    _ingest(
        factory,
        dsn(
            "slow@example.org",
            to=return_path(target_id),
            status="2.0.0",
            action="delivered",
            diagnostic="250 2.0.0 Ok",
        ),
    )
    with factory() as session:
        assert session.get(Delivery, target_id).state is DeliveryState.DELIVERED  # type: ignore[union-attr]


def test_relay_rejection_is_a_bounce_like_any_other(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "unknown.user@example.org")
        raw = intake.record_rejection(
            session,
            target,
            reply_code="550",
            response="5.1.1 <unknown.user@example.org>: User unknown",
            command="RCPT",
            relay="relay.example",
        )
        raw_id, target_id = raw.id, target.id
    with factory() as session:
        stored = session.get(RawBounce, raw_id)
        assert stored is not None and stored.status is RawStatus.PROCESSED
        report = parse(stored.raw)
        assert report.kind.value == "bounce"
        assert report.recipients[0].smtp_command == "RCPT"
        row = session.get(Delivery, target_id)
        assert row is not None and row.state is DeliveryState.BOUNCED_HARD
        assert row.category == "unknown_user"
    # The queued processing job finds the message done and changes nothing.
    jobs.run_one(
        factory, {intake.PROCESS: lambda f, p: intake.process(f, int(p["raw_id"]), SETTINGS)}, "t"
    )
    with factory() as session:
        assert _count(session, BounceEvent) == 1


def test_reparse_brings_old_classifications_up_to_date(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "gone@example.org")
        target_id = target.id
    _ingest(factory, dsn("gone@example.org", to=return_path(target_id)))
    with transaction(factory) as session:  # what an older parser might have said
        event = session.scalars(select(BounceEvent)).one()
        event.reason, event.category, event.rule_id = "on_hold", "other", "fallback.on-hold"
    summary = intake.reparse_all(factory, SETTINGS)
    assert (summary.messages, summary.changed) == (1, 1)
    with factory() as session:
        event = session.scalars(select(BounceEvent)).one()
        assert (event.reason, event.category) == ("user_unknown", "unknown_user")
    assert intake.reparse_all(factory, SETTINGS).changed == 0


def test_relay_refusing_our_sender_alerts_and_suppresses_nobody(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "ok@example.org")
        intake.record_rejection(
            session,
            target,
            reply_code="553",
            response="5.7.1 <b+x@bounces.example.net>: Sender address rejected",
            command="MAIL",
            relay="relay.example",
        )
        target_id = target.id
    with factory() as session:
        assert _count(session, Suppression) == 0
        assert session.scalars(select(Alert.kind)).one() == "sender_refused"
        event = session.scalars(select(BounceEvent)).one()
        assert event.sender_side
        row = session.get(Delivery, target_id)
        assert row is not None and row.state is DeliveryState.BOUNCED_SOFT


def test_an_unreachable_relay_counts_against_no_contact(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        acme = account(session)
        target = delivery(session, acme.id, "patient@example.org")
        intake.record_rejection(
            session,
            target,
            reply_code="",
            response="connection refused by relay.example",
            command="CONN",
            relay="relay.example",
        )
    with factory() as session:
        event = session.scalars(select(BounceEvent)).one()
        assert event.sender_side and not event.hard
        assert _count(session, Suppression) == 0
