"""Mimecast: "[Postmaster] Email Delivery Failure", its own plain-text alert.

    An email that you attempted to send to the following address could not be delivered:
    -- kijitora@example.org

    The problem appears to be :
    -- Recipient email address is possibly incorrect

    Additional information follows :
    -- 5.4.1 Recipient address rejected: Access denied. [...]

The "Additional information" line is the remote server's answer; the "problem" line is
Mimecast's guess and is used only when no answer is given.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import between, facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "mimecast"

_PROBLEM = "The problem appears to be :"
_ADDITIONAL = "Additional information follows :"
_DASHED = re.compile(r"^--[ \t]+(.+)$", re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not _is_mimecast(mail):
        return None
    text = mail.notice
    head = text.split(_PROBLEM)[0]
    addresses = [a for line in _DASHED.findall(head) for a in addr.find_addresses(line, limit=5)]
    if not addresses:
        return None
    answer = _dashed(between(text, _ADDITIONAL)) or _dashed(between(text, _PROBLEM))
    return [facts(address, answer) for address in addresses]


def _is_mimecast(mail: Mail) -> bool:
    # The Received lines first: the scan of every header name runs only when they say nothing.
    if not ("mimecast.com" in mail.received_lower or mail.headers.has_prefix("x-mimecast")):
        return False
    text = mail.text
    return _PROBLEM in text and "could not be delivered" in text


def _dashed(section: str) -> str:
    """The "-- " lines at the start of a section, joined."""
    lines: list[str] = []
    for line in section.strip("\n").split("\n"):
        match = _DASHED.match(line.strip())
        if not match:
            break
        lines.append(match.group(1))
    return " ".join(lines)
