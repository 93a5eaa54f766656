"""Zoho Mail's own failure notice (X-Mailer / User-Agent "Zoho Mail", X-ZohoMail).

No delivery-status part; one line per recipient, the remote server's answer split into
"ERROR_CODE" pieces (reply code, then the rest of the response)::

    This message was created automatically by mail delivery software.
    A message that you sent could not be delivered to one or more of its recipients. ...

    kijitora@example.co.jp Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <kijitora@
    example.co.jp>... User Unknown
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "zoho"

_RECIPIENT = re.compile(r"^(\S+@\S+)\s+(.*?ERROR_CODE\s*:.*?)(?:\n\s*\n|\Z)", re.M | re.S)
_PIECE = re.compile(r"ERROR_CODE\s*:\s*(.*?)(?=,\s*ERROR_CODE\s*:|\Z)", re.S)
_CODE = re.compile(r"[245]\d\d")


def _is_zoho(mail: Mail) -> bool:
    if mail.header("X-ZohoMail"):
        return True
    return any("zoho mail" in mail.header(h).lower() for h in ("X-Mailer", "User-Agent"))


def detect(mail: Mail) -> list[Facts] | None:
    if not _is_zoho(mail):
        return None
    text = mail.notice
    if "ERROR_CODE" not in text:
        return None
    found: list[Facts] = []
    for match in _RECIPIENT.finditer(text):
        address = addr.clean(match.group(1))
        if not addr.is_address(address):
            continue
        pieces = [squash(p) for p in _PIECE.findall(match.group(2))]
        answer = " ".join(p for p in pieces if p) or squash(match.group(2))
        reply = pieces[0] if pieces and _CODE.fullmatch(pieces[0]) else ""
        found.append(facts(address, answer, reply_code=reply))
    return found or None
