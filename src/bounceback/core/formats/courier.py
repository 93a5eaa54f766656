"""The Courier mail server's delivery status notification.

    This is a delivery status notification from mx.example.org,
    running the Courier mail server, version 0.65.2.
    ...
                               UNDELIVERABLE MAIL

    Your message to the following recipients cannot be delivered:

    <kijitora@example.jp>:
        mx.example.jp [192.0.2.45]:
    >>> DATA
    <<< 550 Unknown user kijitora@example.jp

The delivery-status part that follows keeps the server's answer but not the ">>> DATA" line that
says which command it answered, so this detector runs before RFC 3464 and completes each of the
report's recipients from its paragraph (or reads the paragraphs alone when there is no report).
"""

from __future__ import annotations

import re

from bounceback.core.formats import _mta
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.quick import CaselessPattern, may_contain
from bounceback.core.report import Facts
from bounceback.core.standards import command
from bounceback.core.taxonomy import Action

NAME = "courier"

# Searched over the lower-cased text where it can (see quick).
_SIGNATURE = CaselessPattern(r"running the courier mail server, version")
_SUBJECT = re.compile(r"mail delivery status|delayed mail|delivery failure", re.I)
_SENDER = re.compile(r"postmaster|mailer-daemon|courier-mta", re.I)
_PARAGRAPH = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:[ \t]*$", re.M)
_HOST = re.compile(r"^\s+([A-Za-z0-9][\w.-]*\.[A-Za-z]{2,}) \[[^\]]+\]:\s*$", re.M)


# The patterns' words, for a plain search before the case-insensitive patterns (most messages
# are neither).
_SUBJECT_WORDS = ("mail delivery status", "delayed mail", "delivery failure")
_SENDER_WORDS = ("postmaster", "mailer-daemon", "courier-mta")


def _about_delivery(mail: Mail) -> bool:
    if not may_contain(mail.subject, _SUBJECT_WORDS, mail.subject_lower):
        return False
    return _SUBJECT.search(mail.subject) is not None


def _from_daemon(mail: Mail) -> bool:
    if not may_contain(mail.sender, _SENDER_WORDS, mail.sender_lower):
        return False
    return _SENDER.search(mail.sender) is not None


def detect(mail: Mail) -> list[Facts] | None:
    # The signature's words first: one plain search of the text, which the detectors before
    # this one have read already (sendmail reads it for every message), where the subject and
    # sender tests below run case-insensitive patterns and pass for most bounces anyway.
    if not mail.mentions("courier mail server"):
        return None
    if not (_about_delivery(mail) or _from_daemon(mail)):
        return None
    text = mail.text
    if not _SIGNATURE.search(text[:2000], mail.text_lower[:2000]):
        return None
    report = _mta.dsn_facts(mail)
    if report:
        return [_mta.enrich(f, _mta.paragraph_of(text, f.address)) for f in report]
    delayed = "delayed mail" in text[:3000].lower()
    found: list[Facts] = []
    for match in _PARAGRAPH.finditer(text):
        paragraph = _mta.paragraph_of(text[match.start() :], match.group(1))
        said = [line[3:].strip() for line in paragraph.split("\n") if line.startswith("<<<")]
        diagnostic = " ".join(said) or paragraph[match.end() - match.start() :]
        found.append(
            facts(
                match.group(1),
                diagnostic,
                action=Action.DELAYED if delayed else Action.FAILED,
                smtp_command=command.find_command(paragraph),
                remote_mta=host.group(1) if (host := _HOST.search(paragraph)) else "",
            )
        )
    return found or None
