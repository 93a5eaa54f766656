"""RFC 3834 auto-replies are never bounces, and bounces are never auto-replies."""

from __future__ import annotations

import pytest

from bounceback import Kind, Reason, parse

from support import SAMPLES


def _mail(headers: str, body: str = "I am away until Monday.") -> bytes:
    return (headers.strip() + "\n\n" + body + "\n").encode()


@pytest.mark.parametrize(
    "headers",
    [
        "From: Ann <ann@example.org>\nSubject: Re: news\nAuto-Submitted: auto-replied",
        "From: ann@example.org\nSubject: news\nX-Autoreply: yes",
        "From: ann@example.org\nSubject: news\nPrecedence: auto_reply",
        "From: ann@example.org\nSubject: Out of Office: news",
        "From: ann@example.org\nSubject: Automatic reply: news",
        "From: ann@example.org\nSubject: Auto: news",
        "From: ann@example.org\nSubject: Abwesenheitsnotiz: news",
    ],
)
def test_auto_replies(headers: str) -> None:
    report = parse(_mail(headers))
    assert report.kind is Kind.AUTO_REPLY
    (recipient,) = report.recipients
    assert recipient.address == "ann@example.org"
    assert recipient.reason is Reason.AUTO_REPLY
    assert not report.is_bounce


def test_ordinary_mail_is_not_a_bounce() -> None:
    report = parse(
        _mail("From: ann@example.org\nSubject: lunch?", "Lunch at noon? bob@example.org")
    )
    assert report.kind is Kind.NOT_BOUNCE
    assert report.recipients == ()


def test_exim_bounce_with_auto_replied_header_is_a_bounce() -> None:
    raw = (SAMPLES / "exim" / "remote_550-failed.eml").read_bytes()
    assert b"Auto-Submitted: auto-replied" in raw
    assert parse(raw).kind is Kind.BOUNCE


def test_daemon_message_is_not_an_auto_reply() -> None:
    raw = _mail(
        "From: MAILER-DAEMON@example.org\nSubject: hello\nAuto-Submitted: auto-replied",
        "Nothing here.",
    )
    assert parse(raw).kind is not Kind.AUTO_REPLY
