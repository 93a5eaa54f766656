"""The sandbox: an outbox instead of a relay, and a simulator domain whose answers are real
RFC 3464 / RFC 3834 / RFC 5965 messages that the parser reads like any other bounce."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import bounceback
from bounceback import Category, Kind, Reason
from bounceback.service.db.models import (
    Delivery,
    DeliveryState,
    Email,
    OutboxMessage,
    RawBounce,
    SendStatus,
    TimelineEntry,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import sending, verp
from bounceback.service.domain.errors import NotFound
from bounceback.service.outbound import sandbox
from bounceback.service.outbound.message import Outgoing, build
from bounceback.service.worker import Worker, build_handlers, run_until_idle

from outbound_support import SECRET, make_world, settings, start_send, wait_for

SIM = "simulator.bounceback.test"


def _outgoing(local: str, delivery_id: int = 77) -> Outgoing:
    delivery = Delivery(
        id=delivery_id, account_id=1, send_id=2, contact_id=3, email=f"{local}@{SIM}", message_id=""
    )
    email = Email(
        account_id=1,
        from_address="news@shop.example",
        subject="Spring sale",
        html="<p>Sale</p>",
        text="",
    )
    return build(settings(), delivery, email)


FAILURES = [
    ("unknown1", Kind.BOUNCE, Reason.USER_UNKNOWN, Category.UNKNOWN_USER, "5.1.1", True),
    ("full", Kind.BOUNCE, Reason.MAILBOX_FULL, Category.MAILBOX_FULL, "5.2.2", True),
    ("spam.test", Kind.BOUNCE, Reason.SPAM_DETECTED, Category.SPAM, "5.7.1", True),
    ("dmarc", Kind.BOUNCE, Reason.AUTH_FAILURE, Category.DMARC_UNAUTHORIZED, "5.7.26", True),
    ("tempfail", Kind.DELAY, None, None, "4.4.1", False),
]


@pytest.mark.parametrize(("local", "kind", "reason", "category", "status", "permanent"), FAILURES)
def test_simulated_failures_parse_as_real_bounces(
    local: str,
    kind: Kind,
    reason: Reason | None,
    category: Category | None,
    status: str,
    permanent: bool,
) -> None:
    out = _outgoing(local)
    [raw] = sandbox.simulate(settings(), out)
    report = bounceback.parse(raw)
    assert report.kind is kind
    assert report.detector == "rfc3464"
    [recipient] = report.recipients
    assert recipient.address == out.recipient
    assert recipient.status == status
    assert recipient.permanent is permanent
    if reason is not None:
        assert (recipient.reason, recipient.category) == (reason, category)
    # Everything that names the delivery came back, and it verifies.
    assert verp.verify_token(SECRET, report.verp_token) == 77
    assert report.return_path == out.envelope_from
    assert verp.verify_token(SECRET, report.original.envelope_id) == 77
    assert verp.verify_token(SECRET, report.original.header("X-Bounceback-Delivery")) == 77
    assert report.original.message_id == out.message_id


def test_delivered_autoreply_and_complaint() -> None:
    [ok] = sandbox.simulate(settings(), _outgoing("anyone"))
    report = bounceback.parse(ok)
    assert report.kind is Kind.DELIVERED
    assert report.recipients[0].reason is Reason.DELIVERED
    assert verp.verify_token(SECRET, report.verp_token) == 77

    delivered, reply = sandbox.simulate(settings(), _outgoing("autoreply-7"))
    assert bounceback.parse(delivered).kind is Kind.DELIVERED
    report = bounceback.parse(reply)
    assert report.kind is Kind.AUTO_REPLY
    assert verp.verify_token(SECRET, report.verp_token) == 77

    complained = _outgoing("complaint")
    delivered, arf = sandbox.simulate(settings(), complained)
    assert bounceback.parse(delivered).kind is Kind.DELIVERED
    report = bounceback.parse(arf)
    assert report.kind is Kind.COMPLAINT
    assert report.detector == "arf"
    assert report.recipients[0].feedback_type == "abuse"
    assert report.recipients[0].address == f"complaint@{SIM}"
    assert verp.verify_token(SECRET, report.verp_token) == 77
    assert report.original.message_id == complained.message_id
    assert verp.verify_token(SECRET, report.original.header("X-Bounceback-Delivery")) == 77


def test_other_domains_get_no_answer() -> None:
    out = replace(_outgoing("unknown"), recipient="unknown@example.org")
    assert sandbox.simulate(settings(), out) == []


def test_sandbox_send_fills_outbox_and_intake(factory: sessionmaker[Session]) -> None:
    addresses = [f"unknown@{SIM}", f"ok@{SIM}", "ann@example.org"]
    world = make_world(factory, addresses)
    other = make_world(factory, ["zed@example.org"], name="Other")
    send_id = start_send(factory, world, addresses)
    ran = run_until_idle(factory, {"deliver": build_handlers(settings())["deliver"]})
    assert ran == 3
    with factory() as session:
        deliveries = {
            d.email: d for d in session.scalars(select(Delivery).where(Delivery.send_id == send_id))
        }
        assert all(d.state is DeliveryState.SENT for d in deliveries.values())
        assert all(d.sent_at is not None and d.attempts == 1 for d in deliveries.values())
        outbox, total = sandbox.list_outbox(session, world.account_id)
        assert total == 3
        assert {m.envelope_to for m in outbox} == set(addresses)
        for message in outbox:
            delivery = deliveries[message.envelope_to]
            assert message.delivery_id == delivery.id
            assert message.envelope_from == verp.return_path(SECRET, delivery.id, "bounces.example")
            assert delivery.message_id.encode() in message.raw
        assert sandbox.list_outbox(session, other.account_id) == ([], 0)
        assert sandbox.get_outbox_message(session, world.account_id, outbox[0].id) is outbox[0]
        with pytest.raises(NotFound):
            sandbox.get_outbox_message(session, other.account_id, outbox[0].id)
        # The simulator's answers entered the intake, addressed to the VERP return path.
        raws = session.scalars(select(RawBounce).order_by(RawBounce.id)).all()
        assert [r.source for r in raws] == ["sandbox", "sandbox"]
        by_token = {verp.verify_token(SECRET, verp.token_of(r.envelope_to)): r for r in raws}
        assert set(by_token) == {deliveries[f"unknown@{SIM}"].id, deliveries[f"ok@{SIM}"].id}
        assert bounceback.parse(by_token[deliveries[f"unknown@{SIM}"].id].raw).kind is Kind.BOUNCE
        timeline = session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "sent")).all()
        assert len(timeline) == 3
        assert sending.get_send(session, world.account_id, send_id).status is SendStatus.DONE


def test_worker_thread_runs_the_whole_pipeline(factory: sessionmaker[Session]) -> None:
    """Deliver, then process what the simulator sent back: states follow the bounces."""
    addresses = [f"unknown@{SIM}", f"ok@{SIM}", f"complaint@{SIM}"]
    world = make_world(factory, addresses)
    worker = Worker(settings(), factory)
    worker.start()
    try:
        send_id = start_send(factory, world, addresses)

        def states() -> dict[str, DeliveryState]:
            with factory() as session:
                rows = session.scalars(select(Delivery).where(Delivery.send_id == send_id))
                return {d.email: d.state for d in rows}

        def settled() -> bool:
            with factory() as session:
                raws = session.scalars(select(RawBounce.status)).all()
            return len(raws) == 4 and all(s.value != "received" for s in raws)

        wait_for(settled, what="the simulator's messages to be processed")
    finally:
        worker.stop()
    assert states() == {
        f"unknown@{SIM}": DeliveryState.BOUNCED_HARD,
        f"ok@{SIM}": DeliveryState.DELIVERED,
        f"complaint@{SIM}": DeliveryState.DELIVERED,
    }
    with transaction(factory) as session:
        progress = sending.progress(session, world.account_id, send_id)
        assert progress.complaints == 1
        assert session.scalar(select(OutboxMessage.id).limit(1)) is not None
