"""Amazon SES: JSON notifications (SNS or e-mail feedback) and SES's own delivery reports.

SES tells a sender about bounces, complaints and deliveries with a JSON document, delivered by
Amazon SNS (to an e-mail subscription the body is the JSON itself, or an SNS envelope whose
``Message`` field holds it as a string). ``notificationType`` (or ``eventType`` for event
publishing) is "Bounce", "Complaint", "Delivery" or "DeliveryDelay". Mail systems on the way
sometimes fold the long line, leaving "!" + newline + space inside the JSON; that junk is removed.

SES's own RFC 3464 reports wrap the remote server's answer in a summary of SES's own
("5.1.0 - Unknown address error 550-'5.7.1 ... Access denied'") or append the last server
answer in angle brackets ("554 4.4.7 Message expired: ...<421 4.4.2 Connection timed out>"):
the codes of that inner answer are the ones that say what happened.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.quick import may_contain
from bounceback.core.report import Facts
from bounceback.core.standards import command, reply, rfc3464, status
from bounceback.core.standards.rfc3464 import typed_value
from bounceback.core.taxonomy import Action, Reason

NAME = "amazonses"

_SES_SENDER = re.compile(r"[@.]amazonses\.com\b", re.I)
_FOLD_JUNK = re.compile(r"!\n ")
_KINDS = ("Bounce", "Complaint", "Delivery", "DeliveryDelay")
# "5.1.0 - Unknown address error 550-'5.7.1 <a@b>... Access denied' (delivery attempts: 0)"
_WRAPPED = re.compile(r"^[245]\.\d\.\d{1,3} - [^']*?\b([245]\d\d)([ -])'(.+)'")
# "554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>"
_LAST_ANSWER = re.compile(r"<([245]\d\d[ -][245]\.\d\.\d{1,3}\b[^<>]*)>\s*$")
# Bounce sub-types whose meaning SES fixes when it gives no server answer.
_SUBTYPES: dict[str, tuple[Reason, str]] = {
    "suppressed": (Reason.SUPPRESSED, "amazonses.suppressed"),
    "onaccountsuppressionlist": (Reason.SUPPRESSED, "amazonses.suppressed"),
    "noemail": (Reason.USER_UNKNOWN, "amazonses.no-email"),
    "mailboxfull": (Reason.MAILBOX_FULL, "amazonses.mailbox-full"),
    "messagetoolarge": (Reason.MESSAGE_TOO_BIG, "amazonses.message-too-large"),
}


def detect(mail: Mail) -> list[Facts] | None:
    if mail.delivery_status is not None:
        return _from_dsn(mail)
    if not _looks_like_notification(mail):
        return None
    document = _load_notification(mail.text)
    if document is None:
        return None
    return _from_notification(document) or None


# --- SES's own delivery status notifications ----------------------------------------------
def _from_dsn(mail: Mail) -> list[Facts] | None:
    # Most reports are not SES's: a plain search before the case-insensitive pattern.
    if not may_contain(mail.sender, ("amazonses.com",), mail.sender_lower):
        return None
    if not _SES_SENDER.search(mail.sender):
        return None
    found = rfc3464.detect(mail)
    if not found:
        return None
    return [refine(f) for f in found]


def refine(found: Facts) -> Facts:
    """Read the remote server's own answer out of SES's wrapping of it."""
    text = found.diagnostic
    wrapped = _WRAPPED.match(text)
    if wrapped:
        code, separator, inner = wrapped.groups()
        answer = f"{code}{separator}{inner}"
        return _replace(found, answer, answer)
    last = _LAST_ANSWER.search(text)
    if last:
        return _replace(found, text, last.group(1))
    return found


def _replace(found: Facts, diagnostic: str, answer: str) -> Facts:
    return Facts(
        address=found.address,
        original_recipient=found.original_recipient,
        action=found.action,
        status=status.find_status(answer) or found.status,
        reply_code=reply.find_reply_code(answer) or found.reply_code,
        diagnostic=diagnostic,
        diagnostic_type=found.diagnostic_type,
        remote_mta=found.remote_mta,
        reporting_mta=found.reporting_mta,
        smtp_command=found.smtp_command or command.find_command(diagnostic),
        last_attempt=found.last_attempt,
    )


# --- JSON notifications --------------------------------------------------------------------
def _looks_like_notification(mail: Mail) -> bool:
    if "x-amz-sns-message-id" in mail.headers or "sns.amazonaws.com" in mail.sender_lower:
        return True
    head = mail.text.lstrip()[:4096]
    return head.startswith("{") and ('"notificationType"' in head or '"eventType"' in head)


def _load_notification(text: str) -> dict[str, Any] | None:
    document = _load_json(text)
    if document is None:
        return None
    inner = document.get("Message")
    if isinstance(inner, str) and document.get("Type") == "Notification":
        document = _load_json(inner) or {}
    kind = document.get("notificationType") or document.get("eventType")
    return document if kind in _KINDS else None


def _load_json(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    for candidate in (text[start:], _FOLD_JUNK.sub("", text[start:])):
        try:
            value, _ = json.JSONDecoder().raw_decode(candidate)
        except (ValueError, RecursionError):  # junk, or nesting deeper than any notification
            continue
        if isinstance(value, dict):
            return value
    return None


def _from_notification(document: dict[str, Any]) -> list[Facts]:
    kind = document.get("notificationType") or document.get("eventType")
    if kind == "Complaint":
        return _complaint(_dict(document.get("complaint")))
    if kind == "Delivery":
        return _delivery(_dict(document.get("delivery")))
    if kind == "DeliveryDelay":
        body = _dict(document.get("deliveryDelay"))
        return _failures(body, "delayedRecipients", Action.DELAYED)
    return _failures(_dict(document.get("bounce")), "bouncedRecipients", Action.FAILED)


def _failures(body: dict[str, Any], key: str, action: Action) -> list[Facts]:
    reporting = typed_value(_str(body.get("reportingMTA")))[1]
    subtype = _str(body.get("bounceSubType")).lower()
    out: list[Facts] = []
    for recipient in _dicts(body.get(key)):
        address = _str(recipient.get("emailAddress"))
        if not address:
            continue
        diagnostic = squash(typed_value(_str(recipient.get("diagnosticCode")))[1])
        hint, rule = _SUBTYPES.get(subtype, (None, "")) if not diagnostic else (None, "")
        found = facts(
            address,
            diagnostic,
            action=_action(_str(recipient.get("action"))) or action,
            status_code=status.normalize(_str(recipient.get("status"))),
            reporting_mta=reporting,
            remote_mta=_str(recipient.get("remoteMtaIp")),
            reason_hint=hint,
            hint_rule=rule,
        )
        out.append(found)
    return out


def _complaint(body: dict[str, Any]) -> list[Facts]:
    feedback_type = _str(body.get("complaintFeedbackType")).lower() or "abuse"
    return [
        Facts(
            address=_str(recipient.get("emailAddress")),
            feedback_type=feedback_type,
            reason_hint=Reason.FEEDBACK,
            hint_rule="amazonses.complaint",
        )
        for recipient in _dicts(body.get("complainedRecipients"))
        if _str(recipient.get("emailAddress"))
    ]


def _delivery(body: dict[str, Any]) -> list[Facts]:
    response = _str(body.get("smtpResponse"))
    reporting = _str(body.get("reportingMTA"))
    recipients = body.get("recipients")
    addresses = (
        [a for a in recipients if isinstance(a, str)] if isinstance(recipients, list) else []
    )
    return [
        facts(address, response, action=Action.DELIVERED, reporting_mta=reporting)
        for address in addresses
    ]


def _action(value: str) -> Action | None:
    parsed = Action.parse(value)
    return parsed if parsed is not Action.NONE else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
