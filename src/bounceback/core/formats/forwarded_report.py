"""A gateway that passes on a bounce it received, wrapped in a notice of its own.

Mail security gateways (Trend Micro's among them) sometimes answer with a notice that names no
recipient and attach the report they were given::

    Subject: Returned mail: User unknown
    The original message was received at Thu Oct 13 15:22:22 2015

    ----- The following addresses had permanent delivery errors -----

    [message/rfc822: the bounce from the next hop, a multipart/report with its
     message/delivery-status part]

Only when the gateway's own text lists no address is the attached report read: its
delivery-status part names the recipients and the server's answer.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.mime import Part
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464

NAME = "forwarded_report"

_HEADING = re.compile(
    r"-{3,}\s*the following addresses had (?:permanent|transient) "
    r"(?:fatal |delivery )?errors\s*-{3,}\s*$",
    re.I | re.M,
)
_REPORTS = frozenset({"message/delivery-status", "message/global-delivery-status"})


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.mentions("the following addresses had "):
        return None
    notice = mail.notice
    heading = _HEADING.search(notice)
    if heading is None or addr.find_addresses(notice[heading.end() :], limit=1):
        return None
    returned = mail.returned
    if returned is None or not returned.is_multipart:
        return None
    part = _report_part(returned)
    if part is None:
        return None
    per_message, blocks = rfc3464.parse_fields(part.text)
    found = [f for f in (rfc3464.facts_from_block(b, per_message) for b in blocks) if f]
    return found or None


def _report_part(returned: Part) -> Part | None:
    """The delivery-status part of the attached report (not of anything attached to it)."""
    for child in returned.children[:20]:
        if child.content_type in _REPORTS:
            return child
    return None
