"""Amazon WorkMail: a plain-text notice whose "Technical report:" is an inline RFC 3464 report.

    An error occurred while trying to deliver the mail to the following recipients:
    kijitora@example.jp

    Technical report:

    Reporting-MTA: dsn; a27-85.smtp-out.us-west-2.amazonses.com

    Action: failed
    Final-Recipient: rfc822; kijitora@example.jp
    Diagnostic-Code: smtp; 550 5.1.1 <kijitora@example.jp>... User Unknown
    Status: 5.1.1

WorkMail sends through Amazon SES, so the diagnostic may carry SES's wrapping of the answer.
"""

from __future__ import annotations

from bounceback.core.formats import amazonses
from bounceback.core.formats._common import between
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464

NAME = "amazonworkmail"


def detect(mail: Mail) -> list[Facts] | None:
    if "amazon workmail" not in mail.header("X-Mailer").lower():
        return None
    report = between(mail.text, "Technical report:")
    if not report:
        return None
    per_message, blocks = rfc3464.parse_fields(report)
    found = [rfc3464.facts_from_block(block, per_message) for block in blocks]
    return [amazonses.refine(f) for f in found if f is not None] or None
