"""The SMTP receiver for the bounce domains (aiosmtpd).

It accepts mail only for addresses on ``BOUNCEBACK_BOUNCE_DOMAINS``, refuses messages above
``BOUNCEBACK_MAX_MESSAGE_BYTES`` (552), and stores each message with ``intake.store_raw`` in a
committed transaction *before* it answers 250: once we said 250 the sender forgets the message,
so a 250 must mean it is on disk. When storing fails it answers 451 and the sender retries later.
Parsing, matching and policy happen afterwards, in the worker.

The bytes are stored exactly as received (no Received: header added), so the same NDR sent
twice is one stored message.

Group commit: a commit waits for the disk (an fsync on PostgreSQL), so one transaction per
message caps a receiver at a few hundred messages a second however many connections deliver to
it. Messages that arrive while a commit is in progress are stored together in the next one
(``GroupWriter``), and each connection gets its 250 once the transaction holding its message has
committed. At low load a batch is one message and nothing waits; under a burst the batches grow
by themselves. A batch that fails is retried one message at a time, so a bad message costs only
its own 451.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
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
SWITCH_INTERVAL = 0.0005  # seconds; see BounceReceiver.start
MAX_BATCH = 200  # messages in one transaction; bounds a batch's memory and its retry cost
LINGER = 0.002  # seconds a batch waits for more messages after its first


@dataclass(frozen=True)
class Incoming:
    """One received message waiting for its transaction."""

    message: intake.Arriving
    stored: Future[tuple[int, bool]] = field(default_factory=Future, compare=False)


class GroupWriter:
    """One thread storing received messages, as many per transaction as have queued up."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._queue: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bounce-writer", daemon=True)
        self.batches = 0  # transactions committed, and the messages they held (for the log)
        self.messages = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Incoming) -> Future[tuple[int, bool]]:
        """Queue a message; the future gives ``(raw_id, new)`` once it is committed."""
        self._queue.put(item)
        return item.stored

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            batch, closing = self._next_batch()
            if batch:
                self._store(batch)
            if closing:
                return

    def _next_batch(self) -> tuple[list[Incoming], bool]:
        """Block for one message, then take what else arrives within ``LINGER`` (a transaction
        costs about as much for one message as for a dozen, so a burst is stored in fewer)."""
        batch: list[Incoming] = []
        item = self._queue.get()
        linger_until = time.monotonic() + LINGER
        while item is not None:
            # A connection that closed while its message waited has cancelled the future; the
            # sender had no 250 and will send again. From here on a future cannot be cancelled.
            if item.stored.set_running_or_notify_cancel():
                batch.append(item)
            if len(batch) == MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get(timeout=max(0.0, linger_until - time.monotonic()))
            except queue.Empty:
                return batch, False
        return batch, True

    def _store(self, batch: list[Incoming]) -> None:
        try:
            results = self._store_together(batch)
        except Exception as error:
            if len(batch) == 1:
                batch[0].stored.set_exception(error)
                return
            log.warning("storing %d messages together failed; one at a time", len(batch))
            for item in batch:
                self._store([item])
            return
        self.batches += 1
        self.messages += len(batch)
        if len(batch) > 1:
            log.debug("stored %d messages in one transaction", len(batch))
        for item, result in zip(batch, results, strict=True):
            item.stored.set_result(result)

    def _store_together(self, batch: list[Incoming]) -> list[tuple[int, bool]]:
        with transaction(self.factory) as session:
            if len(batch) == 1:  # alone (or retried alone): the path that settles every race
                message = batch[0].message
                row, new = intake.store_raw(
                    session,
                    message.raw,
                    source=message.source,
                    envelope_from=message.envelope_from,
                    envelope_to=message.envelope_to,
                )
                return [(row.id, new)]
            return intake.store_many(session, [item.message for item in batch])


class BounceHandler:
    """aiosmtpd hooks: RCPT (which addresses are ours) and DATA (store, then answer)."""

    def __init__(self, settings: Settings, writer: GroupWriter) -> None:
        self.settings = settings
        self.writer = writer
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
        message = intake.Arriving(
            raw,
            SOURCE,
            _null_is_empty(envelope.mail_from),
            # One message, one row: the first recipient names the delivery (a bounce has one
            # recipient; an MTA batching several would send the same bytes for each anyway).
            envelope.rcpt_tos[0] if envelope.rcpt_tos else "",
        )
        try:  # the writer thread commits it; the event loop serves other connections meanwhile
            raw_id, new = await asyncio.wrap_future(self.writer.submit(Incoming(message)))
        except Exception:
            log.exception("could not store a message from %s", session.peer)
            return "451 4.3.0 Could not store the message; please try again later"
        log.info("stored bounce %s from %s (%s)", raw_id, session.peer, "new" if new else "dupe")
        return f"250 2.0.0 OK: stored as {raw_id}"


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
        self.writer = GroupWriter(factory)
        self.handler = BounceHandler(settings, self.writer)
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
        # The event loop thread makes a system call per SMTP reply and then waits for the GIL,
        # which the writer thread (busy in the database driver) hands over only every
        # "switch interval" (5 ms by default): that capped a receiver at ~200 messages a second.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.writer.start()
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        self.writer.close()
        log.info(
            "bounce receiver stopped: %d messages stored in %d transactions",
            self.writer.messages,
            self.writer.batches,
        )
