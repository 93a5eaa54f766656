"""Microsoft Exchange 2007 and later (Exchange Online / Office 365 too) non-delivery reports
whose delivery-status part is missing or names nobody.

The human-readable part ends with a fixed block for administrators::

    Delivery has failed to these recipients or groups:
    ...
    Diagnostic information for administrators:

    Generating server: mta4.example.org
    Receiving server: mx.example.net (192.0.2.3)           (optional)

    mikeneko@example.co.jp
    #550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##    (Exchange 2007)
    Remote Server returned '550 5.1.10 RESOLVER...'        (Exchange 2010 and later)
    3/09/2016 8:05:56 PM - Remote Server at mx (192.0.2.3) returned '550 4.4.7 ...'

    Original message headers:

Each recipient's answer is the quoted server response (the most recent one comes first).
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "exchange2007"

_ADMIN = "diagnostic information for administrators:"
_HEADERS = "original message headers:"
_GENERATING = re.compile(r"^\s*generating server:\s*(\S+)", re.I | re.M)
_RECEIVING = re.compile(r"^\s*receiving server:\s*(\S+)", re.I | re.M)
# "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##"
_HASHED = re.compile(r"#\s*([245]\d\d[ -].*?)\s*##", re.S)
# "Remote Server returned '550 5.1.10 ...'", "... returned '441 4.4.1 ...'"
_RETURNED = re.compile(r"returned\s+'(.+?)'(?:\s*$|\s+\d)", re.I | re.S | re.M)
_ADDRESS_LINE = re.compile(r"^\s*<?([^\s<>@]+@[^\s<>@]+?)>?\s*$")


def detect(mail: Mail) -> list[Facts] | None:
    text = mail.text
    lower = mail.text_lower
    start = lower.find(_ADMIN)
    if start < 0 or "delivery has failed to these recipients" not in lower:
        return None
    end = lower.find(_HEADERS, start)
    block = text[start + len(_ADMIN) : end if end > 0 else len(text)]
    generating = _GENERATING.search(block)
    receiving = _RECEIVING.search(block)
    reporting = generating.group(1) if generating else ""
    remote = receiving.group(1) if receiving else ""
    found: list[Facts] = []
    for address, lines in _recipients(block):
        found.append(facts(address, _answer(lines), remote_mta=remote, reporting_mta=reporting))
    return found or None


def _recipients(block: str) -> list[tuple[str, str]]:
    """(address, the lines under it) for each address that stands alone on a line."""
    out: list[tuple[str, str]] = []
    current = ""
    lines: list[str] = []
    for line in block.split("\n"):
        match = _ADDRESS_LINE.match(line)
        if match and addr.is_address(addr.clean(match.group(1))):
            if current:
                out.append((current, "\n".join(lines)))
            current, lines = addr.clean(match.group(1)), []
        elif current:
            lines.append(line)
    if current:
        out.append((current, "\n".join(lines)))
    return out


def _answer(lines: str) -> str:
    """The server's response quoted under one recipient (the first, i.e. most recent)."""
    for pattern in (_HASHED, _RETURNED):
        match = pattern.search(lines)
        if match:
            return match.group(1)
    return lines.strip()
