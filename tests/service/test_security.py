"""Security of the JSON API (and the unsubscribe links), on SQLite and PostgreSQL.

The central test walks every route of the app: a route added without an account check, or
without being classified here, fails it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    ApiKey,
    Base,
    BounceEvent,
    Contact,
    Delivery,
    DeliveryState,
    User,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, intake, verp

from api_support import Creds, Tenant, key_creds, make_client, session_creds, tenant
from builders import SECRET, delivery, dsn, return_path
from outreach_support import add_outreach

MISSING = 987654321

# Path parameter -> the Tenant attribute holding the id of that kind of object.
PATH_IDS = {
    "contact_id": "contact_id",
    "email_id": "email_id",
    "send_id": "send_id",
    "bounce_id": "bounce_id",
    "raw_id": "raw_id",
    "direct_id": "direct_id",
    "sequence_id": "sequence_id",
    "enrollment_id": "enrollment_id",
}

# Bodies that get a request past validation, so that the answer is about the object (a
# function of the tenant whose ids are in the path, where the body names one of its objects too).
Body = dict[str, Any] | Callable[["Tenant"], dict[str, Any]]
BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/api/contacts/{contact_id}/unbounce"): {"json": {"note": "they asked us to"}},
    ("POST", "/api/contacts/{contact_id}/emails"): {"json": {"subject": "Hi", "body": "Hi"}},
    ("POST", "/api/direct/{direct_id}/retry"): {"json": {"at": "2999-01-01T10:00:00+00:00"}},
    ("POST", "/api/sequences/{sequence_id}/enrollments"): lambda t: {
        "json": {"contact_id": t.contact_id}
    },
}

# Routes that name no existing object: what they create belongs to the caller's account.
CREATES_OWN = {
    ("POST", "/api/contacts"): "creates or updates a contact of the caller's account",
    ("POST", "/api/contacts/import"): "imports into the caller's account",
    ("POST", "/api/emails"): "creates an email of the caller's account",
    ("POST", "/api/bounces/raw"): "stored for the caller; see test_raw_bounce_cannot_touch_...",
    ("GET", "/api/account/policy"): "the caller's own account's policy (no id in the path)",
    ("PUT", "/api/account/policy"): "changes the caller's own account's policy (no id)",
    ("GET", "/api/me/mailbox"): "the logged-in user's own mailbox (an API key: 403)",
    ("POST", "/api/me/mailbox"): "connects the logged-in user's own mailbox",
    ("DELETE", "/api/me/mailbox"): "disconnects the logged-in user's own mailbox",
    ("POST", "/api/sequences"): "creates a sequence of the caller's account",
}


def _ids(items: list[dict[str, Any]], key: str = "id") -> set[Any]:
    return {item[key] for item in items}


# Lists: the query strings to try, and whether an answer shows the tenant's object.
ListCheck = Callable[[dict[str, Any], Tenant], bool]
LISTS: dict[tuple[str, str], tuple[list[str], ListCheck]] = {
    ("GET", "/api/me"): ([""], lambda body, t: body["account_id"] == t.account_id),
    ("GET", "/api/contacts"): (
        ["", "?q={t.contact_email}"],
        lambda body, t: t.contact_id in _ids(body["items"]),
    ),
    ("GET", "/api/sends"): ([""], lambda body, t: t.send_id in _ids(body["items"])),
    ("GET", "/api/sequences"): ([""], lambda body, t: t.sequence_id in _ids(body["items"])),
    ("GET", "/api/bounces"): (
        ["", "?contact_id={t.contact_id}", "?email_id={t.email_id}", "?send_id={t.send_id}"],
        lambda body, t: t.bounce_id in _ids(body["items"]),
    ),
    ("GET", "/api/suppressions"): (
        ["", "?q={t.contact_email}"],
        lambda body, t: t.contact_email in _ids(body["items"], "email"),
    ),
    ("GET", "/api/alerts"): (
        ["", "?status=all"],
        lambda body, t: t.alert_id in _ids(body["items"]),
    ),
}

# Creates that name objects in their body: each body names something of ``a`` only.
REFERENCING: dict[tuple[str, str], Callable[[Tenant, Tenant], list[dict[str, Any]]]] = {
    ("POST", "/api/sends"): lambda a, b: [
        {"email_id": a.email_id},
        {"email_id": b.email_id, "contact_ids": [a.contact_id]},
        {"email_id": b.email_id, "contact_ids": [b.contact_id, a.contact_id]},
    ],
}


def _api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every API operation, from the OpenAPI document (the public list of routes: FastAPI may
    include routers lazily, so ``app.routes`` does not always show them)."""
    paths = client.get("/api/openapi.json").json()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if path.startswith("/api/")
    )


def _fill(path: str, owner: Tenant | None) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in PATH_IDS, f"{path}: no test object for path parameter {{{name}}}"
        return str(getattr(owner, PATH_IDS[name]) if owner else MISSING)

    return re.sub(r"{(\w+)}", value, path)


def _leaks(text: str, owner: Tenant) -> list[str]:
    return [marker for marker in owner.markers if marker in text]


def _check_object_route(client: TestClient, method: str, path: str, a: Tenant, b: Tenant) -> None:
    body = BODIES.get((method, path), {})
    extra = body(a) if callable(body) else body
    for creds in (b.api, b.admin):
        foreign = client.request(method, _fill(path, a), headers=creds.headers, **extra)
        where = f"{method} {path} with {a.name}'s ids as {b.name}'s {creds}"
        assert foreign.status_code == 404, f"{where}: {foreign.status_code} {foreign.text}"
        assert not _leaks(foreign.text, a), f"{where} shows {_leaks(foreign.text, a)}"
        missing = client.request(method, _fill(path, None), headers=creds.headers, **extra)
        assert missing.json() == foreign.json(), f"{where}: differs from a missing object"
    own = client.request(method, _fill(path, a), headers=a.admin.headers, **extra)
    assert own.status_code != 404, f"{method} {path}: its owner gets 404 too ({own.text})"


def _check_list_route(client: TestClient, method: str, path: str, a: Tenant, b: Tenant) -> None:
    queries, shows = LISTS[(method, path)]
    for query in queries:
        url = path + query.format(t=a)
        for creds in (b.api, b.admin):
            answer = client.request(method, url, headers=creds.headers)
            where = f"{method} {url} as {b.name}'s {creds}"
            assert answer.status_code == 200, f"{where}: {answer.status_code} {answer.text}"
            assert not shows(answer.json(), a), f"{where} lists {a.name}'s object"
            assert not _leaks(answer.text, a), f"{where} shows {_leaks(answer.text, a)}"
        own = client.request(method, url, headers=a.api.headers)
        assert own.status_code == 200 and shows(own.json(), a), f"{url}: the owner sees nothing"


def _check_referencing_route(
    client: TestClient, method: str, path: str, a: Tenant, b: Tenant
) -> None:
    for body in REFERENCING[(method, path)](a, b):
        for creds in (b.api, b.admin):
            answer = client.request(method, path, headers=creds.headers, json=body)
            where = f"{method} {path} {body} as {b.name}'s {creds}"
            assert answer.status_code == 404, f"{where}: {answer.status_code} {answer.text}"
            assert not _leaks(answer.text, a), f"{where} shows {_leaks(answer.text, a)}"
    own = client.request(
        method, path, headers=a.api.headers, json=REFERENCING[(method, path)](a, b)[0]
    )
    assert own.status_code < 300, f"{method} {path}: the owner is refused ({own.text})"


def test_every_api_route_refuses_another_accounts_objects(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    alpha, bravo = tenant(factory, "Alpha"), tenant(factory, "Bravo")
    for owner in (alpha, bravo):
        add_outreach(factory, settings, owner)
    routes = _api_routes(client)
    assert len(routes) >= 19
    unclassified = []
    for method, path in routes:
        if "{" in path:
            _check_object_route(client, method, path, alpha, bravo)
        elif (method, path) in LISTS:
            _check_list_route(client, method, path, alpha, bravo)
        elif (method, path) in REFERENCING:
            _check_referencing_route(client, method, path, alpha, bravo)
        elif (method, path) not in CREATES_OWN:
            unclassified.append(f"{method} {path}")
    assert not unclassified, f"classify these routes in {__file__}: {unclassified}"


def test_raw_bounce_cannot_touch_another_accounts_deliveries(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """An account posting an NDR (even with a genuine VERP token) about another account's
    delivery changes nothing there."""
    client, settings = make_client(factory, tmp_path)
    alpha, bravo = tenant(factory, "Alpha"), tenant(factory, "Bravo")
    with transaction(factory) as session:
        target = delivery(session, alpha.account_id, "fresh@alpha.example")
        target_id = target.id
    raw = dsn("fresh@alpha.example", to=return_path(target_id))
    answer = client.post("/api/bounces/raw", content=raw, headers=bravo.api.headers)
    assert answer.status_code == 202, answer.text
    intake.process(factory, answer.json()["id"], settings)
    with factory() as session:
        row = session.get(Delivery, target_id)
        assert row is not None and row.state is DeliveryState.SENT
        events = session.scalars(sa.select(BounceEvent).where(BounceEvent.delivery_id == target_id))
        assert list(events) == []
    assert (
        client.get(f"/api/bounces/raw/{answer.json()['id']}", headers=alpha.api.headers).status_code
        == 404
    )


def test_passwords_and_api_keys_are_stored_hashed(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    alpha = tenant(factory, "Alpha")
    password = "correct horse battery"  # what builders.admin and member use
    with factory() as session:
        dump = "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(sa.select(table)).all()
        )
    assert alpha.key not in dump
    assert alpha.key.split("_")[-1] not in dump  # not even the secret part
    assert password not in dump
    assert "scrypt$" in dump  # the hash is there
    client, _ = make_client(factory, tmp_path)
    assert client.get("/api/me", headers=alpha.api.headers).status_code == 200


def test_requests_without_valid_credentials_get_401(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    bad = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer {alpha.key}x"},
        {"Authorization": f"Bearer {alpha.key[:-4]}abcd"},
        {"Authorization": f"Basic {alpha.key}"},
        session_creds(alpha.admin_id, secret="another secret").headers,
    ]
    for headers in bad:
        for method, path in (("GET", "/api/contacts"), ("POST", "/api/bounces/raw")):
            answer = client.request(method, path, headers=headers, content=b"x")
            assert answer.status_code == 401, f"{headers}: {answer.text}"
            error = answer.json()["error"]
            assert error["status"] == 401 and error["message"]
            assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/contacts", headers=alpha.api.headers).status_code == 200


def test_a_revoked_key_is_refused(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    assert client.get("/api/contacts", headers=alpha.api.headers).status_code == 200
    with transaction(factory) as session:
        key_id = session.scalars(
            sa.select(ApiKey.id).where(ApiKey.account_id == alpha.account_id)
        ).one()
        accounts.revoke_api_key(session, alpha.account_id, key_id)
    answer = client.get("/api/contacts", headers=alpha.api.headers)
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error"]["message"]


def test_an_inactive_users_session_is_refused(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    assert client.get("/api/contacts", headers=alpha.member.headers).status_code == 200
    with transaction(factory) as session:
        user = session.get(User, alpha.member_id)
        assert user is not None
        user.is_active = False
    assert client.get("/api/contacts", headers=alpha.member.headers).status_code == 401


def test_unbounce_needs_an_administrators_session(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    url = f"/api/contacts/{alpha.contact_id}/unbounce"
    body = {"note": "the contact allowlisted our IPs"}
    by_key = client.post(url, json=body, headers=alpha.api.headers)
    assert by_key.status_code == 403
    assert "API key" in by_key.json()["error"]["message"]
    by_member = client.post(url, json=body, headers=alpha.member.headers)
    assert by_member.status_code == 403
    assert "administrator" in by_member.json()["error"]["message"]
    no_csrf = {k: v for k, v in alpha.admin.headers.items() if k != "X-CSRF-Token"}
    forged = client.post(url, json=body, headers=no_csrf)
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]["message"]
    wrong = client.post(url, json=body, headers={**alpha.admin.headers, "X-CSRF-Token": "x" * 64})
    assert wrong.status_code == 403
    suppressed = client.get("/api/suppressions", headers=alpha.api.headers).json()
    assert suppressed["total"] == 1  # nothing was lifted by any of those
    done = client.post(url, json=body, headers=alpha.admin.headers)
    assert done.status_code == 200, done.text
    assert client.get("/api/suppressions", headers=alpha.api.headers).json()["total"] == 0


def test_a_browser_session_needs_the_csrf_header_to_change_anything(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    creds: Creds = alpha.member
    cookie_only = {"Cookie": creds.headers["Cookie"]}
    assert client.get("/api/contacts", headers=cookie_only).status_code == 200
    body = {"email": "new@alpha.example"}
    refused = client.post("/api/contacts", json=body, headers=cookie_only)
    assert refused.status_code == 403
    me = client.get("/api/me", headers=cookie_only).json()
    assert me["via"] == "session" and me["csrf_token"]
    accepted = client.post(
        "/api/contacts", json=body, headers={**cookie_only, "X-CSRF-Token": me["csrf_token"]}
    )
    assert accepted.status_code == 201, accepted.text
    assert client.get("/api/me", headers=key_creds(alpha.key).headers).json()["csrf_token"] is None


def test_oversized_requests_are_refused_with_413(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, _ = make_client(factory, tmp_path, max_upload_bytes=2000, max_message_bytes=6000)
    alpha = tenant(factory, "Alpha")
    headers = alpha.api.headers
    csv = b"email,name\n" + b"".join(b"c%d@alpha.example,C\n" % i for i in range(200))
    assert len(csv) > 2000
    declared = client.post(
        "/api/contacts/import", files={"file": ("c.csv", csv, "text/csv")}, headers=headers
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["status"] == 413

    def chunks() -> Any:  # no Content-Length: the size is counted as it streams in
        for start in range(0, len(csv), 500):
            yield csv[start : start + 500]

    streamed = client.post(
        "/api/contacts", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    small = client.post(
        "/api/contacts/import", files={"file": ("c.csv", csv[:1000], "text/csv")}, headers=headers
    )
    assert small.status_code == 200, small.text
    # A raw bounce may be as large as the SMTP receiver accepts (max_message_bytes).
    raw = dsn("x@alpha.example", to="b+x@bounces.example.net")
    assert (
        client.post(
            "/api/bounces/raw", content=raw + b"\n" * (5000 - len(raw)), headers=headers
        ).status_code
        == 202
    )
    assert (
        client.post("/api/bounces/raw", content=raw + b"\n" * 6000, headers=headers).status_code
        == 413
    )
    assert client.post("/login", content=b"x" * 3000).status_code == 413  # the UI too


def test_unsubscribe_tokens_are_checked(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, _ = make_client(factory, tmp_path)
    alpha = tenant(factory, "Alpha")
    wrong = [
        verp.make_token(SECRET, alpha.delivery_id),  # a VERP token is not an unsubscribe token
        verp.make_token("another secret", alpha.delivery_id, purpose="unsubscribe"),
        verp.make_token(SECRET, MISSING, purpose="unsubscribe"),  # signed, but no such delivery
        "nonsense",
    ]
    for token in wrong:
        for method in ("GET", "POST"):
            answer = client.request(method, f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
            assert answer.status_code == 404, f"{method} {token}: {answer.text}"
            assert alpha.contact_email not in answer.text
    with factory() as session:
        contact = session.get(Contact, alpha.contact_id)
        assert contact is not None and contact.unsubscribed_at is None
