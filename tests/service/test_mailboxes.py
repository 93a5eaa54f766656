"""Connecting a mailbox, on SQLite and PostgreSQL, checked against real servers: a private
Dovecot for IMAP (``imap_support``) and an SMTP server on loopback that wants a login. Passwords
are encrypted at rest; a failed check names the side and the step and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Base,
    DirectMessage,
    Mailbox,
    MailboxSecurity,
    TimelineEntry,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, mailboxes
from bounceback.service.domain.errors import Invalid
from bounceback.service.domain.secrets_box import CredentialsUnreadable, SecretsBox
from bounceback.service.settings import Settings, SettingsError
from imap_support import Dovecot, running_dovecot
from mta_support import free_port

from api_support import key_creds, make_client, session_creds
from outbound_support import FakeRelay
from outreach_support import (
    IMAP_LOGIN,
    SMTP_LOGIN,
    page,
    sales_team,
    submission_server,
    submit,
)

CARL = "carl@client.example"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot({IMAP_LOGIN[0]: IMAP_LOGIN[1]}) as server:
        # Seen here: when the first login a fresh Dovecot answers is a wrong password, it then
        # refuses the right one too. A good login first, as any user's server has seen.
        with server.imap(IMAP_LOGIN[0]):
            pass
        yield server


@pytest.fixture
def smtp() -> Iterator[FakeRelay]:
    with submission_server() as server:
        yield server


def _form(dovecot: Dovecot, smtp: FakeRelay, **changes: str) -> dict[str, object]:
    return {
        "address": "ann@inbox.test",
        "imap": {
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "security": "none",
            "login": IMAP_LOGIN[0],
            "password": changes.get("imap_password", IMAP_LOGIN[1]),
        },
        "smtp": {
            "host": "127.0.0.1",
            "port": int(changes.get("smtp_port", smtp.port)),
            "security": "none",
            "login": SMTP_LOGIN[0],
            "password": changes.get("smtp_password", SMTP_LOGIN[1]),
        },
        "bounce_folder": "",
    }


def test_the_secrets_box_encrypts_with_a_derived_or_given_key() -> None:
    derived = SecretsBox(Settings(secret_key="s1"))
    token = derived.encrypt("hunter2-password")
    assert "hunter2" not in token and derived.decrypt(token) == "hunter2-password"
    assert SecretsBox(Settings(secret_key="s1")).decrypt(token) == "hunter2-password"
    with pytest.raises(CredentialsUnreadable):
        SecretsBox(Settings(secret_key="another secret")).decrypt(token)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = SecretsBox(Settings(secret_key="s1", credentials_key=old)).encrypt("pw")
    rotated = SecretsBox(Settings(secret_key="s1", credentials_key=f"{new},{old}"))
    assert rotated.decrypt(before) == "pw"  # old passwords still read after a rotation
    assert SecretsBox(Settings(credentials_key=new)).decrypt(rotated.encrypt("pw2")) == "pw2"
    with pytest.raises(SettingsError, match="not a Fernet key"):
        SecretsBox(Settings(credentials_key="short"))
    with pytest.raises(SettingsError):
        SecretsBox(Settings())  # no key and no secret to derive one from


def test_connecting_checks_both_servers_and_stores_passwords_encrypted(
    factory: sessionmaker[Session], tmp_path: Path, dovecot: Dovecot, smtp: FakeRelay
) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, smtp.port, [CARL])
    with transaction(factory) as session:
        session.execute(sa.delete(Mailbox))
    headers = session_creds(team.user_id).headers
    answer = client.post("/api/me/mailbox", json=_form(dovecot, smtp), headers=headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["imap"]["password_set"] and body["smtp"]["password_set"]
    assert IMAP_LOGIN[1] not in answer.text and SMTP_LOGIN[1] not in answer.text
    shown = client.get("/api/me/mailbox", headers=headers).json()
    assert shown["address"] == "ann@inbox.test" and shown["last_poll_at"] is None
    assert shown["imap"]["port"] == dovecot.imap_port
    with factory() as session:
        dump = "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(sa.select(table)).all()
        )
        row = session.scalars(sa.select(Mailbox)).one()
        assert mailboxes.imap_endpoint(settings, row).password == IMAP_LOGIN[1]
        assert mailboxes.smtp_server(settings, row).password == SMTP_LOGIN[1]
    assert IMAP_LOGIN[1] not in dump and SMTP_LOGIN[1] not in dump
    # Changing the address keeps the stored passwords (same servers and logins).
    form = _form(dovecot, smtp, imap_password="", smtp_password="")
    form["address"] = "ann.seller@inbox.test"
    changed = client.post("/api/me/mailbox", json=form, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["address"] == "ann.seller@inbox.test"


def test_a_failed_check_names_the_side_and_stores_nothing(
    factory: sessionmaker[Session], tmp_path: Path, dovecot: Dovecot, smtp: FakeRelay
) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, smtp.port, [CARL])
    with transaction(factory) as session:
        session.execute(sa.delete(Mailbox))
    headers = session_creds(team.user_id).headers
    cases = [
        (_form(dovecot, smtp, imap_password="wrong"), ["IMAP:", "logging in", "AUTHENTICATION"]),
        (_form(dovecot, smtp, smtp_password="wrong"), ["SMTP:", "logging in", "535"]),
        (_form(dovecot, smtp, smtp_port=str(free_port())), ["SMTP:", "connecting", "refused"]),
    ]
    closed = _form(dovecot, smtp)
    closed["imap"]["port"] = smtp.port  # type: ignore[index]  # an SMTP server is no IMAP server
    cases.append((closed, ["IMAP:"]))
    for form, words in cases:
        answer = client.post("/api/me/mailbox", json=form, headers=headers)
        assert answer.status_code == 422, answer.text
        message = answer.json()["error"]["message"]
        assert all(word in message for word in words), message
        assert "wrong" not in message
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Mailbox)) == 0


def test_a_stored_password_goes_only_to_its_own_server(
    factory: sessionmaker[Session], tmp_path: Path, dovecot: Dovecot, smtp: FakeRelay
) -> None:
    _, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, smtp.port, [CARL])
    imap = mailboxes.Endpoint(
        "127.0.0.1", dovecot.imap_port, MailboxSecurity.NONE, IMAP_LOGIN[0], IMAP_LOGIN[1]
    )
    smtp_side = mailboxes.Endpoint(
        "127.0.0.1", smtp.port, MailboxSecurity.NONE, SMTP_LOGIN[0], SMTP_LOGIN[1]
    )
    form = mailboxes.MailboxForm(imap, smtp_side)
    with transaction(factory) as session:
        mailboxes.connect(session, team.account_id, team.user_id, form, settings)
    untyped = mailboxes.MailboxForm(replace(imap, password=""), replace(smtp_side, password=""))
    with transaction(factory) as session:
        kept = mailboxes.connect(session, team.account_id, team.user_id, untyped, settings)
        assert mailboxes.imap_endpoint(settings, kept).password == IMAP_LOGIN[1]
        assert mailboxes.smtp_server(settings, kept).password == SMTP_LOGIN[1]
    elsewhere = mailboxes.Endpoint("imap.elsewhere.example", 993, MailboxSecurity.TLS, "ann", "")
    with transaction(factory) as session, pytest.raises(Invalid, match="type the password again"):
        mailboxes.connect(
            session,
            team.account_id,
            team.user_id,
            mailboxes.MailboxForm(elsewhere, replace(smtp_side, password="")),
            settings,
        )


def test_a_mailbox_belongs_to_a_user_not_to_an_api_key(
    factory: sessionmaker[Session], tmp_path: Path, dovecot: Dovecot, smtp: FakeRelay
) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, smtp.port, [CARL])
    with transaction(factory) as session:
        _, key = accounts.create_api_key(session, team.account_id, "crm")
    headers = key_creds(key).headers
    for method in ("GET", "POST", "DELETE"):
        kwargs = {"json": _form(dovecot, smtp)} if method == "POST" else {}
        answer = client.request(method, "/api/me/mailbox", headers=headers, **kwargs)
        assert answer.status_code == 403, f"{method}: {answer.text}"
        assert "belongs to a user" in answer.json()["error"]["message"]
    assert (
        client.get("/api/me/mailbox", headers=session_creds(team.admin_id).headers).status_code
        == 404
    )


def test_disconnecting_keeps_the_history(
    factory: sessionmaker[Session], tmp_path: Path, smtp: FakeRelay
) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, smtp.port, [CARL])
    headers = session_creds(team.user_id).headers
    sent = client.post(
        f"/api/contacts/{team.contact_ids[CARL]}/emails",
        json={"subject": "Hello", "body": "Hi"},
        headers=headers,
    )
    assert sent.status_code == 201, sent.text
    assert client.delete("/api/me/mailbox", headers=headers).status_code == 204
    assert client.get("/api/me/mailbox", headers=headers).status_code == 404
    assert client.delete("/api/me/mailbox", headers=headers).status_code == 404
    with factory() as session:
        row = session.scalars(sa.select(DirectMessage)).one()
        assert row.mailbox_id is None and row.status == "sent"
        assert session.scalar(sa.select(sa.func.count()).select_from(TimelineEntry)) == 1
    again = client.post(
        f"/api/contacts/{team.contact_ids[CARL]}/emails",
        json={"subject": "Hello", "body": "Hi"},
        headers=headers,
    )
    assert again.status_code == 409


def test_the_mailbox_page_connects_and_shows_health(
    factory: sessionmaker[Session], tmp_path: Path, dovecot: Dovecot, smtp: FakeRelay
) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, smtp.port, [CARL])
    with transaction(factory) as session:
        session.execute(sa.delete(Mailbox))
    empty = page(client, team.user_id, "/mailbox")
    assert empty.status_code == 200 and "Connect your mailbox" in empty.text
    fields = {
        "address": "ann@inbox.test",
        "imap_host": "127.0.0.1",
        "imap_port": str(dovecot.imap_port),
        "imap_security": "none",
        "imap_login": IMAP_LOGIN[0],
        "imap_password": "not her password",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.port),
        "smtp_security": "none",
        "smtp_login": SMTP_LOGIN[0],
        "smtp_password": SMTP_LOGIN[1],
    }
    refused = submit(client, team.user_id, "/mailbox", fields)
    assert refused.status_code == 422
    assert "IMAP: logging in" in refused.text
    assert 'value="127.0.0.1"' in refused.text and SMTP_LOGIN[1] not in refused.text
    done = submit(client, team.user_id, "/mailbox", {**fields, "imap_password": IMAP_LOGIN[1]})
    assert done.status_code == 303, done.text
    shown = page(client, team.user_id, "/mailbox")
    assert "Connected: ann@inbox.test" in shown.text and "not yet" in shown.text
    with transaction(factory) as session:  # what the poller writes
        row = session.scalars(sa.select(Mailbox)).one()
        row.last_error = "IMAP: connecting at 127.0.0.1 failed: timed out"
    assert (
        "connecting at 127.0.0.1 failed: timed out" in page(client, team.user_id, "/mailbox").text
    )
    assert submit(client, team.user_id, "/mailbox/disconnect", {}).status_code == 303
    assert "Connect your mailbox" in page(client, team.user_id, "/mailbox").text
