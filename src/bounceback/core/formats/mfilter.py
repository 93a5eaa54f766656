"""m-FILTER (Digital Arts' mail gateway) and the gateways built on it: a Japanese notice.

Subject "failure notice", X-Mailer "m-FILTER" (some installations rename it), and a body in
fixed sections::

    以下のメールアドレスへの送信に失敗しました。
    kijitora@example.com

    -------server message
    550 unknown user <kijitora@example.com>

    -------SMTP command
    DATA

    -------original message
"""

from __future__ import annotations

import re
from itertools import zip_longest

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command

NAME = "mfilter"

_SECTION = re.compile(
    r"^-{7}(server message|smtp command|original (?:message|mail info))\s*$", re.I | re.M
)


def detect(mail: Mail) -> list[Facts] | None:
    if "m-filter" not in mail.header("X-Mailer").lower() and mail.subject != "failure notice":
        return None
    text = mail.text
    sections = list(_SECTION.finditer(text))
    if not sections or sections[0].group(1).lower() != "server message":
        return None
    parts: dict[str, str] = {}
    for match, nxt in zip_longest(sections, sections[1:]):
        end = nxt.start() if nxt is not None else len(text)
        parts.setdefault(match.group(1).lower(), text[match.end() : end].strip())
    recipients = addr.find_addresses(text[: sections[0].start()])
    diagnostic = squash(parts.get("server message", ""))
    step = parts.get("smtp command", "").split("\n", 1)[0].strip()
    smtp_command = command.find_command(f">>> {step}") if step else ""
    out = [facts(a, diagnostic, smtp_command=smtp_command) for a in recipients]
    return out or None
