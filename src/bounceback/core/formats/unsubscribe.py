"""Unsubscribe requests that mail clients send on the user's behalf (RFC 2369 List-Unsubscribe
with a mailto: URI): an opt-out, reported like an RFC 5965 "opt-out" feedback.

Only a client's own marker counts: Apple Mail sends "X-Apple-Unsubscribe: true" with the
request ("Apple Mail sent this email to unsubscribe from the message ..."). The user who opted
out is the sender of the request.
"""

from __future__ import annotations

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "unsubscribe"


def detect(mail: Mail) -> list[Facts] | None:
    if mail.header("X-Apple-Unsubscribe").strip().lower() != "true":
        return None
    sender = addr.find_address(mail.sender)
    if not sender:
        return None
    return [
        Facts(
            address=sender,
            feedback_type="opt-out",
            reason_hint=Reason.FEEDBACK,
            hint_rule="unsubscribe.apple-mail",
        )
    ]
