"""Yahoo! Mail's (and AOL's, which runs on the same servers) own failure notice.

Subject "Failure Notice", from MAILER-DAEMON, no delivery-status part::

    Sorry, we were unable to deliver your message to the following address.

    <kijitora@example.org>:
    Remote host said: 550 5.1.1 <kijitora@example.org>... User Unknown [RCPT_TO]

    --- Below this line is a copy of the message.

The answer may also be written "550: 5.2.2 ... Mailbox Full" (reply code and colon) or be
Yahoo's own sentence ("No mx record found for domain=example.org"). The bracketed tag names the
SMTP command: [CONNECT], [HELO], [MAIL_FROM], [RCPT_TO], [DATA] (or [BODY]).
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "yahoo"

_START = "sorry, we were unable to deliver your message to the following address"
_RECIPIENT = re.compile(r"^\s*<([^<>\s]+@[^<>\s]+)>:\s*$", re.M)
_SAID = re.compile(r"^remote host said:\s*", re.I)
_REPLY = re.compile(r"^([245]\d\d):")  # "550: 5.2.2 <a@b>... Mailbox Full"
_TAG = re.compile(r"\[(CONNECT|HELO|EHLO|MAIL_FROM|RCPT_TO|DATA|BODY)\]")
_TAG_COMMANDS = {
    "CONNECT": "CONN",
    "HELO": "HELO",
    "EHLO": "HELO",
    "MAIL_FROM": "MAIL",
    "RCPT_TO": "RCPT",
    "DATA": "DATA",
    "BODY": "DATA",
}
# Yahoo's own sentences (not a remote server's answer) and what Yahoo means by them.
_FIXED: tuple[tuple[str, str, Reason], ...] = (
    # "No mx record found for domain=example.org": the domain publishes no mail exchanger, and
    # Yahoo does not fall back to its address record, so the domain takes no mail from Yahoo.
    ("no mx record found for domain", "yahoo.no-mx", Reason.NOT_ACCEPTING),
)


def detect(mail: Mail) -> list[Facts] | None:
    if "mailer-daemon" not in mail.sender_lower and "failure notice" not in mail.subject_lower:
        return None
    text = mail.notice
    start = mail.notice_lower.find(_START)
    if start < 0:
        return None
    body = text[start:]
    matches = list(_RECIPIENT.finditer(body))
    found: list[Facts] = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        answer = squash(_SAID.sub("", body[match.end() : end].strip().split("\n\n")[0].strip()))
        tag = _TAG.search(answer)
        reply = _REPLY.match(answer)
        lower = answer.lower()
        hint = next(((r, reason) for phrase, r, reason in _FIXED if phrase in lower), None)
        found.append(
            facts(
                addr.clean(match.group(1)),
                answer,
                reply_code=reply.group(1) if reply else "",
                smtp_command=_TAG_COMMANDS[tag.group(1)] if tag else "",
                reason_hint=hint[1] if hint else None,
                hint_rule=hint[0] if hint else "",
            )
        )
    return found or None
