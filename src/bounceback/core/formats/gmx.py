"""GMX, WEB.DE and 1&1 (IONOS): the notices of United Internet's mail platform.

They open with Exim's sentence ("This message was created automatically by mail delivery
software.") but the rest is their own: the returned headers follow "--- The header of the
original message is following. ---", and each failed address is followed by the server's answer
in one of these shapes::

    "kijitora@example.jp":
    SMTP error from remote server after RCPT command:
    host: mx.example.jp
    5.1.1 <kijitora@example.jp>... User Unknown

    kijitora@example.fr:
    SMTP error from remote server for TEXT command, host: smtp-in.orange.fr (192.0.2.65)
    reason: 550 5.2.0 Mail rejete. Mail rejected. ofr_506 [506]

    kijitora@example.org

    For the following reason:

    Mail size limit exceeded. For explanation visit http://postmaster.1and1.com/...
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "gmx"

_MARKER = "--- the header of the original message is following. ---"
_START = re.compile(r"following\s+address(?:\(es\)|es)?\s+failed:", re.I)
_ADDRESS_LINE = re.compile(r'^"?<?([^\s"<>@]+@[^\s"<>@]+?)>?"?:?$')
_HOST = re.compile(r"\bhost:\s*([\w.-]+)", re.I)
_COMMAND = re.compile(r"\b(?:after|for)\s+(\w+)\s+command\b", re.I)
_REASON = re.compile(r"\breason:\s*", re.I)
# Words of the platform around the server's answer, not part of it.
_FRAME = re.compile(
    r"^(?:smtp error from remote server\b.*|host:\s*\S+|for the following reason:)$", re.I
)
# The platform's "TEXT" command is the message text, i.e. SMTP DATA.
_COMMANDS = {
    "rcpt": "RCPT",
    "mail": "MAIL",
    "text": "DATA",
    "data": "DATA",
    "helo": "HELO",
    "ehlo": "HELO",
    "connect": "CONN",
}


def detect(mail: Mail) -> list[Facts] | None:
    if "mailer-daemon" not in mail.sender_lower:
        return None
    text = mail.text
    end = mail.text_lower.find(_MARKER)
    if end < 0:
        return None
    start = _START.search(text, 0, end)
    if start is None:
        return None
    blocks = _blocks(text[start.end() : end])
    return [_fact(address, lines) for address, lines in blocks] or None


def _blocks(section: str) -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for line in section.split("\n")[:1000]:
        body = line.strip()
        if not body:
            continue
        match = _ADDRESS_LINE.match(body)
        if match and addr.is_address(addr.clean(match.group(1))):
            blocks.append((addr.clean(match.group(1)), []))
        elif blocks:
            blocks[-1][1].append(body)
    return blocks


def _fact(address: str, lines: list[str]) -> Facts:
    joined = " ".join(lines)
    host = _HOST.search(joined)
    command = _COMMAND.search(joined)
    reason = _REASON.search(joined)
    if reason:
        answer = joined[reason.end() :]
    else:
        answer = " ".join(line for line in lines if not _FRAME.match(line))
    return facts(
        address,
        squash(answer),
        remote_mta=host.group(1) if host else "",
        smtp_command=_COMMANDS.get(command.group(1).lower(), "") if command else "",
    )
