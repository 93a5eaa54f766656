"""A qmail-like notice that opens with the reporting domain, used by Yahoo! (2000s) and others.

Subject "Delivery failure" / "failed delivery" / "Permanent Delivery Failure", no MIME report::

    Message from example.com.
    Unable to deliver message to the following address(es).

    <kijitora@example.com>:
    This user doesn't have a example.com account (kijitora@example.com) [0]

    <mikeneko@example.com>:
    Sorry your message to mikeneko@example.com cannot be delivered. This account has been
    disabled or discontinued [#102].

    --- Original message follows.
"""

from __future__ import annotations

import re
from itertools import zip_longest

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "unable_to_deliver"

_START = re.compile(
    r"^message from\s+\S+\.\s*\n\s*unable to deliver message to the following "
    r"address\(es\)\.\s*$",
    re.I | re.M,
)
_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:\s*$", re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.mentions("unable to deliver message to the following address(es)."):
        return None
    notice = mail.notice
    start = _START.search(notice)
    if start is None:
        return None
    section = notice[start.end() :]
    marks = list(_RECIPIENT.finditer(section))
    out: list[Facts] = []
    for match, nxt in zip_longest(marks, marks[1:]):
        end = nxt.start() if nxt is not None else len(section)
        paragraph = section[match.end() : end].strip().split("\n\n", 1)[0]
        out.append(facts(addr.clean(match.group(1)), paragraph))
    return out or None
