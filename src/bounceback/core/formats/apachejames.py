"""Apache James: its bounce notice, with the server's answer and the envelope in fixed fields.

::

    Error: Invalid user address

    Error message below:
    550 - Requested action not taken: no such user here

    Message details:
      Subject: Test message
      MAIL FROM: kijitora@example.com
      RCPT TO: 000000000000@vtext.example.com
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "apachejames"

_BELOW = re.compile(r"^error message below:\s*$", re.I | re.M)
_DETAILS = re.compile(r"^message details:\s*$", re.I | re.M)
_RCPT = re.compile(r"^\s*rcpt to:\s*(.+)$", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.mentions("error message below:"):
        return None
    text = mail.notice
    below = _BELOW.search(text)
    if below is None:
        return None
    details = _DETAILS.search(text, below.end())
    if details is None:
        return None
    diagnostic = squash(text[below.end() : details.start()])
    recipients: list[str] = []
    for match in _RCPT.finditer(text, details.end()):
        recipients.extend(addr.find_addresses(match.group(1)))
    out = [facts(a, diagnostic) for a in recipients]
    return out or None
