"""Enhanced mail system status codes (RFC 3463, the IANA registry of RFC 5248) in free text.

A status code is ``class.subject.detail``: class 2 (success), 4 (persistent transient failure) or
5 (permanent failure); subject 0-7; detail 0-999. Finding one inside a server response needs care:
IP addresses and version numbers look alike, so a code must stand alone between non-digits.
"""

from __future__ import annotations

import re

from bounceback.core.standards.reply import find_reply_code

# "550 5.1.1 <a@b>: Recipient address rejected", "#5.1.1", "(#5.7.1)", "[4.7.0]" but not the
# "5.0.2" inside "192.5.0.2" nor the "4.1.2" of "version 4.1.2.7". The class digit comes first
# and the character before it is checked after it (the same test as a lookbehind in front):
# a pattern that starts with a character set lets the engine skip to the candidates quickly.
_STATUS = re.compile(r"([245])(?<![\w.].)\.([0-7])\.(\d{1,3})(?![\w]|\.\d)")

# Subjects (RFC 3463 section 3): the second number of a status code.
SUBJECTS = {
    "0": "Other or undefined status",
    "1": "Addressing status",
    "2": "Mailbox status",
    "3": "Mail system status",
    "4": "Network and routing status",
    "5": "Mail delivery protocol status",
    "6": "Message content or message media status",
    "7": "Security or policy status",
}


def find_status(text: str) -> str:
    """The first enhanced status code in ``text``, or ``""``."""
    match = _STATUS.search(text)
    return match.group(0) if match else ""


def find_all(text: str) -> list[str]:
    return [m.group(0) for m in _STATUS.finditer(text)]


def normalize(value: str) -> str:
    """The status code at the start of a DSN Status field ("5.1.1 (user unknown)" -> "5.1.1")."""
    value = value.strip()
    match = _STATUS.match(value) or _STATUS.search(value[:40])
    return match.group(0) if match else ""


def is_generic(status: str) -> bool:
    """x.0.0: says only success, temporary or permanent."""
    return status.endswith(".0.0") or status == ""


def more_specific(field: str, text: str) -> str:
    """The status code to report for a recipient: the remote server's own code when its answer
    (the diagnostic) holds one of the same class, else the DSN Status field.

    The Status field is the reporting MTA's summary; the server's answer is the primary fact.
    Exim always writes 5.0.0, Sendmail and others map the answer to a code of their own (5.7.1
    for a server's 5.1.1), so the code inside the answer says more whenever there is one.
    """
    found = find_status(text)
    if not field:
        return found
    if found and found[0] == field[0] and not is_generic(found):
        return found
    if found[:1] == "5" and field[0] == "4" and find_reply_code(text)[:1] == "5":
        # A temporary summary of a permanent answer ("Status: 4.5.0" for "550 5.5.0"): the
        # server's refusal is final. The other way round (a permanent summary of a temporary
        # answer) is an MTA giving up after retries, and its own status says so.
        return found
    return field
