"""MailFoundry (a mail gateway): "Message delivery has failed", plain text::

Unable to deliver message to: <kijitora@example.org>
Delivery failed for the following reason:
Server mx22.example.org[192.0.2.222] failed with: 550 <kijitora@example.org> No such user here

This has been a permanent failure.  No further delivery attempts will be made.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "mailfoundry"

_BLOCK = re.compile(
    r"^unable to deliver message to:\s*<?(?P<address>[^\s<>]+@[^\s<>]+?)>?\s*\n"
    r"delivery failed for the following reason:\s*\n(?P<reason>.+?)(?:\n\s*\n|\Z)",
    re.I | re.M | re.S,
)
_SERVER = re.compile(r"^server\s+(?P<host>[^\s\[]+)(?:\[[^\]]*\])?\s+failed with:\s*", re.I)


def detect(mail: Mail) -> list[Facts] | None:
    if mail.subject_lower != "message delivery has failed":
        return None
    out: list[Facts] = []
    for match in _BLOCK.finditer(mail.notice):
        reason = squash(match.group("reason"))
        server = _SERVER.match(reason)
        host = server.group("host") if server else ""
        diagnostic = reason[server.end() :] if server else reason
        out.append(facts(addr.clean(match.group("address")), diagnostic, remote_mta=host))
    return out or None
