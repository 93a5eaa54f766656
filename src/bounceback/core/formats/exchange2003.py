"""Microsoft Exchange 5.5 / 2000 / 2003 non-delivery reports (no delivery-status part).

The notice is plain text written by the Internet Mail Service (IMS) or the Internet Mail
Connector (IMC)::

    Your message did not reach some or all of the intended recipients.   (or "Your message")
    ...
    did not reach the following recipient(s):        (or "The following recipient(s) could
                                                       not be reached:")
    kijitora@example.jp on Thu, 29 Apr 2010 00:00:00 -0000
        The recipient name is not recognized
        MSEXCH:IMS:NNN:KIJITORACAT:NEKO 0 (000C05A6) Unknown Recipient

Exchange 2000/2003 put the remote server's answer in angle brackets on the last line
(``<mx.example.com #5.1.1 smtp;550 5.1.1 User unknown>``). Each recipient's explanation lines
become its diagnostic; codes are read from them.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.quick import may_contain
from bounceback.core.report import Facts

NAME = "exchange2003"

# X-Mailer / Received: "Internet Mail Service (5.5.2657.72)", "Microsoft Exchange Server
# Internet Mail Connector Version 4.0.994.63"; Exchange 2000/2003 mark the report with an
# X-MS-Embedded-Report header.
_MAILER = re.compile(
    r"internet mail service \(|exchange server internet mail connector|microsoft exchange", re.I
)
_START = re.compile(
    r"^\s*(?:did not reach the following recipient\(s\):|"
    r"the following recipient\(s\) (?:could not|cannot) be reached:)\s*$",
    re.I | re.M,
)
# "kijitora@example.jp on Thu, 29 Apr 2010 00:00:00 -0000", "kijitora@example.com on 4/29/01"
_RECIPIENT = re.compile(r"^\s*(\S+@\S+)\s+on\s+\S", re.M)
_MTS_TAIL = re.compile(r"^\S*;l=")
# Exchange 2000/2003: "<mx.example.com #5.1.1 smtp;550 5.1.1 <a@b>... User unknown>"
_REMOTE = re.compile(
    r"<([\w.-]+\.[a-z]{2,})\s+#([245]\.\d{1,3}\.\d{1,3})(?:\s+(?:smtp;\s*)?(.*))?>\s*$", re.I
)


def _is_exchange(mail: Mail) -> bool:
    if "X-MS-Embedded-Report" in mail.headers or _MAILER.search(mail.header("X-Mailer")):
        return True
    # Every pattern's alternative names "internet mail service (" or "exchange".
    if not may_contain(mail.received, ("internet mail service (", "exchange"), mail.received_lower):
        return False
    return any(_MAILER.search(value) for value in mail.headers.get_all("Received"))


def detect(mail: Mail) -> list[Facts] | None:
    if not _is_exchange(mail):
        return None
    text = mail.notice
    start = _START.search(text)
    if start is None:
        return None
    body = text[start.end() :]
    found: list[Facts] = []
    matches = list(_RECIPIENT.finditer(body))
    for i, match in enumerate(matches):
        address = addr.clean(match.group(1))
        if not addr.is_address(address):
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        block = _explanation(body[match.end() : end])
        remote = _REMOTE.search(block)
        if remote is None:
            found.append(facts(address, block))
            continue
        # The remote server's own answer when Exchange quotes it, else Exchange's explanation.
        answer = remote.group(3) or block
        found.append(
            facts(address, answer, status_code=remote.group(2), remote_mta=remote.group(1))
        )
    return found or None


def _explanation(block: str) -> str:
    """The explanation lines under one recipient, without the rest of the line it sits on and
    without the MTS-ID bookkeeping lines ("The MTS-ID of the original message is: ...")."""
    lines = block.split("\n")[1:]
    out: list[str] = []
    for line in lines:
        if not line.strip():
            if out:
                break
            continue
        if line.strip().lower().startswith("the mts-id of the original message"):
            continue
        if _MTS_TAIL.match(line):  # the folded tail of the MTS-ID line: "un;l=0000P"
            continue
        out.append(line.strip())
    return " ".join(out)
