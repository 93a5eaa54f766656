"""The web UI in a real browser: Playwright driving Debian's Chromium against the app served by
uvicorn on 127.0.0.1. Log in, open a send's Recipients tab, open a contact, unbounce it.

Skips with the reason when /usr/bin/chromium or playwright is missing (strict mode: a failure).
With BOUNCEBACK_SCREENSHOTS=1 it saves the main pages to docs/screenshots/*.png for the README.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Suppression, UnbounceAudit
from bounceback.service.db.session import transaction

from support import ROOT
from webseed import ADMIN, PASSWORD, Seed, enrich, make_app, seed, settings

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture
def server(factory: sessionmaker[Session]) -> Iterator[str]:
    """The app on 127.0.0.1 and a free port, in a thread; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(settings(), factory), host="127.0.0.1", port=port, log_level="warning"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _shoot(page: Any, name: str, db_url: str) -> None:
    """Save a screenshot when asked to (once: from the SQLite run)."""
    if os.environ.get("BOUNCEBACK_SCREENSHOTS") == "1" and db_url.startswith("sqlite"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_login_recipients_contact_unbounce(
    browser: Any, server: str, factory: sessionmaker[Session], db_url: str
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (skipped above when absent)

    data: Seed = seed(factory)
    enrich(factory, data)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    nav = page.get_by_role("navigation", name="Main")

    # Log in: a page behind the login sends the browser to /login and back after it.
    page.goto(f"{server}/sends")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email address or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server}/sends")

    nav.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Your domain's DMARC policy refuses this service")).to_be_visible()
    _shoot(page, "dashboard", db_url)

    # The send's Recipients tab: bounce types, the server's response, the status filter.
    nav.get_by_role("link", name="Sends").click()
    page.get_by_role("link", name="Spring news").click()
    recipients = page.locator("#recipients")
    bob = recipients.get_by_role("row").filter(has_text="bob@example.com")
    expect(bob).to_contain_text("Hard bounce – Unknown user")
    expect(bob).to_contain_text("Recipient address rejected: User unknown")
    grace = recipients.get_by_role("row").filter(has_text="grace@example.com")
    expect(grace).to_contain_text("Soft bounce – Mailbox full")
    _shoot(page, "recipients", db_url)
    page.get_by_label("Show").select_option("bounced_hard")
    page.get_by_role("button", name="Filter").click()
    expect(recipients.get_by_role("row")).to_have_count(3)  # the header, alice and bob
    expect(recipients).not_to_contain_text("emma@example.com")
    page.get_by_role("link", name=re.compile("^Not sent")).click()
    expect(page.locator("#not-sent")).to_contain_text("carol@example.com")
    expect(page.locator("#not-sent")).to_contain_text("Unsubscribed")

    # A bounce's explanation, reached from the Recipients tab.
    page.get_by_role("link", name=re.compile("^Recipients")).click()
    recipients.get_by_role("row").filter(has_text="bob@example.com").get_by_role(
        "link", name="Why?"
    ).click()
    expect(page.get_by_role("heading", name="How it was classified")).to_be_visible()
    expect(page.locator("pre.raw")).to_contain_text("Final-Recipient: rfc822; bob@example.com")
    _shoot(page, "bounce", db_url)

    nav.get_by_role("link", name="Suppressions").click()
    expect(page.locator("#suppressions")).to_contain_text("alice@example.com")
    _shoot(page, "suppressions", db_url)

    # The contact page, then the unbounce (a note is required).
    page.get_by_role("link", name="alice@example.com").click()
    expect(page.locator("#hard-bounce-reason")).to_contain_text("Policy: 550 5.7.1")
    expect(page.get_by_text("Not sent to: Bounced in this account.")).to_be_visible()
    _shoot(page, "contact", db_url)
    page.get_by_label("Why? (required, kept in the audit trail)").fill(
        "The contact allowlisted our sending IPs"
    )
    page.get_by_role("button", name="Unbounce").click()
    expect(page.get_by_role("status").filter(has_text="unbounced")).to_be_visible()
    expect(page.get_by_text("Eligible.")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("The contact allowlisted our sending IPs")
    context.close()

    with transaction(factory) as session:
        row = session.scalars(
            select(Suppression).where(Suppression.email == "alice@example.com")
        ).one()
        assert row.lifted_at is not None
        audit = session.scalars(select(UnbounceAudit)).one()
        assert audit.note == "The contact allowlisted our sending IPs"
