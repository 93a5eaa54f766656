"""SMTP reply codes and enhanced status codes found in free text."""

from __future__ import annotations

import pytest

from bounceback.core.standards.command import find_command
from bounceback.core.standards.reply import find_reply_code
from bounceback.core.standards.status import find_status, normalize


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("550 5.1.1 <a@b.example>: Recipient address rejected", "550"),
        ("host mx.example.com[192.0.2.1] said: 554 5.7.1 refused", "554"),
        ("<<< 421 4.7.0 try again later", "421"),
        ("550-5.7.1 [192.0.2.1] Our system has detected", "550"),
        ("Remote server said (552) quota exceeded", "552"),
        # Not registered reply codes: a server's private numbers.
        ("426 connection timed out", ""),
        ("542 kijitora@example.com Rejected", ""),
        ("522 5.2.0 quota", ""),
        # Numbers that are not replies at all.
        ("queued as 550A3B; 2 recipients", ""),
        ("", ""),
    ],
)
def test_reply_codes(text: str, code: str) -> None:
    assert find_reply_code(text) == code


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 5.1.1 user unknown", "5.1.1"),
        ("(#5.7.1)", "5.7.1"),
        ("[4.7.0] deferred", "4.7.0"),
        ("connect to 192.5.0.2: refused", ""),
        ("version 4.1.2.7", ""),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound", "5.1.10"),
    ],
)
def test_status_codes(text: str, status: str) -> None:
    assert find_status(text) == status


def test_status_field() -> None:
    assert normalize("5.1.1 (user unknown)") == "5.1.1"
    assert normalize("unknown") == ""


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("550 5.1.1 unknown (in reply to RCPT TO command)", "RCPT"),
        ("SMTP error from remote mail server after end of data: 554", "DATA"),
        ("SMTP error from remote mail server after MAIL FROM:<a@b> SIZE=1: 553", "MAIL"),
        ("lost connection while receiving the initial server greeting", "CONN"),
        (">>> DATA\n<<< 550 rejected", "DATA"),
        ("550 5.1.1 user unknown", ""),
    ],
)
def test_commands(text: str, command: str) -> None:
    assert find_command(text) == command
