"""RFC 5965 Abuse Reporting Format: a spam complaint (feedback loop report), not a bounce.

A multipart/report with report-type=feedback-report whose message/feedback-report part carries
Feedback-Type, Original-Rcpt-To and friends; the third part is the reported message or its headers.
The report part is a header-like block of fields (RFC 5965 section 3.1): it is read as such, one
field per name, Original-Rcpt-To possibly repeated. Without Original-Rcpt-To the recipients are
those of the reported message's To header.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards.rfc3464 import typed_value
from bounceback.core.taxonomy import Reason

NAME = "arf"

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)$")


def detect(mail: Mail) -> list[Facts] | None:
    part = mail.feedback_report
    if part is None:
        return None
    fields = parse_report(part.text)
    feedback_type = _first(fields, "feedback-type").lower().split()[:1]
    recipients = [addr.clean(v) for v in fields.get("original-rcpt-to", []) if addr.clean(v)]
    if not recipients:
        to = mail.original_headers().get("To")
        recipients = addr.find_addresses(to, limit=50) or [""]
    reporting = typed_value(_first(fields, "reporting-mta"))[1]
    return [
        Facts(
            address=recipient,
            feedback_type=feedback_type[0] if feedback_type else "abuse",
            reporting_mta=reporting,
            reason_hint=Reason.FEEDBACK,
            hint_rule="arf.feedback-report",
        )
        for recipient in _unique(recipients)
    ]


def parse_report(text: str) -> dict[str, list[str]]:
    """Field name (lower case) -> its values in order; folded lines are joined. Blank lines are
    skipped (some reporters put one inside the block)."""
    fields: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.split("\n")[:2000]:
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:
            fields[last][-1] = (fields[last][-1] + " " + line.strip())[:4096]
            continue
        match = _FIELD.match(line)
        if not match:
            last = None
            continue
        last = match.group(1).lower()
        fields.setdefault(last, []).append(match.group(2).strip())
    return fields


def _first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0] if values else ""


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    return out
