"""RFC 3464 delivery status notifications inside an RFC 6522 multipart/report.

The message/delivery-status part is a block of per-message fields followed by one block per
recipient (RFC 3464 section 2). Real MTAs are loose about the blank lines between blocks, so a new
recipient block starts at a blank line *or* at a recipient field repeated within the current block.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.message import Mail
from bounceback.core.quick import may_contain
from bounceback.core.report import Facts, Problem
from bounceback.core.standards import command, reply, status
from bounceback.core.taxonomy import Action

NAME = "rfc3464"

_FIELD = r"([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)"
# Each line of a text, as (name, value, "") when it is a field and ("", "", line) when not: the
# first branch fails on a line that is not a field, and the second then takes it whole. Every
# line gives one match, as str.split("\n") gives one string (an empty line an empty match).
_LINE = re.compile(r"^(?:" + _FIELD + r"|(.*))$", re.M)
_RECIPIENT_FIELDS = frozenset({"final-recipient", "original-recipient", "x-actual-recipient"})
_PER_MESSAGE = frozenset(
    {
        "reporting-mta",
        "original-envelope-id",
        "received-from-mta",
        "arrival-date",
        "dsn-gateway",
        "x-postfix-queue-id",
        "x-postfix-sender",
        "x-original-message-id",
    }
)

_SPACES = re.compile(r"\s+")
_ENVID = re.compile(r"^original-envelope-id[ \t]*:[ \t]*(.*)$", re.I | re.M)

Block = dict[str, str]


def parse_fields(text: str) -> tuple[Block, list[Block]]:
    """The per-message block and the per-recipient blocks of a delivery-status body.

    Field names are lower-cased (Exim spells them differently), continuation lines are joined
    with a single space, and a field repeated in one block keeps its first value.
    """
    per_message: Block = {}
    recipients: list[Block] = []
    current: Block | None = None
    last: str | None = None
    # One search reads every line: a field's name and value, or else the line itself.
    for field, raw_value, line in _LINE.findall(text)[:20_000]:
        if not field:
            if not line or line.isspace():  # blank: what strip() would empty, with no copy made
                if current:
                    recipients.append(current)
                current = None
                last = None
            elif line[0] in " \t" and last is not None:  # a continuation line
                target = current if current is not None else per_message
                if last in target:
                    target[last] = (target[last] + " " + line.strip())[:16_384]
            continue  # (a line that is none of these is skipped)
        name, value = field.lower(), raw_value.strip()
        if current is None and name in _PER_MESSAGE and not recipients:
            per_message.setdefault(name, value)
            last = name
            continue
        if current is not None and name in _RECIPIENT_FIELDS and name in current:
            recipients.append(current)  # a second recipient without a blank line between
            current = None
        if current is None:
            if name in _PER_MESSAGE:
                per_message.setdefault(name, value)
                last = name
                continue
            current = {}
        current.setdefault(name, value)
        last = name
    if current:
        recipients.append(current)
    return per_message, [b for b in recipients if _is_recipient(b)]


def _is_recipient(block: Block) -> bool:
    return any(k in block for k in _RECIPIENT_FIELDS) or "action" in block or "status" in block


def typed_value(value: str) -> tuple[str, str]:
    """``"smtp; 550 ..."`` -> ("smtp", "550 ..."); a value without a type keeps it all."""
    head, sep, rest = value.partition(";")
    if sep and head.strip() and " " not in head.strip() and len(head) <= 20:
        return head.strip().lower(), rest.strip()
    return "", value.strip()


def facts_from_block(block: Block, per_message: Block) -> Facts | None:
    """One recipient's :class:`Facts` from its DSN fields (None when it names no address)."""
    # A field the block does not have reads as "" without the calls (each gives "" for "").
    # Most blocks lack X-Actual-Recipient, many Original-Recipient and Remote-MTA.
    get = block.get
    final = addr.clean(get("final-recipient", ""))
    original = _clean(get("original-recipient", ""))
    actual = _clean(get("x-actual-recipient", ""))
    address = final if addr.is_address(final) else (original or actual or final)
    if not address:
        return None
    diag_type, diagnostic = typed_value(get("diagnostic-code", ""))
    diagnostic = _unquote(diagnostic)
    status_field = status.normalize(get("status", ""))
    remote = get("remote-mta", "")
    reporting = per_message.get("reporting-mta", "")
    return Facts(
        address=address,
        original_recipient=original if original.lower() != address.lower() else "",
        action=Action.parse(get("action", "")),
        status=status.more_specific(status_field, diagnostic),
        reply_code="" if diag_type == "x-unix" else reply.find_reply_code(diagnostic),
        diagnostic=diagnostic,
        diagnostic_type=diag_type,
        remote_mta=typed_value(remote)[1] if remote else "",
        reporting_mta=typed_value(reporting)[1] if reporting else "",
        smtp_command=command.find_command(diagnostic) if diagnostic else "",
        last_attempt=get("last-attempt-date", ""),
    )


def _clean(value: str) -> str:
    return addr.clean(value) if value else ""


def _unquote(text: str) -> str:
    """Some MTAs wrap the whole diagnostic in quotes or leave MIME-style folding artefacts."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return _SPACES.sub(" ", text[1:-1])
    return " ".join(text.split())  # the same as the substitution on a stripped text, faster


def detect(mail: Mail) -> list[Facts] | None:
    """Facts for each recipient of the message/delivery-status part, or None when there is none."""
    part = mail.delivery_status
    if part is None:
        return None
    per_message, blocks = parse_fields(part.text)
    facts = [f for f in (facts_from_block(b, per_message) for b in blocks) if f is not None]
    if not facts:
        mail.problems.append(Problem("dsn.no_recipient", "delivery-status names no recipient"))
        return None
    return facts


def envelope_id(mail: Mail) -> str:
    """The Original-Envelope-ID (RFC 3461 ENVID) of the report, if any."""
    part = mail.delivery_status
    if part is None:
        return ""
    text = part.text
    # Few reports carry one: a plain search for the field name before the pattern.
    if not may_contain(text, ("original-envelope-id",)):
        return ""
    match = _ENVID.search(text)
    return match.group(1).strip() if match else ""
