"""A sales user in a real browser (Playwright driving Debian's Chromium): connect their mailbox,
write a one-to-one email to a contact whose address does not exist, and see the bounce on the
contact's timeline.

Everything is real and on loopback: ``bounceback serve`` (the web UI, the worker and the inbox
poller it starts) as a subprocess; the user's mailbox on a private Dovecot; a private Postfix as
their submission server, which delivers its notice of the failure to their INBOX over LMTP; the
remote domain's server refusing the unknown user. Skips where Chromium, Postfix or Dovecot is
absent (strict mode: a failure). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

import pytest
from sqlalchemy import select

from bounceback.service.db.models import User
from bounceback.service.db.session import make_engine, make_sessionmaker, transaction
from bounceback.service.domain import contacts
from imap_support import Dovecot, InboxPostfix, require_dovecot
from mta_support import Bounceback, RemoteMX, require_postfix, start_smtp

from support import ROOT

ADMIN = "ann@inbox.test"
ADMIN_PASSWORD = "ann's web password"
MAILBOX_PASSWORD = "ann-mailbox-pw"
TIMEOUT_MS = 15_000
SHOTS = ROOT / "docs" / "screenshots"
BOUNCE_WITHIN = 30.0  # seconds: the poller looks at a new mailbox within 5, then IDLE


@dataclass
class Stack:
    service: Bounceback
    dovecot: Dovecot
    postfix: InboxPostfix
    contact_id: int
    contact: str


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    require_dovecot()
    require_postfix()
    remote = RemoteMX()
    controller = start_smtp(remote)
    dovecot = Dovecot({ADMIN: MAILBOX_PASSWORD})
    postfix = InboxPostfix(controller.port, dovecot.lmtp_port)
    service = Bounceback(db_url, tmp_path / "data", roles=("api", "worker"))
    try:
        dovecot.start()
        postfix.start()
        service.cli(
            "admin", "create-user", "--account", "Acme", "--email", ADMIN, "--admin",
            "--password", ADMIN_PASSWORD,
        )  # fmt: skip
        address = f"unknown-{uuid.uuid4().hex[:6]}@remote.test"
        engine = make_engine(db_url)
        with transaction(make_sessionmaker(engine)) as session:
            user = session.scalars(select(User).where(User.email == ADMIN)).one()
            contact_id = contacts.create_contact(session, user.account_id, address, "Bob").id
        engine.dispose()
        service.start()
        yield Stack(service, dovecot, postfix, contact_id, address)
    finally:
        service.stop()
        postfix.stop()
        dovecot.remove()
        controller.stop()


def test_connect_a_mailbox_send_an_email_see_its_bounce(browser: Any, stack: Stack) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (skipped above when absent)

    base = stack.service.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))

    # Connect the mailbox: IMAP on Dovecot, SMTP submission on Postfix (no login from loopback).
    page.goto(f"{base}/mailbox")
    page.get_by_label("Your email address").fill(ADMIN)
    sides = {
        "Reading: IMAP": (stack.dovecot.imap_port, ADMIN, MAILBOX_PASSWORD),
        "Sending: SMTP submission": (stack.postfix.port, "", ""),
    }
    for legend, (port, login, password) in sides.items():
        group = page.get_by_role("group", name=legend)
        group.get_by_label("Server").fill("127.0.0.1")
        group.get_by_label("Port").fill(str(port))
        group.get_by_label("Encryption").select_option("none")
        group.get_by_label("Login").fill(login)
        group.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name=f"Connected: {ADMIN}")).to_be_visible()

    # Write to the contact from the mailbox.
    page.goto(f"{base}/contacts/{stack.contact_id}/email")
    page.get_by_label("Subject").fill("Quick question")
    page.get_by_label("Message").fill("Hi Bob, do you have a minute this week?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_have_text("Sent from your mailbox.")

    # Postfix's notice lands in the INBOX; the poller finds it; the timeline shows it.
    page.goto(f"{base}/contacts/{stack.contact_id}")
    timeline = page.locator("ol.timeline")
    deadline = monotonic() + BOUNCE_WITHIN
    while "Hard bounce of “Quick question”" not in (timeline.text_content() or ""):
        assert monotonic() < deadline, (
            f"no bounce on the timeline after {BOUNCE_WITHIN:.0f}s: "
            f"{timeline.text_content()}\n{stack.postfix.log_tail(6)}\n"
            f"{stack.service.log.read_text()[-2000:]}"
        )
        page.wait_for_timeout(250)
        page.reload()
    expect(timeline).to_contain_text("Unknown user")
    expect(timeline).to_contain_text("550 5.1.1")
    if os.environ.get("BOUNCEBACK_SCREENSHOTS") == "1" and stack.service.env[
        "BOUNCEBACK_DATABASE_URL"
    ].startswith("sqlite"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "inbox-bounce.png"), full_page=True)

    # The notice itself, and how it was classified.
    page.get_by_role("row").filter(has_text="Hard bounce – Unknown user").get_by_role(
        "link", name="Details"
    ).click()
    expect(page.get_by_role("heading", name="How it was classified")).to_be_visible()
    expect(page.locator("pre.raw")).to_contain_text(f"Final-Recipient: rfc822; {stack.contact}")

    # The email is marked bounced and can be sent again later; the mailbox is healthy.
    page.goto(f"{base}/contacts/{stack.contact_id}/email")
    row = page.get_by_role("row").filter(has_text="Quick question")
    expect(row).to_contain_text("bounced")
    expect(row.get_by_role("button", name="Send again later")).to_be_visible()
    page.goto(f"{base}/mailbox")
    expect(page.locator("#last-error")).to_have_text("none")
    expect(page.locator("#last-poll")).not_to_have_text("not yet")
    assert stack.dovecot.flags(ADMIN, "FROM", "MAILER-DAEMON") == [{"\\Flagged"}]
    context.close()
