"""Verizon Wireless MMS gateway (vzwpix.com, vtext.com): the MMSC's "Undeliverable Message".

    Message could not be delivered to mobile.
    Error: No valid recipients for this MM

    Original Message:
    From: sender <kijitora@example.jp>
    To: 0000000000@vzwpix.com

The notice names the recipient only in the "Original Message:" summary that follows it.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import between, facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "verizon"

_SENDER = re.compile(r"[@.](?:vzwpix|vtext)\.com\b", re.I)
_ERROR = re.compile(r"^error:\s*(.+)$", re.I | re.M)
_TO = re.compile(r"^to:\s*(.+)$", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not _SENDER.search(mail.sender):
        return None
    text = mail.text
    if "could not be delivered" not in mail.text_lower:
        return None
    error = _ERROR.search(text)
    original = between(text, "Original Message:")
    to = _TO.search(original)
    addresses = addr.find_addresses(to.group(1), limit=50) if to else []
    diagnostic = error.group(1) if error else ""
    return [facts(address, diagnostic) for address in addresses] or None
