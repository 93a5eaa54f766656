"""Helpers for the notices of mail server software (Exim, Postfix, qmail, Courier, ...).

Two needs recur: cutting a notice into one paragraph per recipient, and reading a delivery-status
part whose fields are poorer than the human-readable notice next to it (the notice says which
SMTP command the server answered; the report often does not).
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.frozen import replace
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command, reply, rfc3464
from bounceback.core.standards import status as st

_HOST = re.compile(r"\bhost\s+([A-Za-z0-9][\w.-]*\.[A-Za-z]{2,})\s*\[", re.I)


def remote_host(text: str) -> str:
    """The remote host named as ``host mx.example.com [192.0.2.1]`` (Exim, Postfix style)."""
    match = _HOST.search(text)
    return match.group(1) if match else ""


# The code first, then the character before it checked (as a lookbehind in front would): a
# pattern that starts with a character set is searched far faster.
_FIRST_REPLY = re.compile(r"([245]\d\d)(?<![\w.]...)[ -](?:([245]\.\d{1,3}\.\d{1,3})\s)?")


def unfold(text: str) -> str:
    """A multi-line SMTP reply joined into one ("550-5.7.1 Messages with multiple 550-5.7.1
    addresses ..."): the code prefixes of the continuation lines removed, the first kept, so
    that phrases broken across lines read whole again."""
    first = _FIRST_REPLY.search(text)
    if first is None:
        return text
    # Every repeat below holds "<code>-" or "<code> <status>": a reply of one line (most of
    # them) has neither after its start, and is returned without making the pattern.
    rest = text[first.end() :]
    literal, status = first.group(1), first.group(2)
    if literal + "-" not in rest and (not status or f"{literal} {status}" not in rest):
        return text
    code = re.escape(literal)
    repeat = rf"\s{code}-" + (rf"(?:{re.escape(status)}\s)?" if status else "")
    if status:
        repeat = rf"(?:{repeat}|\s{code} {re.escape(status)}\s)"
    return text[: first.end()] + re.sub(repeat, " ", rest)


def dsn_facts(mail: Mail) -> list[Facts]:
    """Facts of the delivery-status part (empty when there is none or it names nobody)."""
    part = mail.delivery_status
    if part is None:
        return []
    per_message, blocks = rfc3464.parse_fields(part.text)
    return [f for f in (rfc3464.facts_from_block(b, per_message) for b in blocks) if f]


def enrich(fact: Facts, paragraph: str) -> Facts:
    """Fill what the report left out from the recipient's paragraph of the notice: the SMTP
    command, the remote host, the reply code (any diagnostic type) and, when the report has no
    diagnostic, the paragraph itself."""
    text = " ".join(paragraph.split())  # whitespace collapsed to single spaces
    diagnostic = unfold(fact.diagnostic or text)
    return replace(
        fact,
        diagnostic=diagnostic,
        status=st.more_specific(fact.status, diagnostic),
        reply_code=fact.reply_code or reply.find_reply_code(diagnostic),
        smtp_command=fact.smtp_command or command.find_command(text),
        remote_mta=fact.remote_mta or remote_host(text),
    )


_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def paragraph_of(text: str, address: str) -> str:
    """The paragraph of ``text`` (blank-line separated) that starts by naming ``address``."""
    if not address:
        return ""
    needle = address.lower()
    for block in _BLANK_LINE.split(text):
        head = block.lstrip()[: len(needle) + 4].lower()
        if head.startswith((needle, "<" + needle)):
            return block.strip()
    return ""


def find_local(recipients: list[str], local: str) -> str:
    """The address among ``recipients`` whose local part is ``local`` ("" when none or unsure)."""
    found = [r for r in recipients if r.lower().split("@", 1)[0] == local.lower()]
    return found[0] if len(found) == 1 else ""


def header_addresses(mail: Mail, name: str) -> list[str]:
    return addr.find_addresses(mail.header(name))
