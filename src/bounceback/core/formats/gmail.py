"""Gmail's own notices (mailer-daemon@googlemail.com) that carry no usable delivery-status part.

Two generations of text. The older one (until about 2016)::

    Delivery to the following recipient failed permanently:      (or "has been delayed:")

         kijitora@example.jp

    Technical details of permanent failure:                        (or "temporary failure:")
    Google tried to deliver your message, but it was rejected by the server for the recipient
    domain example.jp by mx.example.jp. [192.0.2.153].

    The error that the other server returned was:
    550 5.1.1 <kijitora@example.jp>... User Unknown (state 14).

The newer one ("** Address not found **", "** Message not delivered **") normally comes with a
delivery-status part that the RFC 3464 reader handles; when that part is empty, the failed
addresses are in X-Failed-Recipients and the answer follows "The response was:" or "The response
from the remote server was:".
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Action, Reason

NAME = "gmail"

_SENDER = re.compile(r"mailer-daemon@(?:googlemail|google|gmail)\.com", re.I)
_HEAD = re.compile(
    r"^\s*delivery to the following recipients? (?:failed permanently|has been delayed|"
    r"(?:have|has) been delayed|failed)\s*:\s*$",
    re.I | re.M,
)
_DETAILS = re.compile(r"technical details of (?:permanent|temporary) failure:", re.I)
_RETURNED = re.compile(r"the error that the other server returned was:\s*", re.I)
# "... rejected by the server for the recipient domain example.jp by mx.example.jp. [192.0.2.1]."
_REMOTE_HOST = re.compile(r"recipient domain \S+ by ([\w.-]+?)\.? \[", re.I)
# Gmail's SMTP client names the step that failed: "(state 14)". 13 = MAIL FROM, 14 = RCPT TO,
# 17 = DATA, 18 = end of the message data.
_STATE = re.compile(r"\(state (\d+)\)", re.I)
_STATE_COMMANDS = {"13": "MAIL", "14": "RCPT", "17": "DATA", "18": "DATA"}
# Gmail's fixed sentences whose meaning Gmail defines (not a remote server's answer).
_FIXED: tuple[tuple[str, str, Reason], ...] = (
    # "The recipient server did not accept our requests to connect. Learn more at
    # https://support.google.com/mail/answer/7720 [example.com. 192.0.2.1: socket error]":
    # Gmail kept failing to connect until it gave up (or is still retrying, in a delay notice).
    ("did not accept our requests to connect", "gmail.connect-retries", Reason.EXPIRED),
    # "DNS Error: Domain name not found"
    ("dns error: domain name not found", "gmail.dns-domain-not-found", Reason.HOST_UNKNOWN),
    # "You're sending this from a different address or alias using the 'Send mail as'
    # feature. The settings for your 'Send mail as' account are misconfigured or out of date."
    # (https://support.google.com/mail/?p=CustomFromDenied): the sending alias was refused.
    ("'send mail as' feature", "gmail.send-mail-as", Reason.SENDER_REJECTED),
)
_NEW_HEAD = re.compile(r"^\s*\*\* [^*\n]{3,60} \*\*\s*$", re.M)
_RESPONSE = re.compile(r"the response (?:from the remote server )?was:\s*", re.I)


def detect(mail: Mail) -> list[Facts] | None:
    if not _SENDER.search(mail.sender):
        return None
    text = mail.notice
    head = _HEAD.search(text)
    if head is not None:
        return _old_format(text, head) or None
    if _NEW_HEAD.search(text):
        return _new_format(mail, text) or None
    return None


def _old_format(text: str, head: re.Match[str]) -> list[Facts]:
    delayed = "delayed" in head.group(0).lower()
    rest = text[head.end() :]
    details = _DETAILS.search(rest)
    listing = rest[: details.start()] if details else rest
    lines = [line.strip() for line in listing.split("\n") if line.strip()]
    addresses = [addr.clean(line) for line in lines if addr.is_address(addr.clean(line))]
    if details is not None:
        diagnostic, remote = _details(rest[details.end() :])
    else:  # a delay without details: "... has been delayed: Message will be retried for 2 ..."
        others = [line for line in lines if not addr.is_address(addr.clean(line))]
        diagnostic, remote = squash(" ".join([head.group(0).strip(), *others])), ""
    state = _STATE.search(diagnostic)
    command = _STATE_COMMANDS.get(state.group(1), "") if state else ""
    hint, rule = _fixed(diagnostic)
    action = Action.DELAYED if delayed else Action.FAILED
    return [
        facts(
            a,
            diagnostic,
            action=action,
            remote_mta=remote,
            smtp_command=command,
            reason_hint=hint,
            hint_rule=rule,
        )
        for a in addresses
    ]


def _details(text: str) -> tuple[str, str]:
    """The server's answer (or Gmail's own explanation) and the remote host, from the technical
    details of a failure."""
    remote = _REMOTE_HOST.search(text)
    returned = _RETURNED.search(text)
    answer = text[returned.end() :] if returned else text
    answer = answer.split("\n\n")[0] if returned else answer.strip().split("\n\n")[0]
    return squash(answer), remote.group(1) if remote else ""


def _new_format(mail: Mail, text: str) -> list[Facts]:
    addresses = addr.find_addresses(mail.header("X-Failed-Recipients"))
    if not addresses:
        return []
    response = _RESPONSE.search(text)
    if response is not None:
        diagnostic = text[response.end() :].strip().split("\n\n")[0]
    else:
        diagnostic = text.strip().split("\n\n")[0]
    hint, rule = _fixed(text)
    return [facts(a, diagnostic, reason_hint=hint, hint_rule=rule) for a in addresses]


def _fixed(text: str) -> tuple[Reason | None, str]:
    lower = squash(text).lower()
    for phrase, rule, reason in _FIXED:
        if phrase in lower:
            return reason, rule
    return None, ""
