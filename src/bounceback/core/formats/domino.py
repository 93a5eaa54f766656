"""Lotus Domino's plain-text delivery failure report (no delivery-status part).

Subject "DELIVERY FAILURE: <cause>", from the Postmaster, with the recipients and the cause in
fixed English phrases (the cause may be localised)::

    Your message

      Subject: Test Bounce

    was not delivered to:

      kijitora@example.jp

    because:

      User some.name (kijitora@example.jp) not listed in Domino Directory
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "domino"

_SUBJECT = re.compile(r"^delivery (?:failure|report):", re.I)
_NOT_DELIVERED = re.compile(r"^\s*was not delivered to:\s*$", re.I | re.M)
_BECAUSE = re.compile(r"^\s*because:\s*$", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not _SUBJECT.match(mail.subject):
        return None
    text = mail.notice
    start = _NOT_DELIVERED.search(text)
    if start is None:
        return None
    because = _BECAUSE.search(text, start.end())
    if because is None:
        return None
    recipients = [addr.clean(line) for line in text[start.end() : because.start()].split("\n")]
    cause = squash(text[because.end() :].split("\n\n\n")[0])
    out = [facts(a, cause) for a in recipients if addr.is_address(a)]
    return out or None
