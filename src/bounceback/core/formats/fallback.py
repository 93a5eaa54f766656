"""Last resort for a notice from a mailer daemon that no detector recognised.

It reads the notice for addresses that sit next to a server's answer: an SMTP reply code or an
enhanced status code on the same or the following lines. It runs last and only on messages that
look like delivery notices (a daemon sender, or a bounce subject), so that ordinary mail that
quotes an address is never read as a bounce.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command, reply, status
from bounceback.core.taxonomy import Action

NAME = "fallback"

_DAEMON = re.compile(
    r"mailer[-_ ]?daemon|postmaster|mail delivery (?:system|subsystem|service)|"
    r"mail administrator|mmdf|delivery (?:status )?notification|no-?reply.*bounce|bounce",
    re.I,
)
_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|fail|problem|notification)|returned mail|"
    r"failure notice|non.?delivery|mail delivery failed|could not be delivered|"
    r"delivery has failed|returned to sender|mail system error|warning: could not send|"
    r"fehlgeschlagen|unzustellbar|non recapitabile|no entregado|配信|エラー|失败|退信",
    re.I,
)
_SERVER_ANSWER = re.compile(r"(?<![\d.])[245]\d\d(?![\d.])|(?<![\w.])[245]\.\d{1,3}\.\d{1,3}")


def looks_like_notice(mail: Mail) -> bool:
    return bool(_DAEMON.search(mail.sender) or _SUBJECT.search(mail.subject))


def detect(mail: Mail) -> list[Facts] | None:
    if not looks_like_notice(mail):
        return None
    notice = mail.notice
    own = {a.lower() for a in addr.find_addresses(mail.sender + " " + mail.header("To"))}
    lines = notice.split("\n")
    facts: list[Facts] = []
    seen: set[str] = set()
    for i, line in enumerate(lines[:2000]):
        for address in addr.find_addresses(line, limit=5):
            key = address.lower()
            if key in seen or key in own:
                continue
            context = " ".join(lines[i : i + 4])
            if not _SERVER_ANSWER.search(context):
                continue
            seen.add(key)
            diagnostic = " ".join(context.split())  # whitespace collapsed to single spaces
            facts.append(
                Facts(
                    address=address,
                    action=Action.FAILED,
                    status=status.find_status(diagnostic),
                    reply_code=reply.find_reply_code(diagnostic),
                    diagnostic=diagnostic,
                    smtp_command=command.find_command(diagnostic),
                )
            )
    return facts or None
