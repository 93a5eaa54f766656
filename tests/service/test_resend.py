"""Resend to soft-bounced, on SQLite and PostgreSQL: a send goes through a real SMTP server on
127.0.0.1, notices come back through the intake, and the resend (a clone of the email, changed or
not) goes to the soft-bounced recipients who may still be sent to, as a send of its own linked
both ways to the original. Through the domain, the JSON API and the web UI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Contact,
    DeliveryState,
    Email,
    Job,
    NotSentReason,
    Role,
    Send,
    SendStatus,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import guardrails, resend, sending
from bounceback.service.domain.errors import Conflict, Invalid

from flow_support import (
    api_key,
    complaint,
    deliveries,
    form_token,
    login,
    notice,
    receive,
    relay,
    run_worker,
    user,
    web_client,
)
from outbound_support import RelayHandler, make_world, start_send

FULL = "452 4.2.2 <{r}>: Mailbox full, quota exceeded"
OUTCOMES = {
    "ann@example.org": "soft",  # mailbox full: resent
    "bob@example.org": "soft",  # mailbox full: resent
    "cat@example.org": "hard",  # unknown user: suppressed
    "dan@example.org": "delivered",
    "eve@example.org": "soft, then unsubscribed",
    "fay@example.org": "soft, then complained",
}
RESENT = ["ann@example.org", "bob@example.org"]


@dataclass(frozen=True)
class Sent:
    account_id: int
    email_id: int
    send_id: int


def _soft_bounced_send(factory: sessionmaker[Session]) -> Sent:
    """A send to six contacts, each with its outcome of OUTCOMES."""
    world = make_world(factory, list(OUTCOMES))
    with relay() as (_, config):
        send_id = start_send(factory, world, list(OUTCOMES))
        run_worker(factory, config)
    rows = deliveries(factory, send_id)
    for address, outcome in OUTCOMES.items():
        row = rows[address]
        if outcome == "hard":
            receive(factory, notice(row.id, address))
        elif outcome == "delivered":
            receive(factory, notice(row.id, address, action="delivered", status="2.0.0"))
        else:
            receive(factory, notice(row.id, address, status="4.2.2", diagnostic=FULL))
    receive(factory, complaint(rows["fay@example.org"].id, "fay@example.org"))
    with transaction(factory) as session:
        eve = session.scalars(select(Contact).where(Contact.email == "eve@example.org")).one()
        eve.unsubscribed_at = utcnow()
    states = {a: d.state for a, d in deliveries(factory, send_id).items()}
    assert [a for a, s in states.items() if s is DeliveryState.BOUNCED_SOFT] == [
        "ann@example.org",
        "bob@example.org",
        "eve@example.org",
        "fay@example.org",
    ]
    return Sent(world.account_id, world.email_id, send_id)


def test_resend_goes_to_the_eligible_soft_bounced_with_the_changes(
    factory: sessionmaker[Session],
) -> None:
    sent = _soft_bounced_send(factory)
    with transaction(factory) as session:
        assert resend.eligible_count(session, sent.account_id, sent.send_id) == 2
        clone = resend.resend_soft_bounced(
            session, sent.account_id, sent.send_id, subject="Our spring sale, once more"
        )
        new_id, new_email = clone.id, clone.email_id
        assert clone.status is SendStatus.SENDING and clone.resend_of_id == sent.send_id
    with factory() as session:
        email = session.get(Email, new_email)
        original = session.get(Email, sent.email_id)
        assert email is not None and original is not None
        assert email.cloned_from_id == original.id and email.id != original.id
        assert email.subject == "Our spring sale, once more"
        assert (email.html, email.from_address, email.from_name) == (
            original.html,
            original.from_address,
            original.from_name,
        )
        assert [s.id for s in resend.resends_of(session, sent.account_id, sent.send_id)] == [new_id]
        # Resent once: nobody is left to resend the original to.
        assert resend.eligible_count(session, sent.account_id, sent.send_id) == 0
        with pytest.raises(Conflict, match="no soft-bounced recipient"):
            resend.resend_soft_bounced(session, sent.account_id, sent.send_id)
    assert sorted(deliveries(factory, new_id)) == RESENT

    handler = RelayHandler()
    with relay(handler) as (_, config):
        run_worker(factory, config)
    assert sorted(t.rcpt_to[0] for t in handler.received) == RESENT
    assert all(b"Subject: Our spring sale, once more" in t.data for t in handler.received)
    with factory() as session:
        assert sending.get_send(session, sent.account_id, new_id).status is SendStatus.DONE


def _jobs_for(session: Session, send_id: int) -> list[Job]:
    """The delivery jobs of a send's recipients."""
    send = session.get(Send, send_id)
    assert send is not None
    ids = {d.id for d in sending.recipients(session, send.account_id, send_id)[0]}
    return [j for j in session.scalars(select(Job)).all() if j.payload.get("delivery_id") in ids]


def test_a_draft_or_scheduled_resend_and_a_cancelled_one(factory: sessionmaker[Session]) -> None:
    sent = _soft_bounced_send(factory)
    with transaction(factory) as session, pytest.raises(Invalid, match="subject"):
        resend.resend_soft_bounced(session, sent.account_id, sent.send_id, subject="  ")
    with transaction(factory) as session:
        draft = resend.resend_soft_bounced(
            session, sent.account_id, sent.send_id, html="", text="Plain words.", start=False
        )
        draft_id = draft.id
        assert draft.status is SendStatus.DRAFT
        assert (draft.email.html, draft.email.text) == ("", "Plain words.")
        assert _jobs_for(session, draft_id) == []  # a draft waits to be started
        assert resend.eligible_count(session, sent.account_id, sent.send_id) == 0
    with transaction(factory) as session:
        cancelled = guardrails.cancel_send(session, sent.account_id, draft_id)
        assert cancelled.status is SendStatus.CANCELLED
        rows, _ = sending.recipients(session, sent.account_id, draft_id)
        assert {d.not_sent_reason for d in rows} == {NotSentReason.CANCELLED}
        # A cancelled resend gave its recipients back.
        assert resend.eligible_count(session, sent.account_id, sent.send_id) == 2
    later = datetime.now(UTC) + timedelta(days=2)
    with transaction(factory) as session:
        scheduled = resend.resend_soft_bounced(
            session, sent.account_id, sent.send_id, scheduled_at=later
        )
        scheduled_id = scheduled.id
        assert scheduled.status is SendStatus.SCHEDULED
    with factory() as session:
        jobs = _jobs_for(session, scheduled_id)
    assert len(jobs) == 2
    for job in jobs:
        run_at = job.run_at if job.run_at.tzinfo else job.run_at.replace(tzinfo=UTC)
        assert abs(run_at - later) < timedelta(seconds=1)


def test_resend_over_the_api(factory: sessionmaker[Session], tmp_path: Path) -> None:
    sent = _soft_bounced_send(factory)
    client = web_client(factory, tmp_path)
    headers = api_key(factory, sent.account_id)
    before = client.get(f"/api/sends/{sent.send_id}", headers=headers).json()
    assert before["resend_eligible"] == 2 and before["resend_ids"] == []

    created = client.post(
        f"/api/sends/{sent.send_id}/resend-soft-bounced",
        json={"subject": "Second try", "text": "Also in plain text.", "start": True},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    clone = created.json()
    assert clone["resend_of_id"] == sent.send_id and clone["status"] == "sending"
    assert clone["progress"]["queued"] == 2 and clone["progress"]["total"] == 2
    email = client.get(f"/api/emails/{clone['email_id']}", headers=headers).json()
    assert email["cloned_from_id"] == sent.email_id
    assert (email["subject"], email["text"]) == ("Second try", "Also in plain text.")
    assert "Spring sale" in email["html"]  # kept from the original
    recipients = client.get(f"/api/sends/{clone['id']}/recipients", headers=headers).json()
    assert sorted(r["address"] for r in recipients["items"]) == RESENT

    after = client.get(f"/api/sends/{sent.send_id}", headers=headers).json()
    assert after["resend_ids"] == [clone["id"]] and after["resend_eligible"] == 0
    again = client.post(f"/api/sends/{sent.send_id}/resend-soft-bounced", headers=headers)
    assert again.status_code == 409
    assert "no soft-bounced recipient" in again.json()["error"]["message"]

    other = make_world(factory, [], name="Other")
    foreign = client.post(
        f"/api/sends/{sent.send_id}/resend-soft-bounced", headers=api_key(factory, other.account_id)
    )
    assert foreign.status_code == 404


def test_resend_from_the_send_page(factory: sessionmaker[Session], tmp_path: Path) -> None:
    sent = _soft_bounced_send(factory)
    user(factory, sent.account_id, "member@shop.example", Role.MEMBER)
    client = web_client(factory, tmp_path)
    login(client, "member@shop.example")
    page = client.get(f"/sends/{sent.send_id}").text
    assert "2 recipients would receive it" in page
    assert 'value="Our spring sale"' in page  # the form starts from the original

    refused = client.post(f"/sends/{sent.send_id}/resend", data={"subject": "x"})
    assert refused.status_code == 403
    token = form_token(client, f"/sends/{sent.send_id}")
    answer = client.post(
        f"/sends/{sent.send_id}/resend",
        data={
            "csrf_token": token,
            "subject": "Spring sale: a second chance",
            "html": "<p>Still on.</p>",
            "text": "",
            "scheduled_at": "",
        },
    )
    assert answer.status_code == 303, answer.text
    new_page_url = answer.headers["location"]
    new_id = int(new_page_url.rsplit("/", 1)[1])
    assert new_id != sent.send_id

    new_page = client.get(new_page_url).text
    assert "Resending to 2 soft-bounced recipient(s)." in new_page
    assert "Spring sale: a second chance" in new_page
    assert f'<a href="/sends/{sent.send_id}">' in new_page  # linked to the original
    assert "ann@example.org" in new_page and "bob@example.org" in new_page
    assert "cat@example.org" not in new_page and "eve@example.org" not in new_page

    original_page = client.get(f"/sends/{sent.send_id}").text
    assert f'<a href="/sends/{new_id}">send {new_id}</a>' in original_page
    assert "None of the soft-bounced recipients can be sent to again now" in original_page
    listing = client.get("/sends").text
    assert f'(resend of <a href="/sends/{sent.send_id}">' in listing
