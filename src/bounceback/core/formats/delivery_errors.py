"""A mail hub's terse notice: one line per recipient, the cause in square brackets.

From "Mail Delivery System", Subject "Mail Delivery Failure" (or, while it still retries,
"Warning--Could not send mail for past 8.5 hours")::

    The original message was received at 06 Jan 2025 22:22:29 +0900
    from nekochan@example.co.jp

    ---The following addresses had delivery errors---

    kijitora@example.org [User unknown]
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Action

NAME = "delivery_errors"

_START = re.compile(r"^-{3}\s*the following addresses had delivery errors\s*-{3}\s*$", re.I | re.M)
_LINE = re.compile(r"^\s*<?([^\s<>\[\]]+@[^\s<>\[\]]+?)>?\s+\[(.*)\]\s*$")
_WARNING = re.compile(r"^warning\b", re.I)


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.mentions("had delivery errors"):
        return None
    notice = mail.notice
    start = _START.search(notice)
    if start is None:
        return None
    action = Action.DELAYED if _WARNING.match(mail.subject) else Action.FAILED
    out: list[Facts] = []
    for line in notice[start.end() :].split("\n")[:500]:
        if line.strip().startswith("---"):
            break
        match = _LINE.match(line)
        if match:
            out.append(facts(addr.clean(match.group(1)), match.group(2), action=action))
    return out or None
