"""au by KDDI's EZweb (ezweb.ne.jp): "Mail System Error - Returned Mail" from Postmaster.

The notice (Japanese in ISO-2022-JP, then English) says why in one of a few fixed English
sentences, then lists the recipients, either alone ("<a@ezweb.ne.jp>") or with the SMTP
exchange that failed::

    Each of the following recipients was rejected by a remote mail server.

        Recipient: <kijitora@example.com>
        >>> RCPT TO:<kijitora@example.com>
        <<< 550 <kijitora@example.com>: User unknown

Some carry a delivery-status part without a diagnostic; the notice then quotes the answer as
"<a@ezweb.ne.jp>: 550 user unknown (in reply to RCPT TO command)".
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464
from bounceback.core.taxonomy import Reason

NAME = "ezweb"

# EZweb's fixed sentences and what each one means.
_SENTENCES: tuple[tuple[str, Reason, str], ...] = (
    ("the user(s) account is disabled", Reason.SUSPENDED, "ezweb.account-disabled"),
    ("the user(s) account is temporarily limited", Reason.SUSPENDED, "ezweb.account-limited"),
    ("the user(s) account is temporarily over quota", Reason.MAILBOX_FULL, "ezweb.over-quota"),
    ("your message was not delivered within", Reason.EXPIRED, "ezweb.not-delivered-within"),
)
# Rejected with no server answer quoted: EZweb's own gateway refused the message for the
# recipient (its reception filter), not a remote server that said why.
_REJECTED = "each of the following recipients was rejected by a remote"
_RECIPIENT = re.compile(r"^\s*recipient:\s*<?([^\s<>]+@[^\s<>]+)>?\s*$", re.I | re.M)
_LONE_ADDRESS = re.compile(r"^\s*<([^\s<>]+@[^\s<>]+)>\s*$", re.M)
_SENT = re.compile(r"^\s*>>>\s*(\S+)", re.M)
_ANSWER = re.compile(r"^\s*<<<\s*(.+)$", re.M)
_LINE_BREAK = re.compile(r"(?<=\S)[ \t]*\n[ \t]*(?=\S)")
_PARAGRAPH_END = re.compile(r"\n\s*\n| -{5,}")


def detect(mail: Mail) -> list[Facts] | None:
    if not _is_ezweb(mail):
        return None
    notice = mail.notice
    lower = squash(notice).lower()
    hint = next(((r, rule, s) for s, r, rule in _SENTENCES if s in lower), None)
    found = _transcripts(notice)
    if not found:
        found = _listed(mail, notice)
    if not found:
        return None
    if hint is None and _REJECTED in lower and not any(f.diagnostic for f in found):
        hint = (Reason.FILTERED, "ezweb.rejected-without-answer", _REJECTED)
    if hint is None:
        return found
    reason, rule, sentence = hint
    said = _sentence(notice, sentence)
    return [_with_hint(f, reason, rule, said) for f in found]


def _is_ezweb(mail: Mail) -> bool:
    if "ezweb.ne.jp" not in mail.sender_lower:
        return False
    return "ezweb" in mail.received_lower or mail.subject_lower.startswith("mail system error")


def _transcripts(notice: str) -> list[Facts]:
    """The "Recipient: <a@b>" blocks with the command sent and the server's answer."""
    out: list[Facts] = []
    starts = list(_RECIPIENT.finditer(notice))
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(notice)
        block = notice[match.end() : end].split("\n\n", maxsplit=1)[0]
        sent = _SENT.search(block)
        answers = [a.group(1) for a in _ANSWER.finditer(block)]
        command = sent.group(1).split(":")[0].upper() if sent else ""
        out.append(
            facts(
                addr.clean(match.group(1)),
                " ".join(answers),
                smtp_command={"EHLO": "HELO"}.get(command, command),
            )
        )
    return out


def _listed(mail: Mail, notice: str) -> list[Facts]:
    """Recipients of the delivery-status part, else the lone "<a@b>" lines of the notice; the
    answer, if any, from the notice's "<a@b>: 550 ..." line."""
    dsn = rfc3464.detect(mail) if mail.delivery_status is not None else None
    addresses = (
        [f.address for f in dsn]
        if dsn
        else [addr.clean(m.group(1)) for m in _LONE_ADDRESS.finditer(notice)]
    )
    out: list[Facts] = []
    for address in addresses:
        answer = re.search(re.escape(address) + r">?:\s*(.+(?:\n\s+.+)*)", notice, re.I)
        found = facts(address, answer.group(1) if answer else "")
        if dsn and not found.status:
            status = next((f.status for f in dsn if f.address == address), "")
            found = facts(address, found.diagnostic, status_code=status)
        out.append(found)
    return out


def _sentence(notice: str, start: str) -> str:
    """The notice's own words from ``start`` to the end of that paragraph."""
    flat = _LINE_BREAK.sub(" ", notice)  # unfold lines, keep blank lines
    i = flat.lower().find(start)
    if i < 0:
        return ""
    paragraph = _PARAGRAPH_END.split(flat[i:], maxsplit=1)[0]
    return squash(paragraph)


def _with_hint(found: Facts, reason: Reason, rule: str, sentence: str) -> Facts:
    return facts(
        found.address,
        found.diagnostic or sentence,
        status_code=found.status,
        reply_code=found.reply_code,
        smtp_command=found.smtp_command,
        reason_hint=reason,
        hint_rule=rule,
    )
