"""Guardrails and sender-side problems, on SQLite and PostgreSQL, with sends going through a real
SMTP server on 127.0.0.1 and notices coming back through the intake:

- a send pauses itself when its hard-bounce rate passes 5% after 100 sent, or its complaint rate
  passes 0.1% (the account's policy), says why, and hands nothing more to the relay; an
  administrator resumes or cancels it (API and web UI; members are refused);
- many policy, security-filter or DMARC refusals at one receiving provider in one send are the
  sender's problem: nobody is suppressed for them (suppressions made before are lifted again,
  audited as automatic) and the account gets one alert naming the provider.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Account,
    Alert,
    BounceEvent,
    Contact,
    DeliveryState,
    Role,
    Suppression,
    TimelineEntry,
    UnbounceAudit,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import resend, sending, suppression
from bounceback.service.domain.providers import provider_of, registrable
from bounceback.service.worker import Deliverer

from api_support import session_creds
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
from outbound_support import RelayHandler, World, make_world, start_send

UNKNOWN = "550 5.1.1 <{addr}>: Recipient address rejected: User unknown in local recipient table"


def _set_policy(factory: sessionmaker[Session], account_id: int, **values: object) -> None:
    with transaction(factory) as session:
        account = session.get(Account, account_id)
        assert account is not None
        account.policy = {**account.policy, **values}


def _send(factory: sessionmaker[Session], account_id: int, send_id: int) -> tuple[str, str]:
    with factory() as session:
        send = sending.get_send(session, account_id, send_id)
        return send.status.value, send.pause_reason


def _states(factory: sessionmaker[Session], send_id: int) -> dict[DeliveryState, int]:
    counts: dict[DeliveryState, int] = {}
    for row in deliveries(factory, send_id).values():
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def _open_alerts(factory: sessionmaker[Session], account_id: int) -> list[Alert]:
    with factory() as session:
        return list(
            session.scalars(
                select(Alert)
                .where(Alert.account_id == account_id, Alert.resolved_at.is_(None))
                .order_by(Alert.id)
            ).all()
        )


# --- guardrails --------------------------------------------------------------------------------


def test_hard_bounces_pause_the_send_and_an_admin_resumes_it(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The default policy: 120 recipients, every tenth unknown to the relay. At the 100th sent
    10% have hard-bounced: the send pauses with the 20 last still queued."""
    addresses = [f"{'gone' if i % 10 == 9 else 'reader'}{i:03d}@example.org" for i in range(120)]
    world = make_world(factory, addresses)
    handler = RelayHandler(rcpt={"gone": UNKNOWN})
    with relay(handler) as (_, config):
        send_id = start_send(factory, world, addresses)
        run_worker(factory, config)
        assert _send(factory, world.account_id, send_id) == (
            "paused",
            "The hard-bounce rate is 10.0% (10 of 100 sent), above this account's limit of 5%.",
        )
        assert len(handler.received) == 90
        assert _states(factory, send_id)[DeliveryState.QUEUED] == 20
        [alert] = _open_alerts(factory, world.account_id)
        assert alert.kind == "send_paused" and "10.0%" in alert.body

        # The web UI: the reason for everyone, the buttons for administrators.
        user(factory, world.account_id, "admin@shop.example", Role.ADMIN)
        member_id = user(factory, world.account_id, "member@shop.example", Role.MEMBER)
        member = web_client(factory, tmp_path)
        login(member, "member@shop.example")
        page = member.get(f"/sends/{send_id}").text
        assert "10 of 100 sent" in page and "An administrator can resume or cancel it." in page
        assert f'action="/sends/{send_id}/resume"' not in page
        token = form_token(member, f"/sends/{send_id}")
        refused = member.post(f"/sends/{send_id}/resume", data={"csrf_token": token})
        assert refused.status_code == 403
        api_refused = member.post(
            f"/api/sends/{send_id}/resume", headers=session_creds(member_id).headers
        )
        assert api_refused.status_code == 403
        run_worker(factory, config)
        assert len(handler.received) == 90  # still paused: nothing more handed over

        admin = web_client(factory, tmp_path)
        login(admin, "admin@shop.example")
        page = admin.get(f"/sends/{send_id}").text
        assert f'action="/sends/{send_id}/resume"' in page
        assert f'action="/sends/{send_id}/cancel"' in page
        dashboard = admin.get("/").text
        assert "10 of 100 sent" in dashboard
        assert f'<a href="/sends/{send_id}">Open the send</a>' in dashboard
        token = form_token(admin, f"/sends/{send_id}")
        resumed = admin.post(f"/sends/{send_id}/resume", data={"csrf_token": token})
        assert resumed.status_code == 303
        assert "The send is resumed" in admin.get(f"/sends/{send_id}").text
        run_worker(factory, config)
    # The administrator decided: two more hard bounces did not pause it again.
    assert _send(factory, world.account_id, send_id) == ("done", "")
    assert len(handler.received) == 108
    assert _states(factory, send_id)[DeliveryState.BOUNCED_HARD] == 12
    assert _open_alerts(factory, world.account_id) == []


def test_a_cancelled_send_sends_nothing_more(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    addresses = [f"{'gone' if i < 3 else 'reader'}{i:02d}@example.org" for i in range(30)]
    world = make_world(factory, addresses)
    _set_policy(factory, world.account_id, pause_after_sent=10)
    handler = RelayHandler(rcpt={"gone": UNKNOWN})
    client = web_client(factory, tmp_path)
    headers = api_key(factory, world.account_id)
    with relay(handler) as (_, config):
        send_id = start_send(factory, world, addresses)
        run_worker(factory, config)
        status, reason = _send(factory, world.account_id, send_id)
        assert status == "paused" and "(3 of 10 sent)" in reason
        member_id = user(factory, world.account_id, "member@shop.example", Role.MEMBER)
        member = session_creds(member_id).headers
        assert client.post(f"/api/sends/{send_id}/cancel", headers=member).status_code == 403

        cancelled = client.post(f"/api/sends/{send_id}/cancel", headers=headers)
        assert cancelled.status_code == 200, cancelled.text
        body = cancelled.json()
        assert body["status"] == "cancelled" and body["progress"]["not_sent"] == 20
        assert "(3 of 10 sent)" in body["pause_reason"]  # why it had been paused stays
        not_sent = client.get(
            f"/api/sends/{send_id}/not-sent", params={"limit": 200}, headers=headers
        ).json()
        assert not_sent["total"] == 20
        assert {(r["reason"], r["reason_label"]) for r in not_sent["items"]} == {
            ("cancelled", "The send was cancelled")
        }
        run_worker(factory, config)
    assert len(handler.received) == 7
    again = client.post(f"/api/sends/{send_id}/resume", headers=headers)
    assert again.status_code == 409
    assert _open_alerts(factory, world.account_id) == []


def test_pause_by_hand_and_who_may_resume(factory: sessionmaker[Session], tmp_path: Path) -> None:
    addresses = ["ann@example.org", "bob@example.org", "cat@example.org"]
    world = make_world(factory, addresses)
    client = web_client(factory, tmp_path)
    admin = session_creds(user(factory, world.account_id, "admin@shop.example", Role.ADMIN))
    member = session_creds(user(factory, world.account_id, "member@shop.example", Role.MEMBER))
    handler = RelayHandler()
    with relay(handler) as (_, config):
        send_id = start_send(factory, world, addresses)
        url = f"/api/sends/{send_id}"
        assert client.post(f"{url}/pause", headers=member.headers).status_code == 403
        paused = client.post(
            f"{url}/pause", json={"reason": "Wrong price in the subject"}, headers=admin.headers
        )
        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "paused"
        assert paused.json()["pause_reason"] == "Wrong price in the subject"
        run_worker(factory, config)
        assert handler.received == []
        # /start does not let a member resume it either.
        assert client.post(f"{url}/start", headers=member.headers).status_code == 403
        started = client.post(f"{url}/start", headers=api_key(factory, world.account_id))
        assert started.status_code == 200 and started.json()["status"] == "sending"
        run_worker(factory, config)
    assert len(handler.received) == 3
    assert client.get(url, headers=admin.headers).json()["status"] == "done"
    done = client.post(f"{url}/pause", headers=admin.headers)
    assert done.status_code == 409


def _deliver_some(factory: sessionmaker[Session], world: World, count: int) -> int:
    """A send to ``count`` + 1 contacts of which ``count`` are handed to the relay."""
    addresses = [f"reader{i:02d}@example.org" for i in range(count + 1)]
    for address in addresses:
        assert address in world.contact_ids
    with relay() as (_, config):
        send_id = start_send(factory, world, addresses)
        deliver = Deliverer(config)
        try:
            for row in sorted(deliveries(factory, send_id).values(), key=lambda d: d.id)[:count]:
                deliver(factory, {"delivery_id": row.id})
        finally:
            deliver.close()
    return send_id


def test_complaints_pause_the_send(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, [f"reader{i:02d}@example.org" for i in range(11)])
    _set_policy(factory, world.account_id, pause_after_sent=10, pause_complaint_percent=20)
    send_id = _deliver_some(factory, world, 10)
    rows = sorted(deliveries(factory, send_id).values(), key=lambda d: d.id)
    for row in rows[:2]:  # 20%: not above the limit
        receive(factory, complaint(row.id, row.email))
    assert _send(factory, world.account_id, send_id) == ("sending", "")
    receive(factory, complaint(rows[2].id, rows[2].email))
    assert _send(factory, world.account_id, send_id) == (
        "paused",
        "The complaint rate is 30.0% (3 of 10 sent), above this account's limit of 20%.",
    )
    handler = RelayHandler()
    with relay(handler) as (_, config):
        run_worker(factory, config)
    assert handler.received == []


def test_the_default_complaint_limit_is_one_in_a_thousand(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, [f"reader{i:02d}@example.org" for i in range(11)])
    _set_policy(factory, world.account_id, pause_after_sent=10)
    send_id = _deliver_some(factory, world, 10)
    row = min(deliveries(factory, send_id).values(), key=lambda d: d.id)
    receive(factory, complaint(row.id, row.email))
    status, reason = _send(factory, world.account_id, send_id)
    assert status == "paused" and reason.endswith("limit of 0.1%.")


def test_guardrail_thresholds_are_part_of_the_policy(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    world = make_world(factory, [])
    client = web_client(factory, tmp_path)
    headers = api_key(factory, world.account_id)
    policy = client.get("/api/account/policy", headers=headers).json()
    assert (policy["pause_after_sent"], policy["pause_hard_bounce_percent"]) == (100, 5.0)
    assert policy["pause_complaint_percent"] == 0.1
    assert (policy["provider_block_min_bounces"], policy["provider_block_min_percent"]) == (
        10,
        20.0,
    )
    changed = client.put(
        "/api/account/policy", json={"pause_hard_bounce_percent": 2.5}, headers=headers
    )
    assert changed.status_code == 200 and changed.json()["pause_hard_bounce_percent"] == 2.5
    for bad in ({"pause_complaint_percent": 101}, {"provider_block_min_bounces": 0}):
        refused = client.put("/api/account/policy", json=bad, headers=headers)
        assert refused.status_code == 422, bad


# --- sender-side problems at one provider -------------------------------------------------------

GMAIL_MX = "gmail-smtp-in.l.google.com"
LOW_REPUTATION = (
    "550-5.7.1 [192.0.2.10] Our system has detected that this message is likely suspicious due "
    "to the very low reputation of the sending IP address. To best protect our users from spam, "
    "the message has been blocked."
)
DNSBL = "550 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org"
DMARC = (
    "550-5.7.26 Unauthenticated email from shop.example is not accepted due to domain's DMARC "
    "policy."
)


def _sent_world(
    factory: sessionmaker[Session], at_gmail: int, elsewhere: int
) -> tuple[World, int, list[str], list[str]]:
    gmail = [f"friend{i:02d}@gmail.com" for i in range(at_gmail)]
    other = [f"someone{i:02d}@other.example" for i in range(elsewhere)]
    world = make_world(factory, gmail + other)
    with relay() as (_, config):
        send_id = start_send(factory, world, gmail + other)
        run_worker(factory, config)
    return world, send_id, gmail, other


def _refuse(
    factory: sessionmaker[Session], send_id: int, address: str, diagnostic: str, mx: str
) -> None:
    row = deliveries(factory, send_id)[address]
    status = "5.7.26" if "5.7.26" in diagnostic else "5.7.1"
    receive(factory, notice(row.id, address, status=status, diagnostic=diagnostic, remote_mta=mx))


def _suppressed(factory: sessionmaker[Session], account_id: int, addresses: list[str]) -> int:
    with factory() as session:
        return sum(
            suppression.not_sent_reason(session, account_id, a) is not None for a in addresses
        )


def test_many_refusals_at_one_provider_are_the_senders_problem(
    factory: sessionmaker[Session],
) -> None:
    world, send_id, gmail, other = _sent_world(factory, at_gmail=40, elsewhere=10)
    # Two refusals for policy at another provider: those contacts are suppressed as usual.
    for address in other[:2]:
        _refuse(factory, send_id, address, DNSBL, "mx.other.example")
    # Gmail refuses: 7 for the IP's reputation, 2 for DMARC, then the tenth (25% of the 40).
    refusals = [LOW_REPUTATION] * 7 + [DMARC] * 2 + [DNSBL] * 3
    for address, diagnostic in zip(gmail[:9], refusals[:9], strict=True):
        _refuse(factory, send_id, address, diagnostic, GMAIL_MX)
    assert _suppressed(factory, world.account_id, gmail[:9]) == 7  # DMARC: never suppressed
    assert [a.kind for a in _open_alerts(factory, world.account_id)] == ["dmarc_unauthorized"]

    _refuse(factory, send_id, gmail[9], refusals[9], GMAIL_MX)
    assert _suppressed(factory, world.account_id, gmail) == 0
    assert _suppressed(factory, world.account_id, other) == 2
    with factory() as session:
        audits = session.scalars(select(UnbounceAudit)).all()
        assert len(audits) == 7 and all(a.user_id is None for a in audits)
        assert all(a.note.startswith("Automatic: google.com refused") for a in audits)
        lifted = session.scalars(select(Suppression).where(Suppression.lifted_at.is_not(None)))
        assert {s.email for s in lifted} == set(gmail[:7])
        contact = session.scalars(select(Contact).where(Contact.email == gmail[0])).one()
        assert contact.hard_bounce_reason == "" and contact.last_unbounced_at is None
        timeline = session.scalars(
            select(TimelineEntry.summary).where(
                TimelineEntry.contact_id == contact.id, TimelineEntry.kind == "unbounced"
            )
        ).all()
        assert len(timeline) == 1 and "google.com" in timeline[0]
        flagged = session.scalar(
            select(func.count()).select_from(BounceEvent).where(BounceEvent.sender_side.is_(True))
        )
        assert flagged == 10

    # Later refusals there suppress nobody either; the one alert counts them.
    for address in gmail[10:12]:
        _refuse(factory, send_id, address, DNSBL, GMAIL_MX)
    assert _suppressed(factory, world.account_id, gmail) == 0
    states = {a: d.state for a, d in deliveries(factory, send_id).items()}
    assert {states[a] for a in gmail[:12]} == {DeliveryState.BOUNCED_SOFT}
    blocks = [a for a in _open_alerts(factory, world.account_id) if a.kind == "provider_block"]
    assert len(blocks) == 1
    block = blocks[0]
    assert block.data["provider"] == "google.com" and block.data["count"] == 12
    assert "google.com" in block.title
    assert "very low reputation" in block.body and "zen.spamhaus.org" in block.body
    assert "SPF, DKIM and DMARC" in block.body and "Resend to soft-bounced" in block.body
    with factory() as session:
        # They are soft bounces now: a resend to soft-bounced reaches them once fixed.
        assert resend.eligible_count(session, world.account_id, send_id) == 12


def test_a_small_share_at_a_big_provider_stays_the_contacts(
    factory: sessionmaker[Session],
) -> None:
    world, send_id, gmail, _ = _sent_world(factory, at_gmail=60, elsewhere=0)
    for address in gmail[:10]:  # 10 of 60: 16.7%, under the 20% of the policy
        _refuse(factory, send_id, address, LOW_REPUTATION, GMAIL_MX)
    assert _suppressed(factory, world.account_id, gmail) == 10
    assert _open_alerts(factory, world.account_id) == []
    _set_policy(factory, world.account_id, provider_block_min_percent=15)
    _refuse(factory, send_id, gmail[10], LOW_REPUTATION, GMAIL_MX)  # 11 of 60: 18.3%
    assert _suppressed(factory, world.account_id, gmail) == 0
    assert [a.kind for a in _open_alerts(factory, world.account_id)] == ["provider_block"]


@pytest.mark.parametrize(
    ("remote_mta", "email", "provider"),
    [
        ("gmail-smtp-in.l.google.com", "ann@gmail.com", "google.com"),
        ("alt4.gmail-smtp-in.l.google.com.", "ann@company.example", "google.com"),
        ("mta7.am0.yahoodns.net [67.195.204.72]", "bob@yahoo.com", "yahoodns.net"),
        ("mx1.mail.yahoo.co.jp", "cat@yahoo.co.jp", "yahoo.co.jp"),
        ("company-com.mail.protection.outlook.com:25", "dan@company.com", "outlook.com"),
        ("[192.0.2.7]", "eve@Example.ORG", "example.org"),
        ("2001:db8::25", "fay@example.net", "example.net"),
        ("", "gus@example.com", "example.com"),
    ],
)
def test_provider_of_a_refusal(remote_mta: str, email: str, provider: str) -> None:
    assert provider_of(remote_mta, email) == provider
    assert registrable("a.b.example.co.uk") == "example.co.uk"
