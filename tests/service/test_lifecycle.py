"""The soft-bounce lifecycle of a delivery, sent through a real SMTP server on 127.0.0.1 and
answered by delivery status notices through the intake, on SQLite and PostgreSQL:

sent -> a delay notice: pending -> a success notice: delivered; a final failure with a temporary
code: a soft bounce of its category; a temporary refusal of the relay itself retried with backoff
for the account's retry period; repeated soft bounces turning hard; a delivery resetting that.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Account,
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    Job,
    NotSentReason,
    RawStatus,
    SendStatus,
    TimelineEntry,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import sending, suppression
from bounceback.service.worker import Deliverer

from flow_support import deliveries, notice, receive, relay, run_worker
from outbound_support import RelayHandler, World, make_world, start_send

DELAYED = "451 4.4.1 <{r}>: host mx.remote.example[192.0.2.7] said: timed out"
FULL = "452 4.2.2 <{r}>: Mailbox full, quota exceeded"


def _aware(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _state(factory: sessionmaker[Session], delivery_id: int) -> Delivery:
    with factory() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def test_delay_pending_then_delivered_and_never_sent_twice(
    factory: sessionmaker[Session],
) -> None:
    addresses = ["slow@example.org", "later@example.org"]
    world = make_world(factory, addresses)
    handler = RelayHandler()
    with relay(handler) as (_, config):
        send_id = start_send(factory, world, addresses)
        slow = deliveries(factory, send_id)["slow@example.org"]
        deliver = Deliverer(config)
        try:
            deliver(factory, {"delivery_id": slow.id})  # only the first goes out for now
        finally:
            deliver.close()
        assert _state(factory, slow.id).state is DeliveryState.SENT

        status = receive(
            factory,
            notice(slow.id, slow.email, action="delayed", status="4.4.1", diagnostic=DELAYED),
        )
        assert status is RawStatus.PROCESSED
        delayed = _state(factory, slow.id)
        assert delayed.state is DeliveryState.PENDING
        assert delayed.category and "timed out" in delayed.response

        # Paused and resumed meanwhile: the relay has the delayed message and retries it
        # itself; bounceback hands over only what it never handed over.
        with transaction(factory) as session:
            sending.get_send(session, world.account_id, send_id).status = SendStatus.PAUSED
        with transaction(factory) as session:
            sending.resume_send(session, world.account_id, send_id)
        run_worker(factory, config)
    assert sorted(t.rcpt_to[0] for t in handler.received) == sorted(addresses)
    with factory() as session:
        # Nothing is left to hand over: the send is done though one recipient is pending.
        assert sending.get_send(session, world.account_id, send_id).status is SendStatus.DONE

    receive(
        factory,
        notice(slow.id, slow.email, action="delivered", status="2.0.0", diagnostic="250 2.0.0 Ok"),
    )
    assert _state(factory, slow.id).state is DeliveryState.DELIVERED
    with factory() as session:
        kinds = session.scalars(
            select(TimelineEntry.kind)
            .where(TimelineEntry.contact_id == slow.contact_id)
            .order_by(TimelineEntry.id)
        ).all()
    assert list(kinds) == ["sent", "delayed", "delivered"]


def test_final_failure_with_a_temporary_code_is_a_soft_bounce(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, ["full@example.org"])
    with relay() as (_, config):
        send_id = start_send(factory, world, ["full@example.org"])
        run_worker(factory, config)
    row = deliveries(factory, send_id)["full@example.org"]
    receive(factory, notice(row.id, row.email, action="delayed", status="4.2.2", diagnostic=FULL))
    assert _state(factory, row.id).state is DeliveryState.PENDING
    receive(factory, notice(row.id, row.email, action="failed", status="4.2.2", diagnostic=FULL))
    final = _state(factory, row.id)
    assert final.state is DeliveryState.BOUNCED_SOFT
    assert (final.category, final.reason) == ("mailbox_full", "mailbox_full")
    assert final.response.startswith("452 4.2.2")
    with factory() as session:
        # A soft bounce leaves the contact eligible.
        assert suppression.not_sent_reason(session, world.account_id, row.email) is None
        event = session.scalars(select(BounceEvent).where(BounceEvent.kind == "bounce")).one()
        assert not event.hard and not event.permanent
    # A late delay notice about it changes nothing any more.
    receive(
        factory, notice(row.id, row.email, action="delayed", status="4.4.7", diagnostic=DELAYED)
    )
    assert _state(factory, row.id).state is DeliveryState.BOUNCED_SOFT


def _make_due(factory: sessionmaker[Session], delivery_id: int, deferred_for: timedelta) -> None:
    """Move the clock: the retry is due now, and the first deferral was that long ago."""
    with transaction(factory) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(
                next_attempt_at=utcnow() - timedelta(seconds=1),
                first_deferred_at=utcnow() - deferred_for,
            )
        )
        session.execute(update(Job).where(Job.done_at.is_(None)).values(run_at=utcnow()))


def test_relay_refusals_are_retried_for_the_accounts_retry_period(
    factory: sessionmaker[Session],
) -> None:
    greylisted = "greylist@example.org"
    handler = RelayHandler(rcpt={"greylist": "450 4.2.0 <{addr}>: Greylisted, come back later"})
    world = make_world(factory, [greylisted])
    with transaction(factory) as session:
        account = session.get(Account, world.account_id)
        assert account is not None
        account.policy = {"retry_hours": 6}
    with relay(handler) as (_, config):
        send_id = start_send(factory, world, [greylisted])
        run_worker(factory, config)
        first = deliveries(factory, send_id)[greylisted]
        assert first.state is DeliveryState.PENDING and first.attempts == 1
        assert first.sent_at is None and "Greylisted" in first.response
        wait = _aware(first.next_attempt_at) - utcnow()
        assert timedelta(minutes=4) < wait <= timedelta(minutes=5)  # backoff starts at 5 min

        _make_due(factory, first.id, deferred_for=timedelta(hours=5, minutes=50))
        run_worker(factory, config)
        second = _state(factory, first.id)
        assert second.state is DeliveryState.PENDING and second.attempts == 2
        # The next try never falls after the end of the account's retry period (6 hours).
        end = _aware(second.first_deferred_at) + timedelta(hours=6)
        assert _aware(second.next_attempt_at) <= end + timedelta(seconds=1)

        _make_due(factory, first.id, deferred_for=timedelta(hours=6, minutes=1))
        run_worker(factory, config)
    given_up = _state(factory, first.id)
    assert given_up.state is DeliveryState.BOUNCED_SOFT and given_up.attempts == 3
    assert "Greylisted" in given_up.response
    assert len(handler.received) == 0
    with factory() as session:
        assert suppression.not_sent_reason(session, world.account_id, greylisted) is None
        assert sending.get_send(session, world.account_id, send_id).status is SendStatus.DONE


def test_a_paused_retry_resumes_when_it_is_due(factory: sessionmaker[Session]) -> None:
    handler = RelayHandler(rcpt={"greylist": "451 4.7.1 <{addr}>: Greylisted"})
    world = make_world(factory, ["greylist@example.org"])
    with relay(handler) as (_, config):
        send_id = start_send(factory, world, ["greylist@example.org"])
        run_worker(factory, config)
    row = deliveries(factory, send_id)["greylist@example.org"]
    with transaction(factory) as session:
        sending.get_send(session, world.account_id, send_id).status = SendStatus.PAUSED
    with transaction(factory) as session:
        sending.resume_send(session, world.account_id, send_id)
    with factory() as session:
        job = session.scalars(select(Job).where(Job.key.like(f"deliver:{row.id}:resume:%"))).one()
    # Not now: when its retry is due (or a job run now would find it not due and be lost).
    assert abs(_aware(job.run_at) - _aware(row.next_attempt_at)) < timedelta(seconds=1)


def _sent_to(factory: sessionmaker[Session], world: World, address: str) -> int:
    """A send of the email to ``address`` alone, handed to the relay; its delivery's id."""
    with relay() as (_, config):
        send_id = start_send(factory, world, [address])
        run_worker(factory, config)
    return deliveries(factory, send_id)[address].id


def test_repeated_soft_bounces_turn_hard_and_a_delivery_resets_the_count(
    factory: sessionmaker[Session],
) -> None:
    address = "full@example.org"
    world = make_world(factory, [address])

    def soft_bounce() -> int:
        delivery_id = _sent_to(factory, world, address)
        receive(factory, notice(delivery_id, address, status="4.2.2", diagnostic=FULL))
        return delivery_id

    def eligible() -> bool:
        with factory() as session:
            return suppression.not_sent_reason(session, world.account_id, address) is None

    old = soft_bounce()
    with transaction(factory) as session:  # more than 30 days ago: it does not count
        session.execute(
            update(BounceEvent)
            .where(BounceEvent.delivery_id == old)
            .values(created_at=utcnow() - timedelta(days=31))
        )
    for _ in range(3):
        soft_bounce()
    delivered = _sent_to(factory, world, address)
    receive(
        factory,
        notice(delivered, address, action="delivered", status="2.0.0", diagnostic="250 2.0.0 Ok"),
    )
    for _ in range(4):  # four since the delivery: still a soft bounce each
        assert _state(factory, soft_bounce()).state is DeliveryState.BOUNCED_SOFT
    assert eligible()

    fifth = soft_bounce()  # the fifth in 30 days with no delivery in between: hard
    row = _state(factory, fifth)
    assert row.state is DeliveryState.BOUNCED_HARD and row.category == "mailbox_full"
    assert not eligible()
    with factory() as session:
        assert suppression.not_sent_reason(session, world.account_id, address) is (
            NotSentReason.ACCOUNT_BOUNCE
        )
        contact = session.scalars(select(Contact).where(Contact.email == address)).one()
        assert contact.hard_bounce_reason.startswith("Mailbox full: 452 4.2.2")
        # The next send leaves the contact out.
        send = sending.create_send(session, world.account_id, world.email_id)
        [left_out] = sending.recipients(session, world.account_id, send.id)[0]
        assert left_out.not_sent_reason is NotSentReason.ACCOUNT_BOUNCE


def test_the_count_follows_the_accounts_policy(factory: sessionmaker[Session]) -> None:
    address = "full@example.org"
    world = make_world(factory, [address])
    with transaction(factory) as session:
        account = session.get(Account, world.account_id)
        assert account is not None
        account.policy = {"soft_to_hard_count": 2}
    states = []
    for _ in range(2):
        delivery_id = _sent_to(factory, world, address)
        receive(factory, notice(delivery_id, address, status="4.2.2", diagnostic=FULL))
        states.append(_state(factory, delivery_id).state)
    assert states == [DeliveryState.BOUNCED_SOFT, DeliveryState.BOUNCED_HARD]
