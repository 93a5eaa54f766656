"""The JSON API over HTTP (Starlette's TestClient against ``create_app``), on SQLite and
PostgreSQL: contacts, emails, sends, bounce intake and events, suppressions, unbounce, the
unsubscribe link, errors and the OpenAPI document."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    Contact,
    Delivery,
    DeliveryState,
    RawBounce,
    Suppression,
    SuppressionReason,
    TimelineEntry,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, intake, verp
from bounceback.service.outbound.message import unsubscribe_url

from api_support import SENDING_IPS, Tenant, make_client, tenant
from builders import SECRET, delivery, dsn, return_path


def _error(answer: Any) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == answer.status_code
    error: dict[str, Any] = body["error"]
    return error


def test_openapi_document(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    doc = client.get("/api/openapi.json").json()
    assert doc["info"]["title"] == "bounceback" and "Bearer" in doc["info"]["description"]
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    assert len(operations) >= 19
    for operation in operations:
        assert operation.get("summary") and operation.get("tags"), operation
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert "ApiKey" in doc["components"]["securitySchemes"]
    raw = doc["paths"]["/api/bounces/raw"]["post"]["requestBody"]["content"]
    assert "message/rfc822" in raw
    assert not any(path.startswith("/u/") for path in doc["paths"])
    assert client.get("/api/docs").status_code == 200


def test_contacts_create_search_read(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    h = alpha.api.headers
    made = client.post(
        "/api/contacts",
        json={"email": " Ada@Example.COM ", "name": "Ada", "properties": {"plan": "pro"}},
        headers=h,
    )
    assert made.status_code == 201, made.text
    ada = made.json()
    assert ada["email"] == "ada@example.com" and ada["properties"] == {"plan": "pro"}
    again = client.post(
        "/api/contacts",
        json={"email": "ada@example.com", "properties": {"city": "Paris"}},
        headers=h,
    )
    assert again.status_code == 200 and again.json()["id"] == ada["id"]
    assert again.json()["properties"] == {"plan": "pro", "city": "Paris"}
    bad = client.post("/api/contacts", json={"email": "not an address"}, headers=h)
    assert bad.status_code == 422 and "not an email address" in _error(bad)["message"]
    missing = client.post("/api/contacts", json={"name": "no address"}, headers=h)
    assert missing.status_code == 422
    assert _error(missing)["details"][0]["location"] == "body.email"

    for i in range(3):
        client.post("/api/contacts", json={"email": f"bob{i}@example.org"}, headers=h)
    everyone = client.get("/api/contacts", headers=h).json()
    assert everyone["total"] == 5 and everyone["limit"] == 50 and everyone["offset"] == 0
    found = client.get("/api/contacts", params={"q": "BOB", "limit": 2, "offset": 1}, headers=h)
    assert found.json()["total"] == 3 and len(found.json()["items"]) == 2
    for params in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"limit": "many"}):
        refused = client.get("/api/contacts", params=params, headers=h)
        assert refused.status_code == 422, params
        assert _error(refused)["message"].startswith("query.")

    one = client.get(f"/api/contacts/{alpha.contact_id}", headers=h).json()
    assert one["email"] == alpha.contact_email
    assert one["hard_bounce_reason"].startswith("Policy: 550 5.7.1")
    assert one["not_sent_reason"] == "account_bounce"
    assert client.get(f"/api/contacts/{ada['id']}", headers=h).json()["not_sent_reason"] is None
    nothing = client.get("/api/contacts/424242", headers=h)
    assert nothing.status_code == 404 and _error(nothing)["message"] == "no such contact"


def test_contact_import_reports_rows(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    csv = (
        "Email,Name,Plan\n"
        "ann@example.com,Ann,pro\n"
        "not-an-address,Bad,\n"
        f"{alpha.contact_email},Known,free\n"
        ",Nobody,\n"
    ).encode()
    answer = client.post(
        "/api/contacts/import",
        files={"file": ("contacts.csv", csv, "text/csv")},
        headers=alpha.api.headers,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["created"] == 1 and result["updated"] == 1
    assert [e["line"] for e in result["errors"]] == [3, 5]
    assert "not an email address" in result["errors"][0]["message"]
    ann = client.get("/api/contacts", params={"q": "ann@"}, headers=alpha.api.headers).json()
    assert ann["items"][0]["properties"] == {"plan": "pro"}
    for content in (b"name\nx\n", b"email\n\xff\xfe\n"):
        refused = client.post(
            "/api/contacts/import",
            files={"file": ("c.csv", content, "text/csv")},
            headers=alpha.api.headers,
        )
        assert refused.status_code == 422 and _error(refused)["message"]
    no_file = client.post("/api/contacts/import", headers=alpha.api.headers)
    assert no_file.status_code == 422


def test_emails_sends_progress_and_recipients(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")  # its one contact is suppressed (a hard bounce)
    h = alpha.api.headers
    ids = [
        client.post("/api/contacts", json={"email": f"r{i}@example.org"}, headers=h).json()["id"]
        for i in range(3)
    ]
    email = client.post(
        "/api/emails",
        json={"from_address": "news@alpha.example", "subject": "Autumn", "text": "Hello"},
        headers=h,
    )
    assert email.status_code == 201, email.text
    email_id = email.json()["id"]
    assert client.get(f"/api/emails/{email_id}", headers=h).json()["subject"] == "Autumn"
    no_body = client.post(
        "/api/emails", json={"from_address": "news@alpha.example", "subject": "x"}, headers=h
    )
    assert no_body.status_code == 422

    created = client.post("/api/sends", json={"email_id": email_id}, headers=h)
    assert created.status_code == 201, created.text
    send = created.json()
    assert send["status"] == "draft"
    assert send["progress"]["total"] == 4 and send["progress"]["queued"] == 3
    assert send["progress"]["not_sent"] == 1 and send["progress"]["bounce_rate"] == 0.0
    not_sent = client.get(f"/api/sends/{send['id']}/not-sent", headers=h).json()
    assert not_sent["total"] == 1
    assert not_sent["items"][0] == {
        "delivery_id": not_sent["items"][0]["delivery_id"],
        "contact_id": alpha.contact_id,
        "address": alpha.contact_email,
        "reason": "account_bounce",
        "reason_label": "Bounced in this account",
    }
    started = client.post(f"/api/sends/{send['id']}/start", headers=h)
    assert started.status_code == 200 and started.json()["status"] == "sending"
    twice = client.post(f"/api/sends/{send['id']}/start", headers=h)
    assert twice.status_code == 409 and "cannot be started" in _error(twice)["message"]

    # What the worker and intake would record, written directly: one hard, one soft bounce.
    with transaction(factory) as session:
        rows = session.scalars(
            sa.select(Delivery)
            .where(Delivery.send_id == send["id"], Delivery.contact_id.in_(ids))
            .order_by(Delivery.id)
        ).all()
        rows[0].state, rows[0].category = DeliveryState.BOUNCED_HARD, "unknown_user"
        rows[0].reason, rows[0].response = (
            "user_unknown",
            "550 5.1.1 <r0@example.org>: no such user",
        )
        rows[1].state, rows[1].category = DeliveryState.BOUNCED_SOFT, "mailbox_full"
        rows[2].state = DeliveryState.DELIVERED
    detail = client.get(f"/api/sends/{send['id']}", headers=h).json()
    assert detail["progress"]["bounced_hard"] == 1 and detail["progress"]["delivered"] == 1
    assert abs(detail["progress"]["bounce_rate"] - 2 / 3) < 1e-9
    url = f"/api/sends/{send['id']}/recipients"
    everyone = client.get(url, headers=h).json()
    assert everyone["total"] == 3  # the not-sent contact is in /not-sent only
    hard = client.get(url, params={"state": "bounced_hard"}, headers=h).json()
    assert hard["total"] == 1
    row = hard["items"][0]
    assert row["address"] == "r0@example.org" and row["state"] == "bounced_hard"
    assert row["bounce_type"] == "Hard bounce – Unknown user"
    assert row["category_label"] == "Unknown user" and row["reason"] == "user_unknown"
    assert row["response"] == "550 5.1.1 <r0@example.org>: no such user" and row["time"]
    both = client.get(url, params=[("state", "bounced_hard"), ("state", "bounced_soft")], headers=h)
    assert {r["bounce_type"] for r in both.json()["items"]} == {
        "Hard bounce – Unknown user",
        "Soft bounce – Mailbox full",
    }
    wrong = client.get(url, params={"state": "exploded"}, headers=h)
    assert wrong.status_code == 422 and "query.state" in _error(wrong)["message"]
    listed = client.get("/api/sends", params={"limit": 1}, headers=h).json()
    assert listed["total"] == 2 and listed["items"][0]["id"] == send["id"]


def test_bounce_intake_events_explanation_and_raw(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    h = alpha.api.headers
    with transaction(factory) as session:
        target = delivery(session, alpha.account_id, "gone@example.org")
        target_id, contact_id, send_id = target.id, target.contact_id, target.send_id
    raw = dsn("gone@example.org", to=return_path(target_id))
    posted = client.post(
        "/api/bounces/raw", content=raw, headers={**h, "Content-Type": "message/rfc822"}
    )
    assert posted.status_code == 202, posted.text
    accepted = posted.json()
    assert accepted["new"] is True and accepted["status"] == "received"
    again = client.post("/api/bounces/raw", content=raw, headers=h).json()
    assert again == {**accepted, "new": False}
    empty = client.post("/api/bounces/raw", content=b"  \r\n", headers=h)
    assert empty.status_code == 422
    assert intake.process(factory, accepted["id"], settings).value == "processed"

    status = client.get(f"/api/bounces/raw/{accepted['id']}", headers=h).json()
    assert status["status"] == "processed" and len(status["event_ids"]) == 1
    event_id = status["event_ids"][0]
    mine = client.get("/api/bounces", params={"contact_id": contact_id}, headers=h).json()
    assert [e["id"] for e in mine["items"]] == [event_id]
    assert client.get("/api/bounces", params={"send_id": send_id}, headers=h).json()["total"] == 1
    assert (
        client.get("/api/bounces", params={"email_id": alpha.email_id}, headers=h).json()["total"]
        == 1
    )  # the tenant's own bounce, not this one
    assert client.get("/api/bounces", headers=h).json()["total"] == 2

    detail = client.get(f"/api/bounces/{event_id}", headers=h)
    assert detail.status_code == 200, detail.text
    event = detail.json()
    assert event["email"] == "gone@example.org" and event["hard"] is True
    assert event["category"] == "unknown_user" and event["category_label"] == "Unknown user"
    why = event["explanation"]
    assert why["detector"] and why["rule_id"] and why["reason"] == "user_unknown"
    assert why["category_label"] == "Unknown user" and "does not exist" in why["advice"]
    assert why["status"] == "5.1.1" and "User unknown" in why["diagnostic"]
    assert why["sending_ips"] == list(SENDING_IPS)

    download = client.get(f"/api/bounces/{event_id}/raw", headers=h)
    assert download.status_code == 200 and download.content == raw
    assert download.headers["content-type"].startswith("message/rfc822")
    assert (
        download.headers["content-disposition"] == f'attachment; filename="bounce-{event_id}.eml"'
    )


def _suppressed(client: Any, alpha: Tenant, q: str = "") -> dict[str, Any]:
    answer = client.get("/api/suppressions", params={"q": q}, headers=alpha.api.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_suppressions_and_unbounce(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    with transaction(factory) as session:  # a global bounce listed for one of alpha's contacts
        session.add(Contact(account_id=alpha.account_id, email="everywhere@example.org"))
        session.add(
            Suppression(
                account_id=None,
                email="everywhere@example.org",
                reason=SuppressionReason.GLOBAL_BOUNCE,
                category="unknown_user",
                detail="550 seen by other accounts",
            )
        )
    listed = _suppressed(client, alpha)
    assert listed["total"] == 2
    by_email = {row["email"]: row for row in listed["items"]}
    mine = by_email[alpha.contact_email]
    assert mine["scope"] == "account" and mine["reason_label"] == "Bounced in this account"
    assert mine["category_label"].startswith("Policy") and "blocked" in mine["detail"]
    everywhere = by_email["everywhere@example.org"]
    assert everywhere["scope"] == "global" and everywhere["detail"] == ""
    assert _suppressed(client, alpha, "EVERYWHERE")["total"] == 1

    url = f"/api/contacts/{alpha.contact_id}/unbounce"
    no_note = client.post(url, json={"note": ""}, headers=alpha.admin.headers)
    assert no_note.status_code == 422
    done = client.post(url, json={"note": "they allowlisted us"}, headers=alpha.admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["note"] == "they allowlisted us" and done.json()["lifted_at"]
    assert _suppressed(client, alpha, alpha.contact_email)["total"] == 0
    contact = client.get(f"/api/contacts/{alpha.contact_id}", headers=alpha.api.headers).json()
    assert contact["hard_bounce_reason"] == "" and contact["not_sent_reason"] is None
    timeline = client.get(f"/api/contacts/{alpha.contact_id}/timeline", headers=alpha.api.headers)
    assert timeline.json()["total"] >= 1
    assert timeline.json()["items"][0]["kind"] == "unbounced"
    assert "they allowlisted us" in timeline.json()["items"][0]["summary"]
    again = client.post(url, json={"note": "once more"}, headers=alpha.admin.headers)
    assert again.status_code == 409 and _error(again)["message"]


def test_unsubscribe_link(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, settings = make_client(factory, tmp_path, public_url="https://mail.example.com")
    alpha = tenant(factory, "Alpha")
    with transaction(factory) as session:
        target = delivery(session, alpha.account_id, "reader@example.org")
        target_id, contact_id = target.id, target.contact_id
    link = unsubscribe_url(settings, target_id)  # the link the emails carry
    assert link.startswith("https://mail.example.com/u/")
    path = link.removeprefix("https://mail.example.com")
    assert verp.verify_token(SECRET, path.removeprefix("/u/"), purpose="unsubscribe") == target_id

    page = client.get(path)
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert "r…@example.org" in page.text and "Alpha Corp" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    with factory() as session:  # looking is not unsubscribing (mail scanners follow links)
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.unsubscribed_at is None

    for _ in range(2):  # RFC 8058 one-click, posted twice as some mail clients do
        done = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "no more marketing email" in done.text
    with factory() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.unsubscribed_at is not None
        rows = session.scalars(
            sa.select(Suppression).where(Suppression.email == "reader@example.org")
        ).all()
        assert [(r.account_id, r.reason) for r in rows] == [
            (alpha.account_id, SuppressionReason.UNSUBSCRIBE)
        ]
        entries = session.scalars(
            sa.select(TimelineEntry.kind).where(TimelineEntry.contact_id == contact_id)
        ).all()
        assert entries == ["unsubscribed"]
    assert "no more marketing email" in client.get(path).text
    one = client.get(f"/api/contacts/{contact_id}", headers=alpha.api.headers).json()
    assert one["unsubscribed_at"] and one["not_sent_reason"] == "unsubscribed"


def test_errors_are_json_under_api(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    h = alpha.api.headers
    unknown = client.get("/api/nothing-here", headers=h)
    assert unknown.status_code == 404 and _error(unknown)["message"]
    wrong_method = client.delete("/api/contacts", headers=h)
    assert wrong_method.status_code == 405 and _error(wrong_method)["message"]
    broken = client.post(
        "/api/contacts", content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and _error(broken)["message"]
    not_int = client.get("/api/contacts/abc", headers=h)
    assert not_int.status_code == 422 and "path.contact_id" in _error(not_int)["message"]


def test_api_keys_of_one_account_work_alone(factory: sessionmaker[Session], tmp_path: Path) -> None:
    """A second key of the account sees the same data; the session of its admin too."""
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    with transaction(factory) as session:
        _, second = accounts.create_api_key(session, alpha.account_id, "second")
    me = client.get("/api/me", headers={"Authorization": f"Bearer {second}"}).json()
    assert me == {
        "account_id": alpha.account_id,
        "account_name": "Alpha Corp",
        "via": "api_key",
        "user_email": None,
        "role": None,
        "csrf_token": None,
    }
    admin_me = client.get("/api/me", headers=alpha.admin.headers).json()
    assert admin_me["user_email"] == "admin@alpha.example" and admin_me["role"] == "admin"


def test_a_raw_bounce_is_stored_before_the_answer(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The 202 promises the message is kept: when the response starts, another connection must
    already see the row (the request's transaction commits before the answer is sent)."""
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    raw = dsn("late@example.org", to=return_path(1))
    seen: list[tuple[int, int]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            with factory() as session:  # a connection of its own
                count = session.scalar(
                    sa.select(sa.func.count())
                    .select_from(RawBounce)
                    .where(RawBounce.raw == raw, RawBounce.account_id == alpha.account_id)
                )
            seen.append((message["status"], count or 0))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/bounces/raw",
        "raw_path": b"/api/bounces/raw",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {alpha.key}".encode()),
            (b"content-type", b"message/rfc822"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert seen == [(202, 1)]


def test_account_policy(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    got = client.get("/api/account/policy", headers=alpha.api.headers).json()
    assert got["soft_to_hard_count"] == 5 and "unknown_user" in got["suppress_categories"]
    changed = client.put(
        "/api/account/policy",
        headers=alpha.api.headers,
        json={"soft_to_hard_count": 3, "suppress_categories": ["unknown_user"]},
    )
    assert changed.status_code == 200
    assert changed.json()["soft_to_hard_count"] == 3
    assert changed.json()["suppress_categories"] == ["unknown_user"]
    bad = client.put(
        "/api/account/policy", headers=alpha.api.headers, json={"suppress_categories": ["nonsense"]}
    )
    assert bad.status_code == 422 and "nonsense" in bad.json()["error"]["message"]
    member = client.put(
        "/api/account/policy", headers=alpha.member.headers, json={"soft_to_hard_count": 9}
    )
    assert member.status_code == 403
