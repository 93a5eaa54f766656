"""Which SMTP command a failure answered, from the words MTAs wrap around a server's reply."""

from __future__ import annotations

import re

from bounceback.core.quick import may_contain

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
_COMMAND = re.compile(
    "(?:" + "|".join(map(re.escape, _LEADS)) + r")\s+"
    r"(?:the\s+)?(?:end of\s+(?P<eod>data)|(?P<cmd>RCPT|MAIL|DATA|HELO|EHLO|STARTTLS|AUTH|"
    r"CONNECT|QUIT|BDAT|RSET|XFORWARD|initial connection|"
    r"(?:initial )?(?:server )?greeting|banner))",
    re.I,
)
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
    # A case-insensitive pattern is slow to try at every position: it runs only when one of the
    # words that begin a match is there.
    if not may_contain(text, _LEADS):
        return ""
    match = _COMMAND.search(text)
    if not match:
        return ""
    if match.group("eod"):
        return "DATA"
    return _CANONICAL.get(match.group("cmd").lower(), "")
