"""Ipswitch IMail Server: "Undeliverable Mail" from its SMTP32 service, in plain text.

X-Mailer "<SMTP32 v8.22>", Subject "Undeliverable Mail", and one line per failed recipient, the
cause first and the address last::

    Unknown user: kijitora@example.com
    User mailbox exceeds allowed size: kijitora@example.co.jp
    Delivery failed 20 attempts: kijitora@example.com

    Original message follows.

When a remote server refused the message, the line is "undeliverable to <address>" and the
server's reply follows "Body of message generated response:".
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "imail"

_MAILER = re.compile(r"<SMTP32 v[\d.]+>", re.I)
_LINE = re.compile(
    r"^\s*(?P<cause>[A-Za-z][^:\n]{2,80}?):\s+<?(?P<address>[^\s<>]+@[^\s<>]+?)>?\s*$", re.M
)
_UNDELIVERABLE = re.compile(
    r"^\s*undeliverable to\s+<?(?P<address>[^\s<>]+@[^\s<>]+?)>?\s*$", re.I | re.M
)
_RESPONSE = re.compile(
    r"body of message generated response:\s*\n(?P<text>.+?)(?:\n\s*\n|\Z)", re.I | re.S
)
# IMail's own causes that name a reason the notice's words alone would not give.
_RETRIES = re.compile(r"^delivery failed \d+ attempts$", re.I)
_CONTINUED = re.compile(r"^([245]\d\d)-")
_CODE_PREFIX = re.compile(r"^[245]\d\d[ -]")


def detect(mail: Mail) -> list[Facts] | None:
    if not _MAILER.search(mail.header("X-Mailer")):
        return None
    notice = re.split(
        r"^\s*original message follows\.?\s*$", mail.notice, maxsplit=1, flags=re.I | re.M
    )[0]
    out: list[Facts] = []
    response = _RESPONSE.search(notice)
    for match in _UNDELIVERABLE.finditer(notice):
        text = response.group("text") if response else match.group(0)
        out.append(facts(addr.clean(match.group("address")), _join_reply(text)))
    if out:
        return out
    for match in _LINE.finditer(notice):
        cause = match.group("cause").strip()
        if cause.lower() in ("to", "cc", "from", "date", "subject"):
            continue
        hint = Reason.EXPIRED if _RETRIES.match(cause) else None
        out.append(
            facts(
                addr.clean(match.group("address")),
                cause,
                reason_hint=hint,
                hint_rule="imail.retries-exhausted" if hint else "",
            )
        )
    return out or None


def _join_reply(text: str) -> str:
    """A multi-line reply as one line: "550-A / 550-B / 550 C" -> "550 A B C"."""
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if not lines:
        return ""
    head = _CONTINUED.sub(r"\1 ", lines[0])
    rest = [_CODE_PREFIX.sub("", line) for line in lines[1:]]
    return " ".join([head, *rest])
