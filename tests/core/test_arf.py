"""RFC 5965 feedback reports are complaints, never bounces."""

from __future__ import annotations

from bounceback import Category, Kind, Reason, parse

ARF = b"""\
From: feedback@isp.example
To: abuse@app.example
Subject: Complaint about message from 192.0.2.1
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="part"

--part
Content-Type: text/plain

This is an email abuse report.
--part
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces+abc@bounce.app.example>
Original-Rcpt-To: <user@isp.example>
Reporting-MTA: dns; mail.isp.example

--part
Content-Type: message/rfc822

From: news@app.example
To: user@isp.example
Message-ID: <n1@app.example>
Subject: Our news

Hello
--part--
"""


def test_abuse_report() -> None:
    report = parse(ARF)
    assert report.kind is Kind.COMPLAINT
    assert report.detector == "arf"
    (recipient,) = report.recipients
    assert recipient.address == "user@isp.example"
    assert recipient.reason is Reason.FEEDBACK
    assert recipient.category is Category.COMPLAINT
    assert recipient.feedback_type == "abuse"
    assert recipient.reporting_mta == "mail.isp.example"
    assert report.original.message_id == "<n1@app.example>"


def test_recipient_from_returned_message_when_report_has_none() -> None:
    raw = ARF.replace(b"Original-Rcpt-To: <user@isp.example>\n", b"")
    raw = raw.replace(b"Feedback-Type: abuse", b"Feedback-Type: opt-out")
    (recipient,) = parse(raw).recipients
    assert recipient.address == "user@isp.example"
    assert recipient.feedback_type == "opt-out"
