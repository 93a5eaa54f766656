"""MailMarshal SMTP (Trustwave / Marshal8e6): "Undeliverable Mail", one cause for a list of
recipients, then "Additional Information" in fixed fields::

    Could not be delivered because of

    550 5.1.1 User unknown

    The following recipients were affected:
        kijitora@nyaan.example.com

    Additional Information
    ======================
    Remote-MTA:         <203.0.113.2>
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "mailmarshal"

_CAUSE = re.compile(r"^could not be delivered because of\s*$", re.I | re.M)
_AFFECTED = re.compile(r"^the following recipients were affected:\s*$", re.I | re.M)
_END = re.compile(r"^\s*(?:additional information|=====)", re.I | re.M)
_REMOTE = re.compile(r"^remote-mta:\s*<?([^<>\s]+)>?", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.mentions("could not be delivered because of"):
        return None
    text = mail.text
    cause = _CAUSE.search(text)
    if cause is None:
        return None
    affected = _AFFECTED.search(text, cause.end())
    if affected is None:
        return None
    diagnostic = squash(text[cause.end() : affected.start()])
    end = _END.search(text, affected.end())
    listing = text[affected.end() : end.start() if end else len(text)]
    remote = _REMOTE.search(text, affected.end())
    out = [
        facts(a, diagnostic, remote_mta=remote.group(1) if remote else "")
        for a in addr.find_addresses(listing)
    ]
    return out or None
