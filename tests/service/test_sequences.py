"""Sequences on SQLite and PostgreSQL, sent through the user's own SMTP server (a real one on
loopback): steps at their time in one thread, enrolment refusals, unenrolment on a bounce and by
a user, and the functions the inbox poller calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import (
    DirectMessage,
    Enrollment,
    EnrollmentState,
    SuppressionReason,
    TimelineEntry,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import sequences, suppression
from bounceback.service.domain.errors import NotFound

from api_support import make_client, session_creds
from outbound_support import RelayHandler
from outreach_support import (
    Sales,
    make_due,
    page,
    parsed,
    run_jobs,
    sales_team,
    submission_server,
    submit,
)

CARL, DORA = "carl@client.example", "dora@client.example"
THREE_STEPS: dict[str, Any] = {
    "name": "Q3 outreach",
    "steps": [
        {"subject": "A quick question", "body": "Hi {step 1}", "delay_seconds": 0},
        {"subject": "", "body": "Just bumping this (step 2)", "delay_seconds": 2 * 86400},
        {"subject": "Last try", "body": "Closing the loop (step 3)", "delay_seconds": 3 * 86400},
    ],
}


def _create(client: TestClient, team: Sales, body: dict[str, Any] = THREE_STEPS) -> int:
    answer = client.post("/api/sequences", json=body, headers=session_creds(team.user_id).headers)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _enroll(client: TestClient, team: Sales, sequence_id: int, address: str) -> Response:
    return client.post(
        f"/api/sequences/{sequence_id}/enrollments",
        json={"contact_id": team.contact_ids[address]},
        headers=session_creds(team.user_id).headers,
    )


def _enrollment(factory: sessionmaker[Session], enrollment_id: int) -> Enrollment:
    with factory() as session:
        row = session.get(Enrollment, enrollment_id)
        assert row is not None
        return row


def test_three_steps_at_their_time_in_one_thread(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        received = server.relay_handler.received
        team = sales_team(factory, settings, server.port, [CARL])
        sequence_id = _create(client, team)
        enrolled = _enroll(client, team, sequence_id, CARL)
        assert enrolled.status_code == 201, enrolled.text
        enrollment_id = enrolled.json()["id"]

        run_jobs(factory, settings)
        assert len(received) == 1  # step 1 at once; step 2 in two days
        assert _enrollment(factory, enrollment_id).next_position == 2
        run_jobs(factory, settings)
        assert len(received) == 1
        make_due(factory)
        run_jobs(factory, settings)
        assert len(received) == 2
        make_due(factory)
        run_jobs(factory, settings)
        assert len(received) == 3
        make_due(factory)
        assert run_jobs(factory, settings) == 0  # nothing left to do
    first, second, third = (parsed(t) for t in received)
    assert all(t.mail_from == "ann@inbox.test" and t.rcpt_to == [CARL] for t in received)
    assert first["Subject"] == "A quick question" and first["In-Reply-To"] is None
    thread = first["Message-ID"]
    assert second["Subject"] == "Re: A quick question"
    assert third["Subject"] == "Last try"
    for later in (second, third):
        assert later["In-Reply-To"] == thread and later["References"] == thread
        assert later["Message-ID"] != thread
    assert "step 2" in second.get_content()
    row = _enrollment(factory, enrollment_id)
    assert row.state is EnrollmentState.FINISHED and row.thread_message_id == thread
    listed = client.get(
        f"/api/sequences/{sequence_id}/enrollments", headers=session_creds(team.user_id).headers
    ).json()
    assert [(e["id"], e["state"]) for e in listed["items"]] == [(enrollment_id, "finished")]
    detail = client.get(
        f"/api/sequences/{sequence_id}", headers=session_creds(team.user_id).headers
    ).json()
    assert [s["position"] for s in detail["steps"]] == [1, 2, 3]
    assert detail["enrollments"]["finished"] == 1
    with factory() as session:
        kinds = session.scalars(
            sa.select(TimelineEntry.kind)
            .where(TimelineEntry.contact_id == team.contact_ids[CARL])
            .order_by(TimelineEntry.id)
        ).all()
    assert kinds == ["enrolled", "email_sent", "email_sent", "email_sent", "sequence_finished"]


def test_a_bounced_step_unenrolls_and_nothing_more_is_sent(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    handler = RelayHandler(dsn=False, rcpt={"carl": "550 5.1.1 <{addr}>: User unknown"})
    with submission_server(handler) as server:
        team = sales_team(factory, settings, server.port, [CARL])
        enrollment_id = _enroll(client, team, _create(client, team), CARL).json()["id"]
        for _ in range(3):
            make_due(factory)
            run_jobs(factory, settings)
        assert handler.received == []
    row = _enrollment(factory, enrollment_id)
    assert row.state is EnrollmentState.BOUNCED and "550 5.1.1" in row.ended_reason
    with factory() as session:
        statuses = session.scalars(sa.select(DirectMessage.status)).all()
    assert statuses == ["bounced"]


def test_the_poller_finds_the_enrollment_of_a_step_and_unenrolls_it(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """What the inbox poller does on a reply or an NDR of step 1: no step 2 or 3 follows."""
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        enrollment_id = _enroll(client, team, _create(client, team), CARL).json()["id"]
        run_jobs(factory, settings)
        step_one = parsed(server.relay_handler.received[0])["Message-ID"]
        with transaction(factory) as session:
            found = sequences.enrollment_for_message(session, step_one)
            assert found is not None and found.id == enrollment_id
            assert sequences.enrollment_for_message(session, step_one.strip("<>")) is not None
            assert sequences.enrollment_for_message(session, "<other@example.com>") is None
            sequences.unenroll(
                session, team.account_id, found.id, EnrollmentState.REPLIED, "Carl replied"
            )
        with transaction(factory) as session:  # a second notice changes nothing
            again = sequences.unenroll(
                session, team.account_id, enrollment_id, EnrollmentState.BOUNCED, "late NDR"
            )
            assert again.state is EnrollmentState.REPLIED
        for _ in range(3):
            make_due(factory)
            run_jobs(factory, settings)
        assert len(server.relay_handler.received) == 1
    row = _enrollment(factory, enrollment_id)
    assert row.state is EnrollmentState.REPLIED and row.ended_reason == "Carl replied"


def test_enrolling_a_bounced_contact_is_refused_with_the_reason(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL, DORA, "eve@client.example"])
        sequence_id = _create(client, team)
        with transaction(factory) as session:
            suppression.suppress(
                session, team.account_id, CARL, SuppressionReason.HARD_BOUNCE, detail="550"
            )
            suppression.suppress(session, None, DORA, SuppressionReason.GLOBAL_BOUNCE)
        carl = _enroll(client, team, sequence_id, CARL)
        assert carl.status_code == 409
        assert "account_bounce" in carl.json()["error"]["message"]
        dora = _enroll(client, team, sequence_id, DORA)
        assert dora.status_code == 409
        assert "global_bounce" in dora.json()["error"]["message"]
        eve = _enroll(client, team, sequence_id, "eve@client.example")
        assert eve.status_code == 201
        twice = _enroll(client, team, sequence_id, "eve@client.example")
        assert twice.status_code == 409
        with transaction(factory) as session, pytest.raises(sequences.EnrollRefused) as refused:
            sequences.enroll(
                session, team.account_id, sequence_id, team.contact_ids[CARL], team.user_id
            )
        assert refused.value.reason.value == "account_bounce"
        no_mailbox = client.post(
            f"/api/sequences/{sequence_id}/enrollments",
            json={"contact_id": team.contact_ids["eve@client.example"]},
            headers=session_creds(team.admin_id).headers,
        )
        assert no_mailbox.status_code == 409
        assert "no mailbox" in no_mailbox.json()["error"]["message"]
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Enrollment)) == 1


def test_a_contact_that_bounces_meanwhile_gets_no_further_step(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        enrollment_id = _enroll(client, team, _create(client, team), CARL).json()["id"]
        run_jobs(factory, settings)
        with transaction(factory) as session:  # a marketing send to Carl hard-bounced
            suppression.suppress(session, team.account_id, CARL, SuppressionReason.HARD_BOUNCE)
        make_due(factory)
        run_jobs(factory, settings)
        assert len(server.relay_handler.received) == 1
    row = _enrollment(factory, enrollment_id)
    assert row.state is EnrollmentState.BOUNCED and "bounced in this account" in row.ended_reason


def test_a_user_unenrolls_over_the_api(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        enrollment_id = _enroll(client, team, _create(client, team), CARL).json()["id"]
        run_jobs(factory, settings)
        answer = client.post(
            f"/api/enrollments/{enrollment_id}/unenroll",
            json={"reason": "met at the fair"},
            headers=session_creds(team.user_id).headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "stopped"
        make_due(factory)
        run_jobs(factory, settings)
        assert len(server.relay_handler.received) == 1
    contact = client.get(
        f"/api/contacts/{team.contact_ids[CARL]}/enrollments",
        headers=session_creds(team.user_id).headers,
    ).json()
    assert contact["items"][0]["ended_reason"] == "met at the fair"


def test_a_step_runs_once_and_a_job_run_early_waits(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL])
        enrollment_id = _enroll(client, team, _create(client, team), CARL).json()["id"]
        payload = {"enrollment_id": enrollment_id, "position": 1, "attempt": 0}
        sequences.run_step(factory, settings, payload)
        sequences.run_step(factory, settings, payload)  # the same job again: nothing
        assert len(server.relay_handler.received) == 1
        # Step 2's job run before its time (a clock ahead): it sends nothing and comes back.
        sequences.run_step(factory, settings, {**payload, "position": 2})
        assert len(server.relay_handler.received) == 1
        assert _enrollment(factory, enrollment_id).next_position == 2
        make_due(factory)
        run_jobs(factory, settings)
        assert len(server.relay_handler.received) == 2


def test_steps_are_checked(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, 9, [CARL])
    headers = session_creds(team.user_id).headers
    bad = [
        {"name": "x", "steps": []},
        {"name": "x", "steps": [{"subject": "", "body": "no subject on step 1"}]},
        {"name": "x", "steps": [{"subject": "s", "body": " "}]},
        {"name": "x", "steps": [{"subject": "s", "body": "b", "delay_seconds": -1}]},
        {"name": " ", "steps": [{"subject": "s", "body": "b"}]},
    ]
    for body in bad:
        assert client.post("/api/sequences", json=body, headers=headers).status_code == 422, body
    with transaction(factory) as session, pytest.raises(NotFound):
        sequences.enroll(session, team.account_id, 987654, team.contact_ids[CARL], team.user_id)


def test_another_accounts_contact_cannot_be_enrolled(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client, settings = make_client(factory, tmp_path)
    team = sales_team(factory, settings, 9, [CARL])
    rival = sales_team(factory, settings, 9, [DORA], name="Rival")
    own_sequence = _create(client, rival)
    answer = client.post(
        f"/api/sequences/{own_sequence}/enrollments",
        json={"contact_id": team.contact_ids[CARL]},
        headers=session_creds(rival.user_id).headers,
    )
    assert answer.status_code == 404 and CARL not in answer.text
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Enrollment)) == 0


def test_sequence_pages(factory: sessionmaker[Session], tmp_path: Path) -> None:
    client, settings = make_client(factory, tmp_path)
    with submission_server() as server:
        team = sales_team(factory, settings, server.port, [CARL, DORA])
        listing = page(client, team.user_id, "/sequences")
        assert listing.status_code == 200 and "No sequence yet" in listing.text
        refused = submit(
            client,
            team.user_id,
            "/sequences",
            {"name": "Demo", "subject": ["", ""], "body": ["Hello", ""], "delay": ["0", ""]},
        )
        assert refused.status_code == 422 and "first step needs a subject" in refused.text
        created = submit(
            client,
            team.user_id,
            "/sequences",
            {
                "name": "Demo follow-up",
                "subject": ["Hello there", "", ""],
                "body": ["Step one", "Step two", ""],
                "delay": ["0", "2", ""],
                "unit": ["days", "hours", "days"],
            },
        )
        assert created.status_code == 303, created.text
        url = created.headers["location"]
        sequence_id = int(url.rsplit("/", 1)[1])
        with factory() as session:
            steps = sequences.steps_of(session, sequence_id)
        assert [(s.position, s.delay_seconds) for s in steps] == [(1, 0), (2, 7200)]
        with transaction(factory) as session:
            suppression.suppress(session, team.account_id, DORA, SuppressionReason.HARD_BOUNCE)
        dora = submit(
            client,
            team.user_id,
            f"/contacts/{team.contact_ids[DORA]}/enroll",
            {"sequence_id": str(sequence_id)},
        )
        assert dora.status_code == 409 and "bounced in this account" in dora.text
        carl = submit(
            client,
            team.user_id,
            f"/contacts/{team.contact_ids[CARL]}/enroll",
            {"sequence_id": str(sequence_id)},
        )
        assert carl.status_code == 303
        run_jobs(factory, settings)
        detail = page(client, team.user_id, url)
        assert "Demo follow-up" in detail.text and CARL in detail.text
        assert "step 2" in detail.text and "Unenroll" in detail.text
        with factory() as session:
            enrollment = session.scalars(sa.select(Enrollment)).one()
        stop = submit(client, team.user_id, f"/enrollments/{enrollment.id}/unenroll", {"next": url})
        assert stop.status_code == 303 and stop.headers["location"] == url
        assert "stopped" in page(client, team.user_id, url).text
        assert "Demo follow-up" in page(client, team.user_id, "/sequences").text
        rival = sales_team(factory, settings, server.port, ["x@rival.example"], name="Rival")
        assert page(client, rival.user_id, url).status_code == 404
        assert "Demo follow-up" not in page(client, rival.user_id, "/sequences").text
