"""SendGrid: "This is an automatically generated message from SendGrid." and a delivery-status
part with X-SendGrid-QueueID. SendGrid writes "Action: expired" (not an RFC 3464 action) for a
message it stopped retrying, often with no Status at all, so the generic reader misses it.
"""

from __future__ import annotations

from bounceback.core.frozen import replace
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464
from bounceback.core.taxonomy import Action, Reason

NAME = "sendgrid"


def detect(mail: Mail) -> list[Facts] | None:
    part = mail.delivery_status
    if part is None or "x-sendgrid-" not in part.text[:4096].lower():
        return None
    per_message, blocks = rfc3464.parse_fields(part.text)
    out: list[Facts] = []
    for block in blocks:
        found = rfc3464.facts_from_block(block, per_message)
        if found is None:
            continue
        if block.get("action", "").strip().lower() == "expired":
            # SendGrid's own word: it gave up retrying, the message expired in its queue.
            found = replace(
                found,
                action=Action.FAILED,
                reason_hint=Reason.EXPIRED,
                hint_rule="sendgrid.action-expired",
            )
        out.append(found)
    return out or None
