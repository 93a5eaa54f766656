"""Sun Java System / Oracle Communications Messaging Server (and PMDF, its ancestor).

Its report repeats the delivery-status fields in prose, one block per recipient, and the prose
says more than the report: which step failed ("Remote SMTP server has rejected address" is the
answer to RCPT, "SMTP transmission failure has occurred" the answer after DATA, "Server rejected
MAIL FROM address" the answer to MAIL)::

    This report relates to a message you sent with the following header fields:
    ...
    Your message cannot be delivered to the following recipients:

      Recipient address: kijitora@example.jp
      Reason: Remote SMTP server has rejected address
      Diagnostic code: smtp;550 5.1.1 <kijitora@example.jp>... User Unknown
      Remote system: dns;mx.example.jp (TCP|192.0.2.1|47323|192.0.2.225|25) (mx.example.jp ESMTP)

The prose is read even when the MIME structure is broken (old PMDF boundaries that never occur
in the body); the delivery-status part, when it can be read, gives the status code.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464, status
from bounceback.core.taxonomy import Action

NAME = "messaging_server"

_SIGNATURE = "this report relates to a message you sent with the following header fields"
_FIELD = re.compile(
    r"^\s*(recipient address|original address|reason|diagnostic code|"
    r"remote system):\s*(.*)$",
    re.I,
)
# The step of the SMTP session the fixed "Reason:" texts name.
_STEPS: tuple[tuple[str, str], ...] = (
    ("rejected mail from", "MAIL"),
    ("rejected address", "RCPT"),
    ("smtp transmission failure", "DATA"),
    ("lmtp transmission failure", "DATA"),
)


def detect(mail: Mail) -> list[Facts] | None:
    text = mail.text
    lower = mail.text_lower
    if _SIGNATURE not in lower or "recipient address:" not in lower:
        return None
    if _SIGNATURE not in text[:5000].lower():  # where the notice begins
        return None
    blocks = _blocks(text)
    if not blocks:
        return None
    reported = _reported(mail)
    delayed = "delayed" in mail.subject_lower
    out: list[Facts] = []
    for block in blocks:
        address = addr.clean(block.get("recipient address", ""))
        original = addr.clean(block.get("original address", ""))
        if original and (not addr.is_address(address) or ":" in address):
            address = original
        if not addr.is_address(address):
            continue
        reason = block.get("reason", "")
        diagnostic = rfc3464.typed_value(block.get("diagnostic code", ""))[1] or reason
        dsn = reported.get(address.lower())
        code = status.more_specific(dsn.status, diagnostic) if dsn else ""
        out.append(
            facts(
                address,
                diagnostic,
                action=Action.DELAYED if delayed else Action.FAILED,
                status_code=code,
                remote_mta=rfc3464.typed_value(block.get("remote system", ""))[1].split(" ")[0],
                smtp_command=_step(reason),
            )
        )
    return out or None


def _blocks(text: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for line in text.split("\n")[:3000]:
        match = _FIELD.match(line)
        if match is None:
            continue
        name, value = match.group(1).lower(), squash(match.group(2))
        if name == "recipient address":
            out.append({})
        if out:
            out[-1].setdefault(name, value)
    return out


def _reported(mail: Mail) -> dict[str, Facts]:
    part = mail.delivery_status
    if part is None:
        return {}
    per_message, blocks = rfc3464.parse_fields(part.text)
    out: dict[str, Facts] = {}
    for block in blocks:
        found = rfc3464.facts_from_block(block, per_message)
        if found is None:
            continue
        out.setdefault(found.address.lower(), found)
        if found.original_recipient:
            out.setdefault(found.original_recipient.lower(), found)
    return out


def _step(reason: str) -> str:
    lower = reason.lower()
    for phrase, step in _STEPS:
        if phrase in lower:
            return step
    return ""
