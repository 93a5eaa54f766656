"""BIGLOBE (biglobe.ne.jp): "Returned mail:" from postmaster@biglobe.ne.jp.

   ----- The following addresses had delivery problems -----
kijitora@example.jp

   ----- Non-delivered information -----
The number of messages in recipient's mailbox exceeded the local limit.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import between, facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "biglobe"

_SENDER = re.compile(r"[@.]biglobe\.ne\.jp\b", re.I)
_RECIPIENTS = "----- The following addresses had delivery problems -----"
_INFORMATION = "----- Non-delivered information -----"
_SECTION_END = re.compile(r"\n\s*\n|\n\s*-{5}")


def detect(mail: Mail) -> list[Facts] | None:
    if not _SENDER.search(mail.sender):
        return None
    notice = mail.notice
    listed = _SECTION_END.split(between(notice, _RECIPIENTS, _INFORMATION).strip("\n"))[0]
    reason = _SECTION_END.split(between(notice, _INFORMATION).strip("\n"))[0]
    addresses = addr.find_addresses(listed, limit=50)
    return [facts(address, reason) for address in addresses] or None
