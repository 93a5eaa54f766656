"""Active!hunter (a Japanese mail gateway): sendmail-like wording, no delivery-status part.

Header X-AHMAILID, Subject "FAILURE NOTICE : <original subject>"::

      ----- The following addresses had permanent fatal errors -----

    >>> kijitora@example.org <kijitora@example.org>

      ----- Transcript of session follows -----
    550 sorry, no mailbox here by that name (#5.1.1 - chkusr)
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats import _transcript
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "activehunter"

_RECIPIENT = re.compile(r"^\s*>>>\s*(\S+@\S+)", re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not mail.header("X-AHMAILID"):
        return None
    notice = mail.notice
    answer = squash(_transcript.section(notice))
    recipients = [addr.clean(m.group(1)) for m in _RECIPIENT.finditer(notice)]
    out = [facts(a, answer) for a in recipients if addr.is_address(a)]
    return out or None
