"""Google Groups' notice that a post to a group was refused.

Sent by mailer-daemon@googlemail.com with the group's address in X-Failed-Recipients and a text
in the poster's language, always signed "Google Groups" and pointing to groups.google.com::

    We're writing to let you know that the group you tried to contact (libsisimai) may not
    exist, or you may not have permission to post messages to the group. ...

The notice is the same whether the group is missing or the poster may not post to it, and
Google sends it instead of an SMTP rejection: the group refused the sender. No status or reply
code is given.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "googlegroups"

_SENDER = re.compile(r"mailer-daemon@(?:googlemail|google)\.com", re.I)
_SIGNATURE = "groups.google.com"
_BLANK_LINE = re.compile(r"\n\s*\n")


def detect(mail: Mail) -> list[Facts] | None:
    failed = mail.header("X-Failed-Recipients")
    if not failed or not _SENDER.search(mail.sender):
        return None
    text = mail.notice
    if _SIGNATURE not in mail.notice_lower or "Google Groups" not in text:
        return None
    found: list[Facts] = []
    for address in addr.find_addresses(failed):
        found.append(
            facts(
                address,
                _sentence(text, address),
                reason_hint=Reason.SENDER_REJECTED,
                hint_rule="googlegroups.cannot-post",
            )
        )
    return found or None


def _sentence(text: str, address: str) -> str:
    """The paragraph that names the group ("... the group you tried to contact (name) ...", in
    whichever brackets the language uses)."""
    local = re.escape(address.split("@", 1)[0])
    named = re.compile(r"(?<![\w.@-])" + local + r"(?![\w.@-])", re.I)
    for paragraph in _BLANK_LINE.split(text):
        if named.search(paragraph):
            return paragraph
    return text.strip().split("\n\n")[0]
