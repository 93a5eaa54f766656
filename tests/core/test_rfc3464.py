"""The RFC 3464 delivery-status reader, on hand-written reports that exercise the RFC's corners."""

from __future__ import annotations

from bounceback import Action, Kind, Reason, parse
from bounceback.core.standards.rfc3464 import facts_from_block, parse_fields, typed_value

REPORT = """\
Reporting-MTA: dns; mx.example.net
Original-Envelope-ID: env-123
Arrival-Date: Mon, 30 Nov 2026 04:50:22 +0000

Original-Recipient: rfc822;First@Example.org
Final-Recipient: RFC822; <first@example.org>
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <first@example.org>:
 Recipient address rejected: User unknown
\tin virtual mailbox table
Last-Attempt-Date: Mon, 30 Nov 2026 04:50:22 +0000
Final-Recipient: rfc822; second@example.org
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full
"""


def test_fields_blocks_and_continuation_lines() -> None:
    per_message, recipients = parse_fields(REPORT)
    assert per_message["reporting-mta"] == "dns; mx.example.net"
    assert per_message["original-envelope-id"] == "env-123"
    # The second recipient follows the first without a blank line: still two recipients.
    assert len(recipients) == 2
    diag = recipients[0]["diagnostic-code"]
    assert diag.endswith("User unknown in virtual mailbox table")


def test_facts_from_block() -> None:
    per_message, recipients = parse_fields(REPORT)
    first = facts_from_block(recipients[0], per_message)
    assert first is not None
    assert first.address == "first@example.org"
    assert first.original_recipient == ""  # same address, other case: not repeated
    assert first.action is Action.FAILED
    assert (first.status, first.reply_code) == ("5.1.1", "550")
    assert first.remote_mta == "mx.example.org"
    assert first.reporting_mta == "mx.example.net"


def test_typed_value() -> None:
    assert typed_value("smtp; 550 no") == ("smtp", "550 no")
    assert typed_value("550 no; really") == ("", "550 no; really")
    assert typed_value("X-Postfix; host said") == ("x-postfix", "host said")


def test_generic_status_gives_way_to_the_diagnostic() -> None:
    # Exim writes Status: 5.0.0 and the real code in the Diagnostic-Code.
    _, blocks = parse_fields(
        "Final-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 5.2.2 mailbox full\n"
    )
    facts = facts_from_block(blocks[0], {})
    assert facts is not None and facts.status == "5.2.2"


def _dsn(report: str, cte: str = "7bit") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+tok123@bounce.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        f"--B\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
        f"{report}\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Message-ID: <m1@app.example>\r\nFrom: App <news@app.example>\r\nTo: first@example.org\r\n"
        "Subject: =?utf-8?q?Caf=C3=A9_news?=\r\nX-Bounceback-Delivery: d-42\r\n\r\n--B--\r\n"
    ).encode()


def test_whole_dsn_with_returned_headers() -> None:
    report = parse(_dsn(REPORT.replace("\n", "\r\n")))
    assert report.kind is Kind.BOUNCE
    assert report.detector == "rfc3464"
    assert [r.address for r in report.recipients] == ["first@example.org", "second@example.org"]
    first, second = report.recipients
    assert first.reason is Reason.USER_UNKNOWN and first.permanent and first.hard
    assert second.reason is Reason.MAILBOX_FULL and not second.permanent
    assert report.original.message_id == "<m1@app.example>"
    assert report.original.subject == "Café news"
    assert report.original.envelope_id == "env-123"
    assert report.original.header("X-Bounceback-Delivery") == "d-42"
    assert report.verp_token == "tok123"


def test_quoted_printable_delivery_status() -> None:
    qp = REPORT.replace("Remote-MTA: dns; mx.example.org", "Remote-MTA: dns; mx.exam=\nple.org")
    report = parse(_dsn(qp, "quoted-printable"))
    assert report.recipients[0].remote_mta == "mx.example.org"


def test_delay_only_report_is_a_delay() -> None:
    report = parse(
        _dsn(
            "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@example.org\nAction: delayed\n"
            "Status: 4.4.1\nDiagnostic-Code: smtp; 421 4.4.1 connection timed out\n"
        )
    )
    assert report.kind is Kind.DELAY
    assert report.recipients[0].action is Action.DELAYED


def test_success_notice_is_delivered() -> None:
    report = parse(
        _dsn(
            "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@example.org\nAction: relayed\n"
            "Status: 2.0.0\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued\n"
        )
    )
    assert report.kind is Kind.DELIVERED
    assert report.recipients[0].reason is Reason.DELIVERED


def test_the_servers_own_code_is_preferred_to_the_mtas_summary() -> None:
    # Sendmail summarises a server's "550 5.1.1" as Status 5.7.1 in some set-ups.
    _, blocks = parse_fields(
        "Final-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 5.7.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <a@b.example>... User unknown\n"
    )
    facts = facts_from_block(blocks[0], {})
    assert facts is not None and facts.status == "5.1.1"
    # A code of another class in the text is an earlier attempt, not the final answer.
    _, blocks = parse_fields(
        "Final-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 5.4.7\n"
        "Diagnostic-Code: smtp; 451 4.4.1 timed out\n"
    )
    facts = facts_from_block(blocks[0], {})
    assert facts is not None and facts.status == "5.4.7"


def test_a_permanent_answer_wins_over_a_temporary_summary() -> None:
    _, blocks = parse_fields(
        "Final-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 4.5.0\n"
        "Diagnostic-Code: smtp; 550 5.5.0 Service refuse\n"
    )
    facts = facts_from_block(blocks[0], {})
    assert facts is not None and facts.status == "5.5.0"
