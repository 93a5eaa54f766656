"""The DragonFly Mail Agent (dma)'s bounce.

    This is the DragonFly Mail Agent v0.13 at df.example.jp.

    There was an error delivering your mail to <kijitora@example.jp>.

    mx.example.jp [192.0.2.25] did not like our RCPT TO:
    550 5.1.1 <kijitora@example.jp>: Recipient address rejected: User unknown

    Message headers follow.

One recipient per bounce; dma's sentence "did not like our <command>" names the SMTP command.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.formats._mta import unfold
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "dma"

_SIGNATURE = re.compile(r"this is the dragonfly mail agent\b", re.I)
_RECIPIENT = re.compile(r"there was an error delivering your mail to <([^<>\s]+)>\.?", re.I)
_END = re.compile(r"^\s*(?:message headers follow|original message follows)\.?\s*$", re.I | re.M)
_COMMAND = re.compile(
    r"\[[^\]]*\] did not like our (final data|data|rcpt to|mail from|ehlo|helo|auth|starttls)",
    re.I,
)
_COMMANDS = {
    "final data": "DATA",
    "data": "DATA",
    "rcpt to": "RCPT",
    "mail from": "MAIL",
    "ehlo": "HELO",
    "helo": "HELO",
    "auth": "AUTH",
    "starttls": "STARTTLS",
}
_HOST = re.compile(r"^(\S+) \[[^\]]*\] did not like our", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if "mailer-daemon" not in mail.sender_lower and "mail delivery failed" not in (
        mail.subject_lower
    ):
        return None
    text = mail.text
    if not mail.mentions("dragonfly mail agent") or not _SIGNATURE.search(text[:1000]):
        return None
    match = _RECIPIENT.search(text)
    if match is None:
        return None
    body = text[match.end() :]
    end = _END.search(body)
    diagnostic = unfold(body[: end.start()] if end else body[:2000])
    command = _COMMAND.search(diagnostic)
    host = _HOST.search(diagnostic)
    return [
        facts(
            addr.clean(match.group(1)),
            diagnostic,
            smtp_command=_COMMANDS[command.group(1).lower()] if command else "",
            remote_mta=host.group(1) if host else "",
        )
    ]
