"""Small helpers that format modules share, so that each format module stays a page long."""

from __future__ import annotations

from bounceback.core.report import Facts
from bounceback.core.standards import command, reply, status
from bounceback.core.taxonomy import Action, Reason


def squash(text: str) -> str:
    """Collapse whitespace (line breaks included) to single spaces."""
    # str.split() and re's \s agree on what whitespace is; split-and-join is the fast way.
    return " ".join(text.split())


def facts(
    address: str,
    diagnostic: str,
    *,
    action: Action = Action.FAILED,
    status_code: str = "",
    reply_code: str = "",
    remote_mta: str = "",
    reporting_mta: str = "",
    smtp_command: str = "",
    reason_hint: Reason | None = None,
    hint_rule: str = "",
) -> Facts:
    """Facts for one recipient of a free-text notice; codes and the SMTP command are read from
    the diagnostic unless given."""
    diagnostic = squash(diagnostic)
    return Facts(
        address=address,
        action=action,
        status=status_code or status.find_status(diagnostic),
        reply_code=reply_code or reply.find_reply_code(diagnostic),
        diagnostic=diagnostic,
        remote_mta=remote_mta,
        reporting_mta=reporting_mta,
        smtp_command=smtp_command or command.find_command(diagnostic),
        reason_hint=reason_hint,
        hint_rule=hint_rule,
    )


def between(text: str, start: str, end: str = "", *, ignore_case: bool = True) -> str:
    """The text after the first ``start`` up to the next ``end`` (or the end); "" if no start."""
    hay = text.lower() if ignore_case else text
    i = hay.find(start.lower() if ignore_case else start)
    if i < 0:
        return ""
    i += len(start)
    if end:
        j = hay.find(end.lower() if ignore_case else end, i)
        if j >= 0:
            return text[i:j]
    return text[i:]
