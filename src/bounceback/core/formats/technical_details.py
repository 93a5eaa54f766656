"""A notice framed by "=====" rules with a "Technical details:" section (an unnamed MTA).

Subject "Delivery status notification", a multipart/report whose text part says::

    This is an automatically generated Delivery Status Notification.

    Delivery to the following recipients failed permanently:

       * kijitora@example.com

    ============================================================================
                                 Technical details:

    SMTP:RCPT host 192.0.2.8: 553 5.3.0 <kijitora@example.com>... No such user here

"was aborted after 5.0 hour(s)" replaces "failed permanently" when the delivery attempts timed
out. The delivery-status part, when it has recipient fields, writes 5.1.1 in Status whatever the
server said; the server's own code in the diagnostic is the one to keep.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command, reply, rfc3464
from bounceback.core.standards import status as st
from bounceback.core.taxonomy import Reason

NAME = "technical_details"

_SIGNATURE = "this is an automatically generated delivery status notification"
_LIST = re.compile(
    r"^\s*del[ie]very to the following recipients? (?P<how>failed permanently|"
    r"was aborted after [^:\n]*|failed temporarily|[^:\n]*):\s*$",
    re.I | re.M,
)
_ITEM = re.compile(r"^\s*\*\s*<?([^\s<>]+@[^\s<>]+?)>?\s*$")
_DETAILS = re.compile(r"^\s*technical details:\s*$", re.I | re.M)
# "SMTP:RCPT host 192.0.2.8: 553 ...", "Routing: Could not find a gateway for a@b"
_DETAIL = re.compile(
    r"^(?:smtp:(?P<cmd>[a-z]+)\s+host\s+(?P<host>[^\s:]+):\s*|[a-z]+:\s*)?"
    r"(?P<text>.+)$",
    re.I,
)


def detect(mail: Mail) -> list[Facts] | None:
    notice = mail.notice
    # The cached lower-cased text first: what is not in the whole text is not at its start.
    if _SIGNATURE not in mail.text_lower or _SIGNATURE not in notice[:2000].lower():
        return None
    listing = _LIST.search(notice)
    if listing is None:
        return None
    recipients: list[str] = []
    for line in notice[listing.end() :].split("\n")[:200]:
        match = _ITEM.match(line)
        if match:
            recipients.append(addr.clean(match.group(1)))
        elif line.strip().startswith("="):
            break
    if not recipients:
        return None
    details = _details(notice)
    aborted = listing.group("how").lower().startswith("was aborted")
    reported = _reported(mail)
    return [_facts(a, details, aborted, reported.get(a.lower())) for a in recipients]


def _details(notice: str) -> dict[str, tuple[str, str, str]]:
    """Address (or "") -> (diagnostic, command, host) from the "Technical details" lines."""
    found = _DETAILS.search(notice)
    out: dict[str, tuple[str, str, str]] = {}
    if found is None:
        return out
    for line in notice[found.end() :].split("\n")[:200]:
        text = line.strip()
        if not text:
            continue
        if text.startswith("="):
            break
        match = _DETAIL.match(text)
        if match is None:
            continue
        step = command.find_command(f">>> {match['cmd']}") if match["cmd"] else ""
        value = (match["text"].strip(), step, match["host"] or "")
        for address in addr.find_addresses(text) or [""]:
            out.setdefault(address.lower(), value)
    return out


def _facts(
    address: str, details: dict[str, tuple[str, str, str]], aborted: bool, dsn: Facts | None
) -> Facts:
    diagnostic, step, host = details.get(address.lower()) or details.get("") or ("", "", "")
    if not diagnostic and dsn is not None:
        diagnostic = dsn.diagnostic
    code = st.find_status(diagnostic)
    if dsn is not None and not code:
        code = dsn.status
    if aborted and not reply.find_reply_code(diagnostic):
        # "Delivery to the following recipients was aborted after 5.0 hour(s)" and no server
        # answered: the attempts stopped when the time allowed for delivery ran out.
        hint, rule = Reason.EXPIRED, "technical_details.aborted"
    elif not diagnostic:
        # "failed permanently" and nothing more: no cause is given.
        hint, rule = Reason.UNDETERMINED, "technical_details.no-details"
    else:
        hint, rule = None, ""
    return facts(
        address,
        diagnostic,
        status_code=code,
        smtp_command=step,
        remote_mta=host or (dsn.remote_mta if dsn else ""),
        reason_hint=hint,
        hint_rule=rule,
    )


def _reported(mail: Mail) -> dict[str, Facts]:
    part = mail.delivery_status
    if part is None:
        return {}
    per_message, blocks = rfc3464.parse_fields(part.text)
    out: dict[str, Facts] = {}
    for block in blocks:
        found = rfc3464.facts_from_block(block, per_message)
        if found is not None:
            out.setdefault(found.address.lower(), found)
    return out
