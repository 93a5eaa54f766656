"""One-to-one email through the user's own SMTP server (a real one on loopback that wants a
login), on SQLite and PostgreSQL: what the server receives, the timeline, refusals, and "send
again later"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import DirectMessage, Job, Mailbox, TimelineEntry
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, direct
from bounceback.service.domain.errors import Conflict, NotFound

from api_support import key_creds, make_client, session_creds
from outbound_support import RelayHandler
from outreach_support import (
    SMTP_LOGIN,
    add_mailbox,
    make_due,
    page,
    parsed,
    run_jobs,
    sales_team,
    submission_server,
    submit,
)

CARL = "carl@client.example"


def _timeline(factory: sessionmaker[Session], contact_id: int) -> list[TimelineEntry]:
    with factory() as session:
        return list(
            session.scalars(
                sa.select(TimelineEntry)
                .where(TimelineEntry.contact_id == contact_id)
                .order_by(TimelineEntry.id)
            )
        )


def test_an_email_leaves_from_the_users_own_server_with_our_message_id(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        carl = team.contact_ids[CARL]
        answer = client.post(
            f"/api/contacts/{carl}/emails",
            json={"subject": "Our call on Tuesday", "body": "Hi Carl,\n\nTuesday at 10?\n\nAnn"},
            headers=session_creds(team.user_id).headers,
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["status"] == "sent"
        received = server.relay_handler.received
    assert len(received) == 1
    seen = received[0]
    # The user's own address is the envelope sender: their bounces land in their INBOX.
    assert seen.mail_from == "ann@inbox.test"
    assert seen.rcpt_to == [CARL]
    assert not any(o.upper().startswith(("RET=", "ENVID=")) for o in seen.mail_options)
    assert seen.rcpt_options == [[]]  # no DSN asked: success notices would fill their inbox
    message = parsed(seen)
    assert message["Message-ID"] == body["message_id"]
    assert body["message_id"].endswith("@inbox.test>")
    assert message["From"] == "Ann Seller <ann@inbox.test>"
    assert message["To"] == f"Carl Client <{CARL}>"
    assert message["Subject"] == "Our call on Tuesday"
    assert message.get_content().strip().startswith("Hi Carl,")
    with factory() as session:
        row = session.get(DirectMessage, body["id"])
        assert row is not None and row.status == "sent" and row.message_id == body["message_id"]
        assert row.mailbox_id == team.mailbox_id
    entries = _timeline(factory, carl)
    assert [e.kind for e in entries] == ["email_sent"]
    assert body["message_id"] in entries[0].summary
    assert entries[0].data["message_id"] == body["message_id"]
    listed = client.get(f"/api/contacts/{carl}/emails", headers=session_creds(team.user_id).headers)
    assert [m["id"] for m in listed.json()["items"]] == [body["id"]]


def test_with_an_api_key_the_request_names_the_sending_user(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        other = sales_team(factory, settings, server.port, ["x@other.example"], name="Other")
        with transaction(factory) as session:
            _, key = accounts.create_api_key(session, team.account_id, "crm")
        url = f"/api/contacts/{team.contact_ids[CARL]}/emails"
        email = {"subject": "Hello", "body": "Hi"}
        headers = key_creds(key).headers
        missing = client.post(url, json=email, headers=headers)
        assert missing.status_code == 422 and "user_id" in missing.json()["error"]["message"]
        foreign = client.post(url, json={**email, "user_id": other.user_id}, headers=headers)
        assert foreign.status_code == 404
        sent = client.post(url, json={**email, "user_id": team.user_id}, headers=headers)
        assert sent.status_code == 201, sent.text
        as_other = client.post(
            url,
            json={**email, "user_id": team.admin_id},
            headers=session_creds(team.user_id).headers,
        )
        assert as_other.status_code == 403  # a user sends only from their own mailbox
        assert len(server.relay_handler.received) == 1


def test_no_mailbox_no_email(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        answer = client.post(
            f"/api/contacts/{team.contact_ids[CARL]}/emails",
            json={"subject": "Hello", "body": "Hi"},
            headers=session_creds(team.admin_id).headers,  # the admin connected no mailbox
        )
        assert answer.status_code == 409
        assert "no mailbox" in answer.json()["error"]["message"]
        assert server.relay_handler.received == []
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(DirectMessage)) == 0


def test_a_refused_login_is_a_failure_kept_for_later_not_a_bounce(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        with transaction(factory) as session:  # the user changed their password elsewhere
            session.execute(sa.delete(DirectMessage))
            session.execute(sa.delete(Mailbox))
            add_mailbox(
                session, settings, team.account_id, team.user_id,
                smtp_port=server.port, smtp_password="outdated",
            )  # fmt: skip
        answer = client.post(
            f"/api/contacts/{team.contact_ids[CARL]}/emails",
            json={"subject": "Hello", "body": "Hi"},
            headers=session_creds(team.user_id).headers,
        )
        assert answer.status_code == 409, answer.text
        message = answer.json()["error"]["message"]
        assert "logging in" in message and "535" in message, message
        assert server.relay_handler.received == []
    with factory() as session:
        row = session.scalars(sa.select(DirectMessage)).one()
        assert row.status == "failed" and "535" in row.bounce_response
    assert [e.kind for e in _timeline(factory, team.contact_ids[CARL])] == ["email_failed"]


def test_a_refused_recipient_is_a_bounce_and_can_be_sent_again_later(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    handler = RelayHandler(dsn=False, rcpt={"carl": "550 5.1.1 <{addr}>: Recipient unknown"})
    with submission_server(handler) as server:
        team = sales_team(factory, settings, server.port, [CARL])
        headers = session_creds(team.user_id).headers
        carl = team.contact_ids[CARL]
        first = client.post(
            f"/api/contacts/{carl}/emails",
            json={"subject": "Proposal", "body": "Here it is."},
            headers=headers,
        ).json()
        assert first["status"] == "bounced"
        assert first["bounce_category"] == "unknown_user"
        assert "550 5.1.1" in first["bounce_response"]

        now = datetime.now(UTC)
        refused = client.post(
            f"/api/direct/{first['id']}/retry",
            json={"at": (now - timedelta(hours=1)).isoformat()},
            headers=headers,
        )
        assert refused.status_code == 422  # in the past
        at = now + timedelta(hours=4)
        scheduled = client.post(
            f"/api/direct/{first['id']}/retry", json={"at": at.isoformat()}, headers=headers
        )
        assert scheduled.status_code == 200, scheduled.text
        assert datetime.fromisoformat(scheduled.json()["retry_at"]) == at
        with factory() as session:
            job = session.scalars(sa.select(Job).where(Job.kind == direct.RETRY)).one()
            assert abs((job.run_at.replace(tzinfo=UTC) - at).total_seconds()) < 1

        run_jobs(factory, settings)
        assert handler.received == []  # not due yet
        handler.rcpt.clear()  # the recipient's server is fixed meanwhile
        make_due(factory)
        run_jobs(factory, settings)
        assert len(handler.received) == 1
        again = parsed(handler.received[0])
    assert again["Subject"] == "Proposal"
    assert again.get_content().strip() == "Here it is."
    with factory() as session:
        rows = session.scalars(sa.select(DirectMessage).order_by(DirectMessage.id)).all()
        assert [r.status for r in rows] == ["retried", "sent"]
        assert rows[1].message_id == again["Message-ID"] != rows[0].message_id
    kinds = [e.kind for e in _timeline(factory, carl)]
    assert kinds == ["email_bounced", "email_retry_scheduled", "email_sent"]


def test_only_bounced_or_failed_email_is_sent_again(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        row = direct.send_now(
            factory,
            settings,
            team.account_id,
            team.user_id,
            team.contact_ids[CARL],
            subject="Hi",
            body="Hi",
        )
    assert row.status == "sent"
    later = datetime.now(UTC) + timedelta(hours=1)
    with transaction(factory) as session, pytest.raises(Conflict):
        direct.retry_later(session, team.account_id, row.id, later)
    with transaction(factory) as session, pytest.raises(NotFound):
        direct.retry_later(session, team.account_id + 1, row.id, later)


def test_a_rescheduled_retry_sends_once_at_the_latest_time(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _, settings = make_client(factory, tmp_path)
    handler = RelayHandler(dsn=False, rcpt={"carl": "550 5.1.1 Recipient unknown"})
    with submission_server(handler) as server:
        team = sales_team(factory, settings, server.port, [CARL])
        row = direct.send_now(
            factory,
            settings,
            team.account_id,
            team.user_id,
            team.contact_ids[CARL],
            subject="Hi",
            body="Hi",
        )
        assert row.status == "bounced"
        now = datetime.now(UTC)
        for hours in (1, 2):
            with transaction(factory) as session:
                direct.retry_later(session, team.account_id, row.id, now + timedelta(hours=hours))
        handler.rcpt.clear()
        make_due(factory)
        run_jobs(factory, settings)
        assert len(handler.received) == 1
        assert SMTP_LOGIN[0] == handler.received[0].mail_from


def test_writing_from_the_contact_page(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, settings = make_client(factory, tmp_path)
    handler = RelayHandler(dsn=False, rcpt={"carl": "550 5.1.1 <{addr}>: Recipient unknown"})
    with submission_server(handler) as server:
        team = sales_team(factory, settings, server.port, [CARL, "dora@client.example"])
        carl = team.contact_ids[CARL]
        contact_page = page(client, team.user_id, f"/contacts/{carl}")
        assert f'href="/contacts/{carl}/email"' in contact_page.text
        assert "Connect your mailbox" in page(client, team.admin_id, f"/contacts/{carl}/email").text
        empty = submit(
            client, team.user_id, f"/contacts/{carl}/email", {"subject": "Hi", "body": ""}
        )
        assert empty.status_code == 422 and "needs a body" in empty.text
        sent = submit(
            client, team.user_id, f"/contacts/{carl}/email", {"subject": "Hi Carl", "body": "Hi"}
        )
        assert sent.status_code == 303
        shown = page(client, team.user_id, f"/contacts/{carl}/email")
        assert "bounced</span> Unknown user" in shown.text, shown.text
        with factory() as session:
            row = session.scalars(sa.select(DirectMessage)).one()
        assert escape(row.message_id) in shown.text and "Send again later" in shown.text
        later = submit(client, team.user_id, f"/direct/{row.id}/retry", {"hours": "4"})
        assert later.status_code == 303
        assert "Sending again" in page(client, team.user_id, f"/contacts/{carl}/email").text
        with factory() as session:
            retry_at = session.get(DirectMessage, row.id).retry_at  # type: ignore[union-attr]
        assert retry_at is not None
        timeline = page(client, team.user_id, f"/contacts/{carl}").text
        assert "Hi Carl" in timeline and escape(row.message_id) in timeline
        other = sales_team(factory, settings, server.port, ["x@other.example"], name="Other")
        foreign = page(client, other.user_id, f"/contacts/{carl}/email")
        assert foreign.status_code == 404 and CARL not in foreign.text
        assert (
            submit(client, other.user_id, f"/direct/{row.id}/retry", {"hours": "4"}).status_code
            == 404
        )
