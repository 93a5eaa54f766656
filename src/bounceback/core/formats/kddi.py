"""KDDI (au one net, dion.ne.jp): a short plain-text notice from no-reply@*.dion.ne.jp.

    Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900
         Could not be delivered to: <kijitora@example.dion.ne.jp>
         As their mailbox is full.

The line after the address says why, in KDDI's own words.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "kddi"

_KDDI = re.compile(r"(?:dion\.ne\.jp|auone-net\.jp)\b", re.I)
_FAILED = re.compile(r"could not be delivered to:\s*<?([^\s<>]+@[^\s<>]+)>?[ \t]*$", re.I | re.M)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def detect(mail: Mail) -> list[Facts] | None:
    headers = " ".join((mail.sender, mail.header("Reply-To"), mail.header("Message-ID")))
    if not _KDDI.search(headers):
        return None
    notice = mail.notice
    found = [
        facts(addr.clean(match.group(1)), _paragraph(notice[match.end() :]))
        for match in _FAILED.finditer(notice)
    ]
    return found or None


def _paragraph(text: str) -> str:
    """The lines that follow, up to the next blank line: KDDI's reason."""
    return _BLANK_LINE.split(text.lstrip(" \t\n"), maxsplit=1)[0]
