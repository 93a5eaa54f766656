"""Which SMTP command a failure answered, from the words MTAs wrap around a server's reply."""

from __future__ import annotations

import re

# Postfix: "(in reply to RCPT TO command)", "while receiving the initial server greeting";
# Exim: "SMTP error from remote mail server after RCPT TO:<a@b>:"; Sendmail: ">>> DATA";
# qmail: "most progress was RCPT TO response"; others: "after end of data", "in reply to end of
# DATA command", "during MAIL FROM".
_COMMAND = re.compile(
    r"(?:in reply to|after|while sending|while receiving|during|>>>|progress was|response to)\s+"
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
    match = _COMMAND.search(text)
    if not match:
        return ""
    if match.group("eod"):
        return "DATA"
    return _CANONICAL.get(match.group("cmd").lower(), "")
