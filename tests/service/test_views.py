"""The web UI through HTTP (FastAPI's TestClient): login, every page for its own account, another
account's objects as 404 pages, CSRF on every form, and who may unbounce. Every test runs on
SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Suppression, SuppressionReason, UnbounceAudit
from bounceback.service.db.session import transaction
from bounceback.service.web.throttle import LoginThrottle

from webseed import (
    ADMIN,
    BLOCKED_RESPONSE,
    MEMBER,
    OTHER_ADMIN,
    PASSWORD,
    UNKNOWN_RESPONSE,
    Seed,
    make_app,
    seed,
    settings,
)

_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def data(factory: sessionmaker[Session]) -> Seed:
    return seed(factory)


def _client(factory: sessionmaker[Session], **overrides: Any) -> TestClient:
    return TestClient(make_app(settings(**overrides), factory), follow_redirects=False)


@pytest.fixture
def client(factory: sessionmaker[Session], data: Seed) -> Iterator[TestClient]:
    with _client(factory) as test_client:
        yield test_client


def token(client: TestClient, path: str = "/login") -> str:
    found = _TOKEN.search(client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(
    client: TestClient, email: str = ADMIN, password: str = PASSWORD, next_url: str = "/"
) -> httpx.Response:
    return client.post(
        "/login",
        data={"email": email, "password": password, "next": next_url, "csrf_token": token(client)},
    )


def active_bounce(factory: sessionmaker[Session], email: str) -> bool:
    with transaction(factory) as session:
        count = session.scalar(
            select(func.count())
            .select_from(Suppression)
            .where(
                Suppression.email == email,
                Suppression.reason == SuppressionReason.HARD_BOUNCE,
                Suppression.lifted_at.is_(None),
            )
        )
    return bool(count)


# --- login ------------------------------------------------------------------------------------


def test_pages_need_a_login(client: TestClient, data: Seed) -> None:
    for path in (
        "/",
        "/contacts",
        f"/contacts/{data.alice}",
        "/sends",
        "/suppressions",
        f"/bounces/{data.bob_event}",
        "/help/categories",
        "/outbox",
    ):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


def test_login_flow(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert '<label for="email">' in page.text and '<label for="password">' in page.text

    wrong = login(client, password="not the password")
    assert wrong.status_code == 200
    assert "Wrong email address or password." in wrong.text
    assert client.get("/").status_code == 303

    right = login(client, next_url="/contacts?q=ali")
    assert right.status_code == 303
    assert right.headers["location"] == "/contacts?q=ali"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "Acme" in dashboard.text and ADMIN in dashboard.text
    assert client.get("/login").status_code == 303  # already logged in

    out = client.post("/logout", data={"csrf_token": token(client, "/")})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_login_keeps_redirects_on_this_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = login(client, next_url=target)
        assert response.headers["location"] == "/", target
        client.cookies.clear()


def test_login_starts_a_new_session(client: TestClient) -> None:
    """Session fixation: the token of the session before login is not valid after it."""
    before = token(client)
    login(client)
    assert token(client, "/") != before
    response = client.post("/logout", data={"csrf_token": before})
    assert response.status_code == 403
    assert client.get("/").status_code == 200


def test_login_form_needs_its_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": ADMIN, "password": PASSWORD})
    assert response.status_code == 403
    assert "Form refused" in response.text
    assert client.get("/").status_code == 303


def test_password_guessing_is_slowed_down(client: TestClient) -> None:
    for _ in range(10):
        assert "Wrong email address" in login(client, password="guess").text
    blocked = login(client)  # the right password, too late
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed logins" in blocked.text
    assert client.get("/").status_code == 303
    assert login(client, MEMBER).status_code == 303  # another address is not locked out


def test_throttle_forgets_old_failures() -> None:
    now = [1000.0]
    throttle = LoginThrottle(limit=2, window=60, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 61 and throttle.retry_after("b") == 0
    now[0] += 30
    assert throttle.retry_after("a", "b") == 31
    now[0] += 31
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.retry_after("a") == 0


def test_inactive_user_is_logged_out(client: TestClient, factory: sessionmaker[Session]) -> None:
    login(client)
    with transaction(factory) as session:
        from bounceback.service.db.models import User  # noqa: PLC0415

        session.scalars(select(User).where(User.email == ADMIN)).one().is_active = False
    assert client.get("/").status_code == 303
    assert client.get("/login").status_code == 200  # no redirect loop


# --- pages ------------------------------------------------------------------------------------


def test_dashboard_counts_and_alerts(client: TestClient) -> None:
    login(client)
    page = client.get("/").text
    # Acme's send: alice and bob hard-bounced, dave delivered, carol not sent (unsubscribed).
    assert re.search(r"<dt>Sent</dt><dd>3</dd>", page)
    assert re.search(r"<dt>Delivered</dt><dd>1</dd>", page)
    assert re.search(r"<dt>Hard bounces</dt><dd>2</dd>", page)
    assert re.search(r"<dt>Not sent</dt><dd>1</dd>", page)
    assert re.search(r"<dt>Bounce rate</dt><dd>66.7%</dd>", page)
    assert "Your domain&#39;s DMARC policy refuses this service" in page
    assert "Spring news" in page
    assert "Globex" not in page


def test_contact_list_search_and_pages(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    login(client)
    page = client.get("/contacts").text
    for name in ("alice", "bob", "carol", "dave"):
        assert f"{name}@example.com" in page
    assert "globex-only" not in page
    found = client.get("/contacts", params={"q": "ALI"}).text
    assert "alice@example.com" in found and "bob@example.com" not in found
    assert "No contact matches" in client.get("/contacts", params={"q": "nobody"}).text

    from bounceback.service.domain import contacts  # noqa: PLC0415

    with transaction(factory) as session:
        for n in range(60):
            contacts.create_contact(session, data.account_id, f"bulk{n:02}@example.org")
    first = client.get("/contacts").text
    assert "1–50 of 64 contacts" in first and "page=2" in first
    second = client.get("/contacts", params={"page": "2"}).text
    assert "51–64 of 64 contacts" in second and "alice@example.com" in second
    assert client.get("/contacts", params={"page": "x"}).status_code == 200


def test_contact_page(client: TestClient, data: Seed) -> None:
    login(client)
    page = client.get(f"/contacts/{data.alice}").text
    assert "Email hard bounce reason" in page
    assert f"Policy: {BLOCKED_RESPONSE}" in page
    assert "Not sent to: Bounced in this account." in page
    assert "Lyon" in page  # a property
    assert "Hard bounce: 550 5.7.1" in page  # the timeline
    assert f'action="/contacts/{data.alice}/unbounce"' in page
    assert '<label for="note">' in page
    carol = client.get(f"/contacts/{data.carol}").text
    assert "Not sent to: Unsubscribed." in carol
    assert "/unbounce" not in carol
    dave = client.get(f"/contacts/{data.dave}").text
    assert "Eligible." in dave


def test_send_list_and_recipients_tab(client: TestClient, data: Seed) -> None:
    login(client)
    sends = client.get("/sends").text
    assert f'href="/sends/{data.send_id}"' in sends and "Globex secret" not in sends

    page = client.get(f"/sends/{data.send_id}").text
    assert "Hard bounce – Unknown user" in page
    assert "Hard bounce – Policy (includes DMARC, DKIM and SPF failures)" in page
    assert UNKNOWN_RESPONSE.replace("<", "&lt;").replace(">", "&gt;") in page
    assert f'href="/bounces/{data.bob_event}"' in page
    assert "dave@example.com" in page and "carol@example.com" not in page

    bounced = client.get(f"/sends/{data.send_id}", params={"status": "bounced_hard"}).text
    assert "bob@example.com" in bounced and "dave@example.com" not in bounced
    delivered = client.get(f"/sends/{data.send_id}", params={"status": "delivered"}).text
    assert "dave@example.com" in delivered and "bob@example.com" not in delivered
    odd = client.get(f"/sends/{data.send_id}", params={"status": "<x>", "page": "-3"})
    assert odd.status_code == 200 and "dave@example.com" in odd.text


def test_not_sent_tab(client: TestClient, data: Seed) -> None:
    login(client)
    page = client.get(f"/sends/{data.send_id}", params={"tab": "not_sent"}).text
    assert "carol@example.com" in page and "Unsubscribed" in page
    assert "dave@example.com" not in page


def test_suppression_list(client: TestClient) -> None:
    login(client)
    page = client.get("/suppressions").text
    assert "alice@example.com" in page and "bob@example.com" in page
    assert "globex-only" not in page
    found = client.get("/suppressions", params={"q": "bob"}).text
    assert "bob@example.com" in found and "alice@example.com" not in found


def test_bounce_page_explains_the_classification(client: TestClient, data: Seed) -> None:
    login(client)
    page = client.get(f"/bounces/{data.bob_event}").text
    assert "Hard bounce – Unknown user" in page
    assert "rfc3464" in page  # the detector
    assert "<code>user_unknown</code>" in page  # the reason
    assert "Permanent" in page
    assert "The address does not exist" in page  # the category's advice
    assert f'href="/api/bounces/{data.bob_event}/raw"' in page
    # The raw message is shown escaped: its "<bob@example.com>" never becomes markup.
    assert "&lt;bob@example.com&gt;: Recipient address rejected" in page
    assert "<bob@example.com>" not in page
    # The download link works with the browser's login (the API accepts the web session).
    download = client.get(f"/api/bounces/{data.bob_event}/raw")
    assert download.status_code == 200
    assert b"Final-Recipient: rfc822; bob@example.com" in download.content
    assert client.get(f"/api/bounces/{data.other_event}/raw").status_code == 404


def test_help_lists_every_category_and_the_sending_ips(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    from bounceback.core.taxonomy import Category  # noqa: PLC0415

    login(client)
    page = client.get("/help/categories").text
    for category in Category:
        assert f'id="{category.value}"' in page
    assert "Mailbox full" in page and "192.0.2.11" in page

    with _client(factory, sending_ips=()) as bare:
        login(bare)
        assert "No sending IP addresses are configured" in bare.get("/help/categories").text


def test_outbox_only_in_the_sandbox(client: TestClient, factory: sessionmaker[Session]) -> None:
    login(client)
    page = client.get("/outbox")
    assert page.status_code == 200
    assert "Spring news" in page.text and "alice@example.com" in page.text
    with _client(factory, relay_url="smtp://relay.example:25") as relayed:
        login(relayed)
        assert relayed.get("/outbox").status_code == 404
        assert 'href="/outbox"' not in relayed.get("/").text


def test_static_stylesheet(client: TestClient) -> None:
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_pages_escape_what_users_typed(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    from bounceback.service.domain import contacts  # noqa: PLC0415

    with transaction(factory) as session:
        contacts.create_contact(
            session,
            data.account_id,
            "eve@example.com",
            "<script>alert(1)</script>",
            {"note": "<img src=x onerror=alert(2)>"},
        )
        eve = contacts.contact_by_email(session, data.account_id, "eve@example.com")
        assert eve is not None
        eve_id = eve.id
    login(client)
    page = client.get(f"/contacts/{eve_id}")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert "<img src=x" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all


# --- isolation between accounts ---------------------------------------------------------------


def test_another_accounts_objects_are_not_found(client: TestClient, data: Seed) -> None:
    login(client)
    for path in (
        f"/contacts/{data.other_contact}",
        f"/sends/{data.other_send}",
        f"/sends/{data.other_send}?tab=not_sent",
        f"/bounces/{data.other_event}",
        "/contacts/999999",
        "/sends/999999",
        "/bounces/999999",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text
        assert "globex" not in response.text.lower(), path
    response = client.post(
        f"/contacts/{data.other_contact}/unbounce",
        data={"note": "mine now", "csrf_token": token(client, "/")},
    )
    assert response.status_code == 404


def test_the_other_account_sees_only_its_own(factory: sessionmaker[Session], data: Seed) -> None:
    with _client(factory) as other:
        login(other, OTHER_ADMIN)
        assert other.get(f"/contacts/{data.other_contact}").status_code == 200
        assert other.get(f"/bounces/{data.other_event}").status_code == 200
        assert other.get(f"/contacts/{data.alice}").status_code == 404
        assert other.get(f"/sends/{data.send_id}").status_code == 404
        assert "alice@example.com" not in other.get("/suppressions").text
        assert "Spring news" not in other.get("/outbox").text


# --- CSRF and unbounce ------------------------------------------------------------------------


def test_posts_without_the_token_are_refused(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    login(client)
    for form in ({"note": "fixed"}, {"note": "fixed", "csrf_token": "0" * 64}):
        response = client.post(f"/contacts/{data.alice}/unbounce", data=form)
        assert response.status_code == 403
        assert "Form refused" in response.text
    assert active_bounce(factory, "alice@example.com")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/").status_code == 200  # still logged in


def test_token_of_another_session_is_refused(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    with _client(factory) as attacker:
        login(attacker, MEMBER)
        stolen = token(attacker, "/")
    login(client)
    response = client.post(
        f"/contacts/{data.alice}/unbounce", data={"note": "fixed", "csrf_token": stolen}
    )
    assert response.status_code == 403
    assert active_bounce(factory, "alice@example.com")


def test_member_cannot_unbounce(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    login(client, MEMBER)
    page = client.get(f"/contacts/{data.alice}").text
    assert "Only an administrator of this account can unbounce" in page
    assert 'name="note"' not in page
    response = client.post(
        f"/contacts/{data.alice}/unbounce",
        data={"note": "please", "csrf_token": token(client, f"/contacts/{data.alice}")},
    )
    assert response.status_code == 403
    assert "Only an administrator of this account can unbounce a contact." in response.text
    assert active_bounce(factory, "alice@example.com")


def test_admin_unbounces_with_a_note(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    login(client)
    path = f"/contacts/{data.alice}"
    empty = client.post(f"{path}/unbounce", data={"note": "  ", "csrf_token": token(client, path)})
    assert empty.status_code == 422
    assert "a note is required" in empty.text
    assert active_bounce(factory, "alice@example.com")

    done = client.post(
        f"{path}/unbounce",
        data={"note": "Added your IPs to the allowlist", "csrf_token": token(client, path)},
    )
    assert done.status_code == 303 and done.headers["location"] == path
    page = client.get(path).text
    assert "The contact was unbounced" in page
    assert "Eligible." in page
    assert "Added your IPs to the allowlist" in page  # the timeline
    assert not active_bounce(factory, "alice@example.com")
    with transaction(factory) as session:
        audit = session.scalars(select(UnbounceAudit)).one()
        assert audit.note == "Added your IPs to the allowlist"

    again = client.post(
        f"{path}/unbounce", data={"note": "again", "csrf_token": token(client, path)}
    )
    assert again.status_code == 409


def test_unbounce_refusal_is_shown(
    client: TestClient, factory: sessionmaker[Session], data: Seed
) -> None:
    login(client)
    path = f"/contacts/{data.bob}"
    response = client.post(
        f"{path}/unbounce", data={"note": "he exists", "csrf_token": token(client, path)}
    )
    assert response.status_code == 403
    assert 'id="unbounce-error"' in response.text
    assert "cannot be unbounced" in response.text
    assert "he exists" in response.text  # the note is kept in the form
    assert active_bounce(factory, "bob@example.com")
