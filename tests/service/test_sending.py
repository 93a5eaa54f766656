"""Emails and sends: who is sent to and who is not (and why), jobs, progress, recipients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    BounceEvent,
    Delivery,
    DeliveryState,
    Job,
    NotSentReason,
    RawBounce,
    SendStatus,
    Suppression,
    SuppressionReason,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, contacts, sending
from bounceback.service.domain.errors import Conflict, Invalid, NotFound

from outbound_support import make_world

ADDRESSES = ["ann@example.org", "bob@example.org", "cat@example.org", "dan@example.org"]


def test_create_email_checks_its_fields(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, [])
    with transaction(factory) as session:
        email = sending.create_email(
            session,
            world.account_id,
            from_address=" News@Shop.Example ",
            subject="A\r\nBcc: x",
            text="hello",
        )
        assert email.from_address == "news@shop.example"
        assert email.subject == "A Bcc: x"  # no header injection through the subject
        with pytest.raises(Invalid, match="subject"):
            sending.create_email(
                session, world.account_id, from_address="a@b.example", subject=" ", text="x"
            )
        with pytest.raises(Invalid, match="body"):
            sending.create_email(session, world.account_id, from_address="a@b.example", subject="s")
        with pytest.raises(Invalid):
            sending.create_email(
                session, world.account_id, from_address="nobody", subject="s", text="x"
            )
        assert sending.get_email(session, world.account_id, email.id) is email


def test_suppressed_contacts_are_not_sent_to(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, [*ADDRESSES, "eve@example.org"])
    with transaction(factory) as session:
        session.add_all(
            [
                Suppression(
                    account_id=world.account_id,
                    email="bob@example.org",
                    reason=SuppressionReason.HARD_BOUNCE,
                    category="unknown_user",
                ),
                Suppression(
                    account_id=None,
                    email="cat@example.org",
                    reason=SuppressionReason.GLOBAL_BOUNCE,
                    category="unknown_user",
                ),
                Suppression(
                    account_id=world.account_id,
                    email="dan@example.org",
                    reason=SuppressionReason.COMPLAINT,
                    category="complaint",
                ),
            ]
        )
        contacts.get_contact(
            session, world.account_id, world.contact_ids["eve@example.org"]
        ).unsubscribed_at = utcnow()
    with transaction(factory) as session:
        send = sending.create_send(session, world.account_id, world.email_id)  # everyone
        assert send.status is SendStatus.DRAFT
        rows, total = sending.recipients(session, world.account_id, send.id)
    assert total == 5
    found = {d.email: (d.state, d.not_sent_reason) for d in rows}
    assert found == {
        "ann@example.org": (DeliveryState.QUEUED, None),
        "bob@example.org": (DeliveryState.NOT_SENT, NotSentReason.ACCOUNT_BOUNCE),
        "cat@example.org": (DeliveryState.NOT_SENT, NotSentReason.GLOBAL_BOUNCE),
        "dan@example.org": (DeliveryState.NOT_SENT, NotSentReason.COMPLAINED),
        "eve@example.org": (DeliveryState.NOT_SENT, NotSentReason.UNSUBSCRIBED),
    }


def test_a_large_send_decides_everyone_in_a_few_queries(factory: sessionmaker[Session]) -> None:
    """1,200 contacts: the suppressions are read 500 addresses at a time, so some sit in each
    query; a lifted suppression no longer counts, and of two the stronger is shown."""
    addresses = [f"p{n:04d}@example.org" for n in range(1200)]
    world = make_world(factory, addresses)
    with transaction(factory) as session:
        for address, reason, account_id in [
            ("p0001@example.org", SuppressionReason.HARD_BOUNCE, world.account_id),
            ("p0700@example.org", SuppressionReason.COMPLAINT, world.account_id),
            ("p1199@example.org", SuppressionReason.HARD_BOUNCE, world.account_id),
            ("p1199@example.org", SuppressionReason.GLOBAL_BOUNCE, None),
            ("p0900@example.org", SuppressionReason.HARD_BOUNCE, world.account_id),
        ]:
            session.add(Suppression(account_id=account_id, email=address, reason=reason))
        session.flush()
        lifted = session.scalars(
            select(Suppression).where(Suppression.email == "p0900@example.org")
        ).one()
        lifted.lifted_at = utcnow()
    with transaction(factory) as session:
        send = sending.create_send(session, world.account_id, world.email_id)
        rows = session.scalars(select(Delivery).where(Delivery.send_id == send.id)).all()
    assert len(rows) == 1200
    assert {d.email: d.not_sent_reason for d in rows if d.state is DeliveryState.NOT_SENT} == {
        "p0001@example.org": NotSentReason.ACCOUNT_BOUNCE,
        "p0700@example.org": NotSentReason.COMPLAINED,
        "p1199@example.org": NotSentReason.GLOBAL_BOUNCE,
    }
    assert {d.contact_id for d in rows} == set(world.contact_ids.values())


def test_another_accounts_suppression_does_not_count(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, ["ann@example.org"])
    other = make_world(factory, [], name="Other")
    with transaction(factory) as session:
        session.add(
            Suppression(
                account_id=other.account_id,
                email="ann@example.org",
                reason=SuppressionReason.HARD_BOUNCE,
            )
        )
    with transaction(factory) as session:
        send = sending.create_send(session, world.account_id, world.email_id)
        rows, _ = sending.recipients(session, world.account_id, send.id)
    assert [d.state for d in rows] == [DeliveryState.QUEUED]


def test_start_enqueues_one_job_per_queued_delivery(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, ADDRESSES)
    with transaction(factory) as session:
        session.add(
            Suppression(
                account_id=world.account_id,
                email="dan@example.org",
                reason=SuppressionReason.UNSUBSCRIBE,
            )
        )
    with transaction(factory) as session:
        send = sending.create_send(
            session, world.account_id, world.email_id, contact_ids=list(world.contact_ids.values())
        )
        started = sending.start_send(session, world.account_id, send.id)
        assert started.status is SendStatus.SENDING and started.started_at is not None
        with pytest.raises(Conflict):
            sending.start_send(session, world.account_id, send.id)
    with factory() as session:
        queued = session.scalars(
            select(Delivery.id).where(
                Delivery.send_id == send.id, Delivery.state == DeliveryState.QUEUED
            )
        ).all()
        found = session.scalars(select(Job).where(Job.kind == "deliver")).all()
    assert len(queued) == 3
    assert sorted(j.key or "" for j in found) == sorted(f"deliver:{i}" for i in queued)
    assert sorted(j.payload["delivery_id"] for j in found) == sorted(queued)


def test_a_send_with_nobody_to_send_to_is_done_at_once(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, ["ann@example.org"])
    with transaction(factory) as session:
        session.add(
            Suppression(
                account_id=world.account_id,
                email="ann@example.org",
                reason=SuppressionReason.UNSUBSCRIBE,
            )
        )
    with transaction(factory) as session:
        send = sending.create_send(session, world.account_id, world.email_id)
        assert sending.start_send(session, world.account_id, send.id).status is SendStatus.DONE
        assert session.scalar(select(Job.id)) is None


def test_scheduled_send_runs_at_its_time(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, ["ann@example.org"])
    later = datetime.now(UTC) + timedelta(hours=3)
    with transaction(factory) as session:
        send = sending.create_send(session, world.account_id, world.email_id, scheduled_at=later)
        assert send.status is SendStatus.SCHEDULED
        assert sending.start_send(session, world.account_id, send.id).status is (
            SendStatus.SCHEDULED
        )
    with factory() as session:
        job = session.scalars(select(Job)).one()
    run_at = job.run_at if job.run_at.tzinfo else job.run_at.replace(tzinfo=UTC)
    assert abs(run_at - later) < timedelta(seconds=1)


def test_progress_and_recipients(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, ADDRESSES)
    with transaction(factory) as session:
        session.add(
            Suppression(
                account_id=world.account_id,
                email="dan@example.org",
                reason=SuppressionReason.HARD_BOUNCE,
            )
        )
    with transaction(factory) as session:
        send = sending.create_send(session, world.account_id, world.email_id)
        rows = {d.email: d for d in sending.recipients(session, world.account_id, send.id)[0]}
        rows["ann@example.org"].state = DeliveryState.DELIVERED
        rows["bob@example.org"].state = DeliveryState.BOUNCED_HARD
        raw = RawBounce(sha256="0" * 64, source="smtp", raw=b"x", account_id=world.account_id)
        session.add(raw)
        session.flush()
        session.add(
            BounceEvent(
                account_id=world.account_id,
                raw_bounce_id=raw.id,
                delivery_id=rows["ann@example.org"].id,
                email="ann@example.org",
                kind="complaint",
                reason="feedback",
                category="complaint",
                permanent=True,
                hard=False,
            )
        )
    with factory() as session:
        progress = sending.progress(session, world.account_id, send.id)
        assert progress == sending.Progress(
            total=4,
            queued=1,
            sent=0,
            delivered=1,
            pending=0,
            bounced_hard=1,
            bounced_soft=0,
            not_sent=1,
            complaints=1,
        )
        assert progress.bounce_rate == pytest.approx(1 / 2)  # of the two handed over
        bounced, total = sending.recipients(
            session,
            world.account_id,
            send.id,
            states=[DeliveryState.BOUNCED_HARD, DeliveryState.NOT_SENT],
        )
        assert total == 2
        assert {d.email for d in bounced} == {"bob@example.org", "dan@example.org"}
        page, total = sending.recipients(session, world.account_id, send.id, limit=3, offset=3)
        assert total == 4 and len(page) == 1
        first, _ = sending.recipients(session, world.account_id, send.id, limit=3)
        assert page[0].id > max(d.id for d in first)


def test_list_sends_newest_first(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, ["ann@example.org"])
    with transaction(factory) as session:
        ids = [sending.create_send(session, world.account_id, world.email_id).id for _ in range(3)]
    with factory() as session:
        items, total = sending.list_sends(session, world.account_id, limit=2)
        assert total == 3
        assert [s.id for s in items] == sorted(ids, reverse=True)[:2]


def test_another_accounts_objects_are_not_found(factory: sessionmaker[Session]) -> None:
    mine = make_world(factory, ["ann@example.org"])
    theirs = make_world(factory, ["zed@example.org"], name="Them")
    with transaction(factory) as session:
        send = sending.create_send(session, theirs.account_id, theirs.email_id)
    with transaction(factory) as session:
        me = mine.account_id
        for call in (
            lambda: sending.get_email(session, me, theirs.email_id),
            lambda: sending.get_send(session, me, send.id),
            lambda: sending.progress(session, me, send.id),
            lambda: sending.recipients(session, me, send.id),
            lambda: sending.start_send(session, me, send.id),
            lambda: sending.create_send(session, me, theirs.email_id),
            lambda: sending.create_send(
                session, me, mine.email_id, contact_ids=[theirs.contact_ids["zed@example.org"]]
            ),
        ):
            with pytest.raises(NotFound):
                call()
        assert sending.list_sends(session, me) == ([], 0)


def test_a_send_needs_recipients(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, [])
    with transaction(factory) as session:
        with pytest.raises(Invalid, match="contact"):
            sending.create_send(session, world.account_id, world.email_id)
        account = accounts.create_account(session, "Empty")
        with pytest.raises(NotFound):
            sending.create_send(session, account.id, world.email_id)
