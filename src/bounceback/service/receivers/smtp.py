"""The SMTP receiver for the bounce domains (aiosmtpd).

It accepts mail only for addresses on ``BOUNCEBACK_BOUNCE_DOMAINS``, refuses messages above
``BOUNCEBACK_MAX_MESSAGE_BYTES`` (552), and stores each message with ``intake.store_raw`` in a
committed transaction *before* it answers 250: once we said 250 the sender forgets the message,
so a 250 must mean it is on disk. When storing fails it answers 451 and the sender retries later.
Parsing, matching and policy happen afterwards, in the worker.

The bytes are stored exactly as received (no Received: header added), so the same NDR sent
twice is one stored message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.session import transaction
from bounceback.service.domain import intake
from bounceback.service.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "smtp"
MAX_RECIPIENTS = 100  # a bounce has one; a few more is an MTA batching, many is abuse
TIMEOUT = 300.0  # seconds of silence before the connection is closed (RFC 5321 4.5.3.2)


class BounceHandler:
    """aiosmtpd hooks: RCPT (which addresses are ours) and DATA (store, then answer)."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self.domains = frozenset(d.strip().lower() for d in settings.bounce_domains)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if domain not in self.domains:
            return f"550 5.1.1 <{address}>: not a bounce address here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.settings.max_message_bytes:
            return "552 5.3.4 Message too big for this system"
        loop = asyncio.get_running_loop()
        try:  # the database is blocking: keep the event loop free for other connections
            raw_id, new = await loop.run_in_executor(None, self._store, envelope, raw)
        except Exception:
            log.exception("could not store a message from %s", session.peer)
            return "451 4.3.0 Could not store the message; please try again later"
        log.info("stored bounce %s from %s (%s)", raw_id, session.peer, "new" if new else "dupe")
        return f"250 2.0.0 OK: stored as {raw_id}"

    def _store(self, envelope: Envelope, raw: bytes) -> tuple[int, bool]:
        # One message, one row: the first recipient names the delivery (a bounce has one
        # recipient; an MTA batching several would send the same bytes for each anyway).
        with transaction(self.factory) as session:
            row, new = intake.store_raw(
                session,
                raw,
                source=SOURCE,
                envelope_from=_null_is_empty(envelope.mail_from),
                envelope_to=envelope.rcpt_tos[0] if envelope.rcpt_tos else "",
            )
            return row.id, new


def _null_is_empty(address: str | None) -> str:
    """aiosmtpd gives the null reverse path (``MAIL FROM:<>``, every bounce) as "<>"."""
    return "" if not address or address == "<>" else address


class ThreadedController(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0 (any free port) for tests."""

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)  # an asyncio.Server once listening
        if sockets:
            self.port = sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class BounceReceiver:
    """The receiver running in a thread: ``start()``, then ``stop()``. ``port`` is the port
    actually listened on (useful with port 0)."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.handler = BounceHandler(settings, factory)
        options: dict[str, Any] = {
            "data_size_limit": settings.max_message_bytes,
            "timeout": TIMEOUT,
            "enable_SMTPUTF8": True,
            "ident": "bounceback",
        }
        self._controller = ThreadedController(
            self.handler,
            hostname=host or settings.smtp_host,
            port=settings.smtp_port if port is None else port,
            **options,
        )

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
