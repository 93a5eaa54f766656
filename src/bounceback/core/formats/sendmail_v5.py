"""Sendmail version 5 (and its clones): a plain-text notice, no MIME, no delivery-status part.

Subject "Returned mail: <why>", then the transcript and the returned message::

       ----- Transcript of session follows -----
    While talking to mail.example.co.jp:
    >>> RCPT To:<mikeneko@example.co.jp>
    <<< 550 Requested User Mailbox not found. No such user here.
    550 <mikeneko@example.co.jp>... User unknown
    550 example.org (smtp)... 550 Host unknown
    554 <kijitora@example.org>... 550 Host unknown (Authoritative answer from name server)

       ----- Unsent message follows -----

Each "<address>..." line is one recipient. Its answer is the server's reply logged just before it
in the same session, or else the text after "..." (sendmail's own finding, such as a DNS
failure). A notice that names no recipient (a whole host was unreachable) is about the
recipients of the returned message. "Returned mail: Cannot send message for 4 days" is the
return of a message that stayed in the queue until sendmail gave up on it.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats import _transcript
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Reason

NAME = "sendmail_v5"

_SUBJECT = re.compile(r"^returned mail:", re.I)
# Sendmail's subject when the queue lifetime ran out: "Cannot send message for 4 days"
# (later versions: "Could not send message for past 5 days").
_TIMED_OUT = re.compile(r"(?:cannot|could not) send message for (?:past )?\d+ (?:day|hour)", re.I)
_CODE = re.compile(r"^[245]\d\d\b")
_INLINE_DSN = re.compile(r"^content-type:\s*message/delivery-status", re.I | re.M)


def detect(mail: Mail) -> list[Facts] | None:
    if not _SUBJECT.match(mail.subject) or mail.delivery_status is not None:
        return None
    notice = mail.notice
    if _transcript.MARKER not in mail.notice_lower:
        return None
    if _INLINE_DSN.search(mail.text):
        return None  # a Sendmail 8 report without MIME headers
    transcript = _transcript.parse(_transcript.section(notice, mail.notice_lower))
    timed_out = bool(_TIMED_OUT.search(mail.subject))
    out: list[Facts] = []
    for verdict in transcript.verdicts:
        if "@" in verdict.address:
            out.append(_from_verdict(verdict, timed_out))
    if not out and transcript.host_verdicts:
        out = _from_returned(mail, transcript.host_verdicts[-1], timed_out)
    return out or None


def _from_verdict(verdict: _transcript.Verdict, timed_out: bool) -> Facts:
    answer = verdict.reply
    address = addr.clean(verdict.address)
    if _CODE.match(verdict.text) or answer is None:
        # "554 <a@b>... 550 Host unknown (...)": the answer is quoted in the line itself.
        text = verdict.text if _CODE.match(verdict.text) else f"{verdict.code} {verdict.text}"
        return _facts(address, text, timed_out)
    return facts(
        address,
        answer.text,
        remote_mta=answer.host,
        smtp_command=answer.command,
        reason_hint=_expired(answer.text, timed_out),
        hint_rule="sendmail.queue-timeout" if _expired(answer.text, timed_out) else "",
    )


def _from_returned(mail: Mail, verdict: _transcript.HostVerdict, timed_out: bool) -> list[Facts]:
    """A host verdict ("421 example.com (smtp)... Deferred: Connection timed out") names no
    recipient: the returned message's recipients are the ones that failed."""
    headers = mail.original_headers()
    found = addr.find_addresses(" ".join(headers.get_all("To") + headers.get_all("Cc")))
    text = f"{verdict.code} {verdict.text}"
    return [_facts(a, text, timed_out, remote_mta=verdict.host) for a in found]


def _facts(address: str, text: str, timed_out: bool, remote_mta: str = "") -> Facts:
    hint = _expired(text, timed_out)
    return facts(
        address,
        text,
        remote_mta=remote_mta,
        reason_hint=hint,
        hint_rule="sendmail.queue-timeout" if hint else "",
    )


def _expired(text: str, timed_out: bool) -> Reason | None:
    """A temporary failure in a notice returned because the queue lifetime ran out."""
    return Reason.EXPIRED if timed_out and text[:1] == "4" else None
