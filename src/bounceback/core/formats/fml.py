"""fml (a mailing list manager): the list's notices to a sender it refused or could not serve.

Header "X-MLServer: fml [fml 4.0.3 ...]", a Message-ID with ".FML", from the list's -admin
address. The notice names the list address in angle brackets, and its subject or first sentence
is one of fml's fixed texts::

    Subject: You sironeko@neko.example.org are not member (neko-nyaan ML)
    You are not a member of this mailing list <neko-nyaan@example.org>.

    Subject: Loop Alert: Duplicated Message-ID (neko ML)
    Duplicated Message-ID in <neko@example.co.jp>.

The recipient is the list that refused the message; fml's fixed texts say why.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts, squash
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "fml"

_BRACKETED = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
# fml's fixed texts (subject or notice) and what they mean.
_FIXED: tuple[tuple[re.Pattern[str], str, Reason], ...] = (
    # "You are not a member of this mailing list <list@example.org>."; "NOT MEMBER article from
    # a@b"; "reject mail from a@b": the list takes posts from its members only.
    (
        re.compile(
            r"are not (?:a )?member|not member article from|reject (?:mail|spammers)|"
            r"spam mail from a spammer is rejected",
            re.I,
        ),
        "fml.not-member",
        Reason.SENDER_REJECTED,
    ),
    # "Security Alert": fml refused a command or a post it judged dangerous.
    (re.compile(r"security alert", re.I), "fml.security-alert", Reason.SECURITY_ERROR),
    # "Loop Alert: Duplicated Message-ID"; "Loop Back Warning:": the list saw this message
    # before and stopped it.
    (
        re.compile(
            r"loop alert|loop back warning|loop condition|unix from loop|fml system error", re.I
        ),
        "fml.loop-or-system-error",
        Reason.SYSTEM_ERROR,
    ),
)


def detect(mail: Mail) -> list[Facts] | None:
    if "fml" not in mail.header("X-MLServer").lower():
        return None
    notice = mail.notice.split("Original mail as follows:", 1)[0]
    found = _BRACKETED.search(notice)
    if found is None:
        return None
    paragraph = squash(notice.strip().split("\n\n", 1)[0])
    for pattern, rule, reason in _FIXED:
        if pattern.search(paragraph) or pattern.search(mail.subject):
            return [
                facts(addr.clean(found.group(1)), paragraph, reason_hint=reason, hint_rule=rule)
            ]
    return [facts(addr.clean(found.group(1)), paragraph)]
