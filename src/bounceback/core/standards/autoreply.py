"""RFC 3834 automatic responses (out of office, vacation): never a bounce.

RFC 3834 says an automatic response carries ``Auto-Submitted: auto-replied``. Many responders
predate it or ignore it, so the well-known vendor headers and subject prefixes count too. A
message from a mailer daemon is never an auto-reply here, whatever its headers say: Exim, for one,
marks its bounces ``Auto-Submitted: auto-replied``. This detector runs after every bounce
detector for that reason.

An automatic reply whose only message is that the mailbox is out of use ("This email inbox
a@b is no longer in use") answers for a dead address: it is reported as a failure with that
sentence as its diagnostic (the rule tables decide its reason), not as an auto-reply.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.quick import may_contain
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Action, Reason

NAME = "rfc3834"

# Header -> values that mark an automatic reply ("" = any value).
_HEADER_RULES: tuple[tuple[str, str, str], ...] = (
    # (rule id, header, value pattern)
    ("autoreply.auto-submitted", "Auto-Submitted", r"^auto-replied"),
    ("autoreply.x-autoreply", "X-Autoreply", r""),
    ("autoreply.x-autorespond", "X-Autorespond", r""),
    ("autoreply.x-autoresponder", "X-AutoResponder", r""),
    ("autoreply.precedence", "Precedence", r"^auto[_-]reply"),
    # Apple iCloud: "X-Apple-Action: VACATION"
    ("autoreply.x-apple-action", "X-Apple-Action", r"vacation"),
    # Exchange: "X-MS-Exchange-Inbox-Rules-Loop" only appears on rule-generated replies
    ("autoreply.x-ms-inbox-rules-loop", "X-MS-Exchange-Inbox-Rules-Loop", r""),
)

# Subjects that vacation responders write, in the languages of the corpus and beyond.
_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic|matische)?[ _-]?(?:reply|response|respons|antwort)|autoreply|"
    r"auto:|out of (?:the )?office|abwesenheitsnotiz|réponse automatique|absence|"
    r"respuesta automática|risposta automatica|vacation|away from|on vacation|"
    r"自動応答|不在|自动回复)",
    re.I,
)
# A responder that says the address itself is gone: "This email inbox a@b is no longer in use."
_OUT_OF_USE = re.compile(
    r"(?:[^.\n]|\.(?=\S)){0,120}\b(?:inbox|mailbox|e-?mail address|e-?mail account|address)\b"
    r"(?:[^.\n]|\.(?=\S)){0,80}\bis no longer (?:in use|active)\b[^.\n]*\.?",
    re.I,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|mmdf|mail administrator", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|fail)|returned mail|failure notice|non.?delivery|"
    r"mail delivery failed|delivery notification",
    re.I,
)


def rule_for(mail: Mail) -> tuple[str, str] | None:
    """(rule id, matched text) when the message is an automatic reply, else None."""
    if _DAEMON.search(mail.sender) or _BOUNCE_SUBJECT.search(mail.subject):
        return None
    auto_submitted = mail.header("Auto-Submitted").strip().lower()
    if auto_submitted.startswith("auto-generated"):
        return None
    for rule_id, header, pattern in _HEADER_RULES:
        value = mail.header(header)
        if header in mail.headers and (not pattern or re.search(pattern, value, re.I)):
            return rule_id, f"{header}: {value}".strip()
    match = _SUBJECT.search(mail.subject)
    if match:
        return "autoreply.subject", mail.subject
    return None


def _out_of_use(notice: str) -> re.Match[str] | None:
    flat = " ".join(notice.split())[:4000]
    # The pattern tries its bounded repeats at every position, which is slow on a long text: it
    # runs only where its fixed words are.
    if not may_contain(flat, ("is no longer ",)):
        return None
    return _OUT_OF_USE.search(flat)


def detect(mail: Mail) -> list[Facts] | None:
    found = rule_for(mail)
    if found is None:
        return None
    rule_id, _ = found
    out_of_use = _out_of_use(mail.notice)
    if out_of_use:
        sentence = out_of_use.group(0).strip()
        address = addr.find_address(sentence) or addr.find_address(mail.sender)
        return [Facts(address=address, action=Action.FAILED, diagnostic=sentence)]
    return [
        Facts(
            address=addr.find_address(mail.sender),
            reason_hint=Reason.AUTO_REPLY,
            hint_rule=rule_id,
        )
    ]
