"""Which SMTP command a failure answered, from the words MTAs wrap around a server's reply."""

from __future__ import annotations

import re

from bounceback.core.quick import contains_any, has_case_traps

# Postfix: "(in reply to RCPT TO command)", "while receiving the initial server greeting";
# Exim: "SMTP error from remote mail server after RCPT TO:<a@b>:"; Sendmail: ">>> DATA";
# qmail: "most progress was RCPT TO response"; others: "after end of data", "in reply to end of
# DATA command", "during MAIL FROM".
_LEADS = (
    "in reply to",
    "after",
    "while sending",
    "while receiving",
    "during",
    ">>>",
    "progress was",
    "response to",
)
_SOURCE = (
    "(?:" + "|".join(map(re.escape, _LEADS)) + r")\s+"
    r"(?:the\s+)?(?:end of\s+(?P<eod>data)|(?P<cmd>rcpt|mail|data|helo|ehlo|starttls|auth|"
    r"connect|quit|bdat|rset|xforward|initial connection|"
    r"(?:initial )?(?:server )?greeting|banner))"
)
_COMMAND = re.compile(_SOURCE, re.I)
# The same over the lower-cased text, case-sensitively: several times faster, as each position
# is left at one plain character test. Lower-casing the text finds what re.I finds unless the
# text holds one of quick's case traps; then _COMMAND reads the text itself.
_COMMAND_LOWER = re.compile(_SOURCE)
_CANONICAL = {
    "rcpt": "RCPT",
    "mail": "MAIL",
    "data": "DATA",
    "bdat": "DATA",
    "helo": "HELO",
    "ehlo": "HELO",
    "starttls": "STARTTLS",
    "auth": "AUTH",
    "connect": "CONN",
    "initial connection": "CONN",
    "greeting": "CONN",
    "initial greeting": "CONN",
    "server greeting": "CONN",
    "initial server greeting": "CONN",
    "banner": "CONN",
}


def find_command(text: str) -> str:
    """The SMTP command a failure answered ("RCPT", "DATA", ...), or ``""``."""
    if has_case_traps(text):
        match = _COMMAND.search(text)
    else:
        lower = text.lower()
        # The pattern runs only when one of the words that begin a match is there.
        if not contains_any(lower, _LEADS):
            return ""
        match = _COMMAND_LOWER.search(lower)
    if not match:
        return ""
    if match.group("eod"):
        return "DATA"
    return _CANONICAL.get(match.group("cmd").lower(), "")
