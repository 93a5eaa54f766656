"""qmail's failure notice (qmail-send, and the netqmail, qmail-ldap, vpopmail variants).

    Hi. This is the qmail-send program at mx.example.jp.
    I'm afraid I wasn't able to deliver your message to the following addresses.
    This is a permanent error; I've given up. Sorry it didn't work out.

    <kijitora@example.jp>:
    192.0.2.1 does not like recipient.
    Remote host said: 550 5.1.1 <kijitora@example.jp>... User Unknown
    Giving up on 192.0.2.1.

    --- Below this line is a copy of the message.

Each recipient is a line ``<address>:`` and the text after it up to a blank line. qmail-remote's
sentence around the server's answer says which command was refused ("does not like recipient"
is RCPT, "sender was rejected" MAIL, "my name was rejected" HELO, "failed after I sent the
message" DATA).
"""

from __future__ import annotations

import re

from bounceback.core.formats._common import facts, squash
from bounceback.core.formats._mta import unfold
from bounceback.core.message import Mail
from bounceback.core.quick import may_contain
from bounceback.core.report import Facts
from bounceback.core.standards import reply
from bounceback.core.standards import status as st
from bounceback.core.taxonomy import Reason

NAME = "qmail"

_SIGNATURE = re.compile(
    r"this is the qmail-send program at|"
    r"i'm afraid i wasn't able to deliver your message to the following addresses|"
    r"i tried to deliver a bounce message to this address, but the bounce bounced",
    re.I,
)
_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:[ \t]*(.*)$")
_COPY = re.compile(r"^--- (?:below this line|enclosed is) ", re.I)
# qmail-send's own words when it gives up on a message that kept failing temporarily.
_GAVE_UP = re.compile(
    r"i'm not going to try again; this\s+message has been in the queue too long\.?", re.I
)
# qmail-remote's sentence before the server's answer -> the SMTP command it answered. Each
# pattern comes with words every match contains: the pattern runs only when they are there.
_COMMANDS = (
    (
        "but sender was rejected",
        re.compile(r"connected to \S+ but sender was rejected", re.I),
        "MAIL",
    ),
    (
        "but my name was rejected",
        re.compile(r"connected to \S+ but my name was rejected", re.I),
        "HELO",
    ),
    ("but greeting failed", re.compile(r"connected to \S+ but greeting failed", re.I), "CONN"),
    (" does not like recipient", re.compile(r"\S+ does not like recipient", re.I), "RCPT"),
    (" failed on data command", re.compile(r"\S+ failed on DATA command", re.I), "DATA"),
    (" failed after i sent", re.compile(r"\S+ failed after I sent the message", re.I), "DATA"),
    (
        "most progress was ",
        re.compile(r"most progress was (RCPT TO|MAIL FROM|DATA|HELO|EHLO)", re.I),
        "",
    ),
    (
        "wasn't able to establish",
        re.compile(r"wasn't able to establish an SMTP connection", re.I),
        "CONN",
    ),
)
_PROGRESS = {"rcpt to": "RCPT", "mail from": "MAIL", "data": "DATA", "helo": "HELO", "ehlo": "HELO"}


def detect(mail: Mail) -> list[Facts] | None:
    if not (
        "mailer-daemon" in mail.sender_lower
        or "failure notice" in mail.subject_lower
        or "qmail" in mail.received_lower
    ):
        return None
    # Most daemon notices are not qmail's: a plain search for the signature's words first.
    if not mail.mentions("qmail-send program", "wasn't able to deliver", "the bounce bounced"):
        return None
    text = mail.text
    if not _SIGNATURE.search(text[:3000]):
        return None
    found = [_fact(address, lines) for address, lines in _paragraphs(text)]
    return found or None


def _paragraphs(text: str) -> list[tuple[str, list[str]]]:
    """Each ``<address>:`` line with the lines that follow it, up to a blank line."""
    out: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.split("\n")[:5000]:
        if _COPY.match(line.strip()):
            break
        match = _RECIPIENT.match(line.strip())
        if match:
            current = [match.group(2)] if match.group(2).strip() else []
            out.append((match.group(1), current))
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line.strip())
    return out


def _fact(address: str, lines: list[str]) -> Facts:
    text = squash(" ".join(lines))
    gave_up = may_contain(text, ("i'm not going to try again",)) and bool(_GAVE_UP.search(text))
    diagnostic = unfold(squash(_GAVE_UP.sub(" ", text)) if gave_up else text)
    hint: Reason | None = None
    rule = ""
    if gave_up and not (st.find_status(diagnostic) or reply.find_reply_code(diagnostic)):
        # Only qmail-send's "in the queue too long": the queue lifetime ran out.
        hint, rule = Reason.EXPIRED, "qmail.queue-too-long"
    return facts(
        address, diagnostic, smtp_command=_command(diagnostic), reason_hint=hint, hint_rule=rule
    )


def _command(text: str) -> str:
    lower = text.lower()
    for needle, pattern, name in _COMMANDS:
        match = pattern.search(text) if may_contain(text, (needle,), lower) else None
        if match:
            return name or _PROGRESS.get(match.group(1).lower(), "")
    return ""
