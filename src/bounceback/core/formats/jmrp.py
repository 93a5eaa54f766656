"""Microsoft's Junk Mail Reporting Program (JMRP): a complaint that is not RFC 5965 ARF.

Outlook.com / Hotmail send "complaint about message from 192.0.2.1" from staff@hotmail.com as a
multipart/mixed whose message/rfc822 part is the reported message. Microsoft adds
X-HmXmrOriginalRecipient to it: the address of the user who complained.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "jmrp"

_SUBJECT = re.compile(r"^\s*complaint about message from\b", re.I)


def detect(mail: Mail) -> list[Facts] | None:
    if not _SUBJECT.search(mail.subject):
        return None
    headers = mail.original_headers()
    recipient = headers.get("X-HmXmrOriginalRecipient")
    if not recipient and "@hotmail.com" not in mail.sender_lower:
        return None
    addresses = addr.find_addresses(recipient or headers.get("To"), limit=50) or [""]
    return [
        Facts(
            address=address,
            feedback_type="abuse",
            reason_hint=Reason.FEEDBACK,
            hint_rule="jmrp.complaint",
        )
        for address in addresses
    ]
