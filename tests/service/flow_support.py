"""What the lifecycle, resend and guardrail tests share: sending through a real SMTP server on
127.0.0.1 (``FakeRelay``), and notices about those messages coming back through the intake
exactly as the SMTP receiver hands them over (stored raw, then processed by the worker's job).

The notices are RFC 3464 reports addressed to the delivery's signed VERP return path, with the
remote MTA chosen by the test (the provider of sender-side clusters is read from it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.app import create_app
from bounceback.service.db.models import Delivery, RawStatus, Role
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, intake, verp
from bounceback.service.settings import Settings
from bounceback.service.worker import Deliverer, build_handlers, run_until_idle

from api_support import make_settings
from outbound_support import BOUNCE_DOMAIN, SECRET, FakeRelay, RelayHandler, settings


@contextmanager
def relay(handler: RelayHandler | None = None) -> Iterator[tuple[FakeRelay, Settings]]:
    """A relay on 127.0.0.1 and the settings that send through it."""
    server = FakeRelay(handler or RelayHandler())
    server.start()
    try:
        yield server, settings(relay_url=server.url())
    finally:
        server.stop()


def run_worker(factory: sessionmaker[Session], config: Settings) -> int:
    """Run every due job (deliveries and bounce processing); how many ran."""
    deliverer = Deliverer(config)
    try:
        return run_until_idle(factory, build_handlers(config, deliverer))
    finally:
        deliverer.close()


def deliveries(factory: sessionmaker[Session], send_id: int) -> dict[str, Delivery]:
    with factory() as session:
        rows = session.scalars(select(Delivery).where(Delivery.send_id == send_id)).all()
        return {d.email: d for d in rows}


def return_path(delivery_id: int) -> str:
    return verp.return_path(SECRET, delivery_id, BOUNCE_DOMAIN)


def notice(
    delivery_id: int,
    address: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    remote_mta: str = "mx.remote.example",
) -> bytes:
    """A Postfix-style delivery status notification about one of our messages."""
    to = return_path(delivery_id)
    return (
        f"From: MAILER-DAEMON@relay.shop.example\nTo: {to}\n"
        f"Subject: Delivery Status Notification ({action})\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThis is the mail system at host relay.shop.example.\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; relay.shop.example\n\n"
        f"Final-Recipient: rfc822; {address}\nAction: {action}\nStatus: {status}\n"
        f"Remote-MTA: dns; {remote_mta}\n"
        f"Diagnostic-Code: smtp; {diagnostic.format(r=address)}\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"From: news@shop.example\nTo: {address}\nSubject: Our spring sale\n\n"
        "--B--\n"
    ).encode()


def complaint(delivery_id: int, address: str) -> bytes:
    """An ARF spam complaint (a feedback loop) about one of our messages."""
    return (
        f"From: fbl@isp.example\nTo: {return_path(delivery_id)}\nSubject: complaint\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nabuse report\n--F\n"
        "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: x/1\n"
        f"Version: 1\nOriginal-Rcpt-To: {address}\n\n--F\nContent-Type: message/rfc822\n\n"
        f"From: news@shop.example\nTo: {address}\nSubject: Our spring sale\n\nhi\n--F--\n"
    ).encode()


def receive(
    factory: sessionmaker[Session], raw: bytes, config: Settings | None = None
) -> RawStatus:
    """Store a notice as the SMTP receiver does and process it as the worker does."""
    config = config or settings()
    with transaction(factory) as session:
        row, _ = intake.store_raw(
            session, raw, source="smtp", envelope_to=_header(raw, "To"), envelope_from=""
        )
        raw_id = row.id
    return intake.process(factory, raw_id, config)


def _header(raw: bytes, name: str) -> str:
    for line in raw.decode().splitlines():
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


# --- the web: an app on the test database, users and their logins ----------------------------

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def web_client(factory: sessionmaker[Session], tmp_path: Path) -> TestClient:
    """The app (API and web UI) on the test database; redirects are not followed."""
    return TestClient(create_app(make_settings(tmp_path), factory), follow_redirects=False)


def user(factory: sessionmaker[Session], account_id: int, email: str, role: Role) -> int:
    with transaction(factory) as session:
        return accounts.create_user(session, account_id, email, PASSWORD, role=role).id


def api_key(factory: sessionmaker[Session], account_id: int) -> dict[str, str]:
    """Headers carrying a new API key of the account."""
    with transaction(factory) as session:
        _, key = accounts.create_api_key(session, account_id, "tests")
    return {"Authorization": f"Bearer {key}"}


def form_token(client: TestClient, path: str) -> str:
    """The CSRF token of the forms on a page."""
    found = _TOKEN.search(client.get(path).text)
    assert found, f"no form token on {path}"
    return found.group(1)


def login(client: TestClient, email: str) -> None:
    answer = client.post(
        "/login",
        data={
            "email": email,
            "password": PASSWORD,
            "next": "/",
            "csrf_token": form_token(client, "/login"),
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
