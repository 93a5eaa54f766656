"""End to end with a real MTA: ``bounceback serve`` sends a marketing email through a private
Postfix to recipients covering every answer a receiving server gives; Postfix's own delivery
status notices (failed, delayed, relayed) come back over SMTP to bounceback's receiver through
the signed VERP return paths; an unknown local user is refused by Postfix at RCPT. Every
recipient's final state, category, server response and suppression is checked through the API.
Runs on SQLite and on PostgreSQL (about 25 seconds each: the never-recovering recipient is given
up by Postfix after its 20-second queue lifetime)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx

from mta_support import (
    BOUNCE_DOMAIN,
    LOCAL_DOMAIN,
    PASSWORD,
    Bounceback,
    Postfix,
    RemoteMX,
    RunBounceback,
    StartPostfix,
    wait_for,
)


@dataclass(frozen=True)
class Case:
    state: str
    category: str
    response: str  # a part of the server's response
    suppressed: bool
    delayed: bool = False  # a "delayed" notice came first: the recipient was pending


REMOTE = "remote.test"
CASES = {
    f"ok@{REMOTE}": Case("delivered", "", "250 2.0.0", False),
    f"greylist@{REMOTE}": Case("delivered", "", "250 2.0.0", False),
    f"later@{REMOTE}": Case("delivered", "", "250 2.0.0", False, delayed=True),
    f"unknown@{REMOTE}": Case(
        "bounced_hard",
        "unknown_user",
        f"550 5.1.1 <unknown@{REMOTE}>: Recipient address rejected: User unknown",
        True,
    ),
    f"full@{REMOTE}": Case("bounced_soft", "mailbox_full", "552 5.2.2", False),
    f"spam@{REMOTE}": Case("bounced_hard", "spam", "554 5.7.1", True),
    f"dmarc@{REMOTE}": Case("bounced_soft", "dmarc_unauthorized", "550 5.7.26", False),
    f"datareject@{REMOTE}": Case("bounced_hard", "content", "554 5.6.0", True),
    f"tempfail@{REMOTE}": Case(
        "bounced_soft", "recipient_server", "421 4.7.0", False, delayed=True
    ),
    f"nosuchuser@{LOCAL_DOMAIN}": Case(
        "bounced_hard",
        "unknown_user",
        f"550 5.1.1 <nosuchuser@{LOCAL_DOMAIN}>: Recipient address rejected: User unknown in "
        "local recipient table",
        True,
    ),
}
FINAL = {"delivered", "bounced_hard", "bounced_soft"}


def _start(
    db_url: str, start_postfix: StartPostfix, run: RunBounceback
) -> tuple[Postfix, Bounceback]:
    service = run(db_url)
    postfix = start_postfix({BOUNCE_DOMAIN: service.smtp_port})
    service.env["BOUNCEBACK_RELAY_URL"] = f"smtp://127.0.0.1:{postfix.port}?helo=app.bb.test"
    service.cli(
        "admin", "create-user", "--account", "Acme", "--email", "admin@acme.test", "--admin",
        "--password", PASSWORD,
    )  # fmt: skip
    service.start()
    return postfix, service


def _api(service: Bounceback) -> httpx.Client:
    key = service.cli("admin", "create-api-key", "--account", "Acme").strip().splitlines()[0]
    return httpx.Client(
        base_url=f"{service.url}/api", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def _send_to_every_case(api: httpx.Client) -> int:
    table = io.StringIO()
    csv.writer(table).writerows([["email", "name"], *[[a, a.split("@")[0]] for a in CASES]])
    imported = api.post("/contacts/import", files={"file": ("c.csv", table.getvalue())})
    assert imported.json()["created"] == len(CASES), imported.text
    email = api.post(
        "/emails",
        json={
            "from_address": "news@acme.test",
            "from_name": "Acme",
            "subject": "Spring news",
            "html": "<p>Hello from Acme</p>",
        },
    ).json()
    send = api.post("/sends", json={"email_id": email["id"]}).json()
    assert api.post(f"/sends/{send['id']}/start").status_code == 200
    return int(send["id"])


def _recipients(api: httpx.Client, send_id: int) -> dict[str, dict[str, object]]:
    page = api.get(f"/sends/{send_id}/recipients", params={"limit": 100}).json()
    return {r["address"]: r for r in page["items"]}


def test_every_answer_through_postfix(
    db_url: str, start_postfix: StartPostfix, run_bounceback: RunBounceback, remote_mx: RemoteMX
) -> None:
    postfix, service = _start(db_url, start_postfix, run_bounceback)
    api = _api(service)
    send_id = _send_to_every_case(api)

    # Watch the states as they change: the delayed recipients are pending for a while.
    seen: dict[str, set[str]] = {address: set() for address in CASES}

    def settled() -> bool:
        for address, row in _recipients(api, send_id).items():
            seen[address].add(str(row["state"]))
        return all(seen[a] & FINAL for a in CASES)

    wait_for(lambda: f"every recipient settled ({seen})\n{postfix.log_tail()}", settled, 60, 0.2)
    wait_for("Postfix's queue to drain", lambda: postfix.queued() == 0, 20)
    rows = _recipients(api, send_id)
    wrong = [
        (address, seen[address], rows[address])
        for address, case in CASES.items()
        if not _as_expected(case, rows[address], seen[address])
    ]
    assert not wrong, "\n".join(map(str, wrong))

    suppressed = api.get("/suppressions", params={"limit": 100}).json()["items"]
    assert {s["email"]: s["category"] for s in suppressed} == {
        a: c.category for a, c in CASES.items() if c.suppressed
    }
    for row in suppressed:
        assert row["reason"] == "hard_bounce" and row["scope"] == "account"
        assert CASES[row["email"]].response in row["detail"]
        contact = api.get(f"/contacts/{rows[row['email']]['contact_id']}").json()
        assert CASES[row["email"]].response in contact["hard_bounce_reason"]

    _check_events(api, send_id)
    # The greylisted message was refused once, then taken; the others only as they said.
    assert remote_mx.refused[f"greylist@{REMOTE}"] == 1
    assert remote_mx.accepted_for(f"greylist@{REMOTE}") == 1
    assert remote_mx.accepted_for(f"later@{REMOTE}") == 1
    assert remote_mx.refused[f"tempfail@{REMOTE}"] >= 3  # retried until given up
    # The operator's view: serve logs each stored bounce (and not aiosmtpd's every connection).
    log = service.log.read_text()
    assert "INFO bounceback.service.receivers.smtp: stored bounce" in log
    assert "mail.log" not in log


def _as_expected(case: Case, row: dict[str, object], states_seen: set[str]) -> bool:
    return (
        row["state"] == case.state
        and row["category"] == case.category
        and case.response in str(row["response"])
        and ("pending" in states_seen) == case.delayed
    )


def _check_events(api: httpx.Client, send_id: int) -> None:
    """Which notices came back, and how each found its delivery: Postfix's own notices by the
    signed VERP return path, the local refusal from bounceback's own SMTP session."""
    events = api.get("/bounces", params={"send_id": send_id, "limit": 100}).json()["items"]
    kinds: dict[str, list[str]] = {a: [] for a in CASES}
    for event in events:
        kinds[event["email"]].append(event["kind"])
        expected = "relay" if event["email"].endswith(LOCAL_DOMAIN) else "verp"
        assert event["matched_by"] == expected, event
    for address, case in CASES.items():
        got = sorted(kinds[address])
        final = "delivered" if case.state == "delivered" else "bounce"
        assert got.count(final) == 1, (address, got)
        if case.delayed:
            assert "delay" in got, (address, got)
        assert set(got) <= {final, "delay"}, (address, got)
