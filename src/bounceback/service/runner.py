"""``bounceback serve``: the HTTP API and UI, the SMTP bounce receiver and the workers, in one
process or split by role across many (``BOUNCEBACK_ROLES``) sharing one PostgreSQL."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import User
from bounceback.service.db.session import make_engine, make_sessionmaker, migrate
from bounceback.service.settings import Settings, with_secret

log = logging.getLogger("bounceback")


def prepare(settings: Settings) -> tuple[Settings, sessionmaker[Session]]:
    """Settings with a secret, the schema migrated, and a sessionmaker on the database."""
    settings = with_secret(settings)
    migrate(settings.database)
    return settings, make_sessionmaker(make_engine(settings.database))


def greet(settings: Settings, factory: sessionmaker[Session], out: TextIO) -> None:
    """Tell the user where everything is, and how to create the first administrator."""
    with factory() as session:
        users = session.scalar(select(func.count()).select_from(User)) or 0
    where = settings.database if settings.database_url else f"SQLite in {settings.data_dir}/"
    lines = [f"bounceback is running: roles {', '.join(settings.roles)}; data: {where}"]
    if "api" in settings.roles:
        lines.append(
            f"  web UI and API: {settings.base_url}/  (OpenAPI: {settings.base_url}"
            "/api/openapi.json)"
        )
    if "smtp" in settings.roles:
        lines.append(
            f"  bounce receiver: SMTP {settings.smtp_host}:{settings.smtp_port} for "
            f"{', '.join(settings.bounce_domains)}"
        )
    lines.append(
        "  sending: "
        + (
            "sandbox (no relay configured: messages go to the outbox; "
            f"addresses @{settings.simulator_domain} answer like real "
            "servers)"
            if settings.is_sandbox
            else "through the relay"
        )
    )
    if users == 0:
        lines.append(
            "  no user yet: create the first administrator with\n"
            "    bounceback admin create-user --account 'Your company' "
            "--email you@example.com --admin"
        )
    out.write("\n".join(lines) + "\n")
    out.flush()


def configure_logging(level: str) -> None:
    """One line per event on standard error (stored bounces, jobs that failed, alerts)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per connection


def serve(settings: Settings, out: TextIO = sys.stdout) -> int:
    configure_logging(settings.log_level)
    settings, factory = prepare(settings)
    stop = threading.Event()
    stoppers = []
    if "smtp" in settings.roles:
        from bounceback.service.receivers.smtp import BounceReceiver  # noqa: PLC0415

        receiver = BounceReceiver(settings, factory)
        receiver.start()
        stoppers.append(receiver.stop)
    if "worker" in settings.roles:
        from bounceback.service.worker import Worker  # noqa: PLC0415

        for _ in range(settings.worker_threads):
            worker = Worker(settings, factory)
            worker.start()
            stoppers.append(worker.stop)
        from bounceback.service.receivers.imap import InboxPoller  # noqa: PLC0415

        poller = InboxPoller(settings, factory)  # users' connected mailboxes (IMAP)
        poller.start()
        stoppers.append(poller.stop)
    greet(settings, factory, out)
    try:
        if "api" in settings.roles:
            _serve_http(settings, factory)  # returns on SIGINT/SIGTERM
        else:
            _wait_for_signal(stop)
    finally:
        for stopper in reversed(stoppers):
            stopper()
    return 0


def _serve_http(settings: Settings, factory: sessionmaker[Session]) -> None:
    import uvicorn  # noqa: PLC0415

    from bounceback.service.app import create_app  # noqa: PLC0415

    config = uvicorn.Config(
        create_app(settings, factory),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        proxy_headers=True,
    )
    uvicorn.Server(config).run()


def _wait_for_signal(stop: threading.Event) -> None:
    def handler(_: int, __: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    stop.wait()
