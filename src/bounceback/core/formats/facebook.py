"""Facebook (mx.facebook.com): RFC 3464 reports whose answer carries a Facebook response code.

    Diagnostic-Code: smtp; 550 5.1.1 RCP-P2 http://postmaster.facebook.com/response_codes?...
        Refused due to recipient preferences

The code (published at postmaster.facebook.com/response_codes) names the cause more precisely
than the status code, which Facebook sets to 5.1.1 for every refusal of a recipient.
"""

from __future__ import annotations

import re

from bounceback.core.frozen import replace
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464
from bounceback.core.taxonomy import Reason

NAME = "facebook"

_CODE = re.compile(r"\b((?:RCP|MSG|CON|POL|SPM|INT)-[PT]\d+)\b")
# Facebook's response codes whose meaning is fixed; others are left to the rule tables.
_CODES: dict[str, Reason] = {
    "RCP-P1": Reason.USER_UNKNOWN,  # The attempted recipient address does not exist.
    "RCP-P2": Reason.FILTERED,  # The attempted recipient's preferences prevent delivery.
    "RCP-P3": Reason.FILTERED,  # The attempted recipient's privacy settings blocked delivery.
    "RCP-P4": Reason.SUSPENDED,  # The attempted recipient address is deactivated.
    "RCP-T4": Reason.SUSPENDED,  # The attempted recipient address is temporarily deactivated.
    "MSG-P1": Reason.MESSAGE_TOO_BIG,  # Message exceeds the maximum allowed size.
    "POL-P1": Reason.BLOCKED,  # Your mail server's IP address is listed on the Spamhaus PBL.
    "POL-P2": Reason.BLOCKED,  # Facebook no longer accepts mail from your server's IP address.
}


def detect(mail: Mail) -> list[Facts] | None:
    part = mail.delivery_status
    if part is None:
        return None
    if "facebook.com" not in mail.sender_lower and "postmaster.facebook.com" not in part.text:
        return None
    found = rfc3464.detect(mail)
    if not found:
        return None
    return [_with_code(f) for f in found]


def _with_code(found: Facts) -> Facts:
    match = _CODE.search(found.diagnostic)
    reason = _CODES.get(match.group(1)) if match else None
    if match is None or reason is None:
        return found
    rule = "facebook." + match.group(1).lower()
    return replace(found, reason_hint=reason, hint_rule=rule)
