"""Lotus Notes (the Lotus SMTP MTA of Notes 4-6): "Undeliverable message", in plain text.

The cause comes first (often in the recipient's own language: Japanese notices are sent in
ISO-2022-JP), then the address or addresses it applies to::

    ------- Failure Reasons  --------

    User  not listed in public Name & Address Book
    kijitora@example.com

    ------- Returned Message --------
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "notes"

_START = re.compile(r"^-{3,}\s*failure reasons\s*-{3,}\s*$", re.I | re.M)
_END = re.compile(r"^-{3,}\s*returned message\s*-{3,}\s*$", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.mentions("failure reasons"):
        return None
    text = mail.text
    start = _START.search(text)
    if start is None:
        return None
    end = _END.search(text, start.end())
    section = text[start.end() : end.start() if end else len(text)]
    out: list[Facts] = []
    cause: list[str] = []
    after_address = False
    for raw in section.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if addr.is_address(addr.clean(line)):
            out.append(facts(addr.clean(line), " ".join(cause)))
            after_address = True
            continue
        if after_address:
            cause, after_address = [], False  # a new cause for the addresses that follow
        cause.append(line)
    return out or None
