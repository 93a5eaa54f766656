"""RFC 5965 Abuse Reporting Format: a spam complaint (feedback loop report), not a bounce.

A multipart/report with report-type=feedback-report whose message/feedback-report part carries
Feedback-Type, Original-Rcpt-To and friends; the third part is the reported message or its headers.
"""

from __future__ import annotations

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards.rfc3464 import parse_fields, typed_value
from bounceback.core.taxonomy import Reason

NAME = "arf"


def detect(mail: Mail) -> list[Facts] | None:
    part = mail.feedback_report
    if part is None:
        return None
    fields, blocks = parse_fields(part.text)
    for block in blocks:  # lenient: a blank line inside the report splits it into blocks
        for key, value in block.items():
            fields.setdefault(key, value)
    feedback_type = fields.get("feedback-type", "").strip().lower() or "abuse"
    recipients = [addr.clean(v) for v in _all_values(part.text, "original-rcpt-to")]
    if not recipients:
        to = mail.original_headers().get("To")
        recipients = addr.find_addresses(to, limit=50) or [""]
    reporting = typed_value(fields.get("reporting-mta", ""))[1]
    return [
        Facts(
            address=recipient,
            feedback_type=feedback_type,
            reporting_mta=reporting,
            reason_hint=Reason.FEEDBACK,
            hint_rule="arf.feedback-report",
        )
        for recipient in recipients
    ]


def _all_values(text: str, name: str) -> list[str]:
    prefix = name.lower() + ":"
    out = []
    for line in text.split("\n"):
        if line.lower().startswith(prefix):
            value = line[len(prefix):].strip()
            if value and value not in out:
                out.append(value)
    return out
