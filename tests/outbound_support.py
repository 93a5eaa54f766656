"""Test support for sending: a real SMTP server on 127.0.0.1 standing in for the relay, a
self-signed certificate for TLS, and a small account with contacts, an email and a send."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SMTPSession
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, contacts, sending
from bounceback.service.receivers.smtp import ThreadedController
from bounceback.service.settings import Settings, load

SECRET = "test-secret-for-verp-tokens"
BOUNCE_DOMAIN = "bounces.example"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "bounce_domains": (BOUNCE_DOMAIN,),
        "public_url": "https://bb.example",
        "worker_poll_seconds": 0.05,
    }
    values.update(overrides)
    return load({}, **values)


@dataclass
class Transaction:
    """One message as the relay saw it."""

    mail_from: str
    mail_options: list[str]
    rcpt_to: list[str]
    rcpt_options: list[list[str]]
    data: bytes


@dataclass
class RelayHandler:
    """Answers like a relay: per-recipient replies chosen by the local part's beginning.

    ``rcpt`` and ``data`` map a local-part prefix to the reply at that stage (``{addr}`` is
    replaced by the address); every other recipient is accepted.
    """

    dsn: bool = True
    rcpt: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    received: list[Transaction] = field(default_factory=list)
    mail_options: list[str] = field(default_factory=list)
    rcpt_options: list[list[str]] = field(default_factory=list)
    sessions: int = 0

    def _rule(self, rules: dict[str, str], address: str) -> str | None:
        local = address.rpartition("@")[0].lower()
        for prefix, reply in rules.items():
            if local.startswith(prefix):
                return reply.format(addr=address)
        return None

    async def handle_EHLO(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        if self.dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        envelope.mail_from = address
        self.mail_options = list(mail_options)
        self.rcpt_options = []
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._rule(self.rcpt, address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        self.rcpt_options.append(list(rcpt_options))
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            reply = self._rule(self.data, address)
            if reply:
                return reply
        self.received.append(
            Transaction(
                envelope.mail_from or "",
                self.mail_options,
                list(envelope.rcpt_tos),
                self.rcpt_options,
                envelope.original_content or b"",
            )
        )
        return "250 2.0.0 Ok: queued as 4F00D"


class _DsnSMTP(SMTP):
    """aiosmtpd refuses the RFC 3461 parameters it does not implement; a DSN relay takes them."""

    def __init__(self, handler: Any, *, dsn: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._dsn = dsn

    def _getparams(self, params: Any) -> Any:
        result = super()._getparams(params)
        if result is not None and self._dsn:
            for name in ("RET", "ENVID", "NOTIFY", "ORCPT"):
                result.pop(name, None)
        return result


class FakeRelay(ThreadedController):
    """The relay on 127.0.0.1, any free port; ``url`` is what BOUNCEBACK_RELAY_URL would be."""

    def __init__(
        self,
        handler: RelayHandler,
        *,
        scheme: str = "smtp",
        login: tuple[str, str] | None = None,
        certificate: tuple[Path, Path] | None = None,
        port: int = 0,
    ) -> None:
        self.scheme = scheme
        self.login = login
        kwargs: dict[str, Any] = {}
        server_context = None
        if certificate is not None:
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(*certificate)
        if scheme == "smtp+starttls":
            kwargs.update(tls_context=server_context, require_starttls=True)
        if login is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_require_tls=scheme == "smtp+starttls"
            )
        super().__init__(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_context if scheme == "smtps" else None,
            **kwargs,
        )
        self.relay_handler = handler

    def factory(self) -> SMTP:
        return _DsnSMTP(self.handler, dsn=self.relay_handler.dsn, **self.SMTP_kwargs)

    def _authenticate(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.login is not None
            and (data.login.decode(), data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)

    def url(self, query: str = "") -> str:
        credentials = f"{self.login[0]}:{self.login[1]}@" if self.login else ""
        return f"{self.scheme}://{credentials}127.0.0.1:{self.port}" + (
            f"?{query}" if query else ""
        )


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost made with the openssl command."""
    cert, key = directory / "relay.pem", directory / "relay.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class World:
    """An account with contacts and an email, ready to send."""

    account_id: int
    email_id: int
    contact_ids: dict[str, int]  # address -> id


def make_world(factory: sessionmaker[Session], addresses: list[str], name: str = "Shop") -> World:
    with transaction(factory) as session:
        account = accounts.create_account(session, name)
        ids = {
            address: contacts.create_contact(session, account.id, address, name="Ann Example").id
            for address in addresses
        }
        email = sending.create_email(
            session,
            account.id,
            from_address="news@shop.example",
            from_name="Shop News",
            subject="Our spring sale",
            html="<p>Spring sale: <b>everything</b> half price.</p>",
        )
        return World(account.id, email.id, ids)


def start_send(factory: sessionmaker[Session], world: World, addresses: list[str]) -> int:
    with transaction(factory) as session:
        send = sending.create_send(
            session,
            world.account_id,
            world.email_id,
            contact_ids=[world.contact_ids[a] for a in addresses],
        )
        sending.start_send(session, world.account_id, send.id)
        return send.id


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)
