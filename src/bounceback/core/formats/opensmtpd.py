"""OpenSMTPD's delivery status notifications.

    Hi!

    This is the MAILER-DAEMON, please DO NOT REPLY to this email.

    An error has occurred while attempting to deliver a message for
    the following list of recipients:

kijitora@example.jp: 550 5.1.1 <kijitora@example.jp>... User Unknown

    Below is a copy of the original message:

A delay warning says "A message is delayed for more than 4h for the following list of
recipients:" instead. Recent versions attach a delivery-status part whose recipients carry no
diagnostic, so this detector runs before RFC 3464 and keeps only the report's status code.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats import _mta
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import status as st
from bounceback.core.taxonomy import Action

NAME = "opensmtpd"

_SIGNATURE = re.compile(r"this is the mailer-daemon, please do not reply to this e-?mail", re.I)
_START = re.compile(
    r"(?:an error has occurred while attempting to deliver a message for|"
    r"a message is delayed for more than \S+ for)\s+the\s+following\s+list\s+of\s+recipients:",
    re.I,
)
_END = re.compile(
    r"^\s*(?:below is a copy of the original message|please note that this is)", re.I | re.M
)
_LINE = re.compile(r"^(\S+@\S+?):\s+(.*)$")


def detect(mail: Mail) -> list[Facts] | None:
    if not (
        mail.subject_lower.startswith("delivery status notification")
        or "mailer-daemon" in mail.sender_lower
    ):
        return None
    text = mail.text
    if not mail.mentions("please do not reply") or not _SIGNATURE.search(text[:2000]):
        return None
    start = _START.search(text)
    if start is None:
        return None
    section = text[start.end() :]
    end = _END.search(section)
    section = section[: end.start()] if end else section
    action = Action.DELAYED if "is delayed for" in start.group(0).lower() else Action.FAILED
    reported = {f.address.lower(): f.status for f in _mta.dsn_facts(mail)}
    found: list[Facts] = []
    for line in section.split("\n")[:1000]:
        match = _LINE.match(line.strip())
        if not match:
            continue
        address, diagnostic = addr.clean(match.group(1)), match.group(2)
        status = st.more_specific(reported.get(address.lower(), ""), diagnostic)
        found.append(
            facts(
                address,
                diagnostic,
                action=action,
                status_code=status,
                remote_mta=_mta.remote_host(diagnostic),
            )
        )
    return found or None
