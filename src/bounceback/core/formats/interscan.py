"""Trend Micro InterScan Messaging Security Suite (IMSS): "Mail could not be delivered".

From "InterScan Notification" (or a text naming "InterScan Messaging Security Suite"), in one of
two shapes. The SMTP exchange, when the product quotes it::

    Sent <<< RCPT TO:<kijitora@example.co.jp>
    Received >>> 550 5.1.1 <kijitora@example.co.jp>... user unknown

or only its fixed sentence, which it writes when the destination refused the recipient
addresses::

    Unable to deliver message to <kijitora@example.jp> (and other recipients in the same
    domain). Please check if address is correct.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command
from bounceback.core.taxonomy import Reason

NAME = "interscan"

_SIGNATURE = re.compile(r"interscan", re.I)
_UNABLE = re.compile(r"unable to deliver message to <([^<>\s]+@[^<>\s]+)>[^\n]*", re.I)
_SENT = re.compile(r"^\s*sent <<<\s*(.+)$", re.I | re.M)
_RECEIVED = re.compile(r"^\s*received >>>\s*(.+)$", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not (
        _SIGNATURE.search(mail.sender)
        or _SIGNATURE.search(mail.content_type)
        or (
            "interscan messaging security suite" in mail.text_lower
            and "interscan messaging security suite" in mail.notice_lower
        )
    ):
        return None
    notice = mail.notice
    received = _RECEIVED.findall(notice)
    if received:
        return _exchange(notice, received)
    out: list[Facts] = []
    for match in _UNABLE.finditer(notice):
        out.append(
            facts(
                addr.clean(match.group(1)),
                squash(match.group(0)),
                reason_hint=Reason.USER_UNKNOWN,
                hint_rule="interscan.unable-to-deliver",
            )
        )
    return out or None


def _exchange(notice: str, received: list[str]) -> list[Facts] | None:
    sent = _SENT.findall(notice)
    last_command = command.find_command(f">>> {sent[-1]}") if sent else ""
    rcpt = " ".join(line for line in sent if line.upper().startswith("RCPT"))
    recipients = addr.find_addresses(rcpt) or addr.find_addresses(received[-1])
    diagnostic = squash(received[-1])
    out = [facts(a, diagnostic, smtp_command=last_command) for a in recipients]
    return out or None
