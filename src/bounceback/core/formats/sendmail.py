"""Sendmail 8 delivery status notifications: an RFC 3464 report plus sendmail's transcript.

The delivery-status part says who failed, but sendmail quotes only the first line of the
server's reply in Diagnostic-Code, writes its own code in Status (4.4.7 once a deferred message
times out, 5.1.1 for any refused RCPT) and leaves Diagnostic-Code empty when the server answered
with a bare code. The text part holds the rest::

       ----- The following addresses had permanent fatal errors -----
    <kijitora@example.org>
        (reason: 550 5.1.1 <kijitora@example.org>... User Unknown)

       ----- Transcript of session follows -----
    ... while talking to mx.example.org.:
    >>> DATA
    <<< 550 5.1.1 <kijitora@example.org>... User Unknown

This reader starts from the report's fields and completes them from the transcript: the whole
reply, the command it answered, the host, and the server's own status code. Some sendmail
installations send the report without MIME headers; the delivery-status block is then read from
the text itself.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats import _transcript
from bounceback.core.frozen import replace
from bounceback.core.message import Mail
from bounceback.core.quick import CaselessPattern
from bounceback.core.report import Facts
from bounceback.core.standards import reply, rfc3464, status
from bounceback.core.taxonomy import Reason

NAME = "sendmail"

# Searched over the lower-cased notice where it can (see quick).
_FATAL = CaselessPattern(
    r"-----\s*the following addresses? had (?:permanent fatal|transient non-fatal)"
    r" errors\s*-----"
)
_INLINE_DSN = CaselessPattern(r"^content-type:[ \t]*message/delivery-status[^\n]*\n", re.M)
_EXIT_STATUS = re.compile(r"^\d{1,3}$")
_BOUNDARY_LINE = re.compile(r"^--\S", re.M)
_WORD = re.compile(r"[A-Za-z]{2,}")


def detect(mail: Mail) -> list[Facts] | None:
    notice = mail.notice
    # The cached lower-cased text first: what is not in the whole text is not in the notice.
    marked = _transcript.MARKER in mail.text_lower and _transcript.MARKER in mail.notice_lower
    if not marked and not _has_fatal_list(mail):
        return None
    blocks = _dsn_blocks(mail)
    if blocks is None:
        return None
    per_message, recipients = blocks
    found = [f for f in (rfc3464.facts_from_block(b, per_message) for b in recipients) if f]
    if not found:
        return None
    transcript = _transcript.parse(_transcript.section(notice, mail.notice_lower))
    listed = _listed_addresses(notice, mail.notice_lower)
    out: list[Facts] = []
    for index, found_facts in enumerate(found):
        fixed = _fix_address(found_facts, index, len(found), listed)
        out.append(_complete(fixed, transcript))
    return out


def _has_fatal_list(mail: Mail) -> bool:
    # The regular expression runs only where its words are (a plain search is far cheaper):
    # both of its phrases end in "fatal errors", which one search looks for.
    if not mail.mentions("fatal errors"):
        return False
    return _FATAL.search(mail.notice, mail.notice_lower) is not None


def _dsn_blocks(mail: Mail) -> tuple[rfc3464.Block, list[rfc3464.Block]] | None:
    part = mail.delivery_status
    if part is not None:
        text = part.text
    else:
        match = _INLINE_DSN.search(mail.text, mail.text_lower)
        if match is None:
            return None
        rest = mail.text[match.end() :]
        end = _BOUNDARY_LINE.search(rest)
        text = rest[: end.start()] if end else rest
    per_message, recipients = rfc3464.parse_fields(text)
    return (per_message, recipients) if recipients else None


def _listed_addresses(notice: str, lower: str) -> list[str]:
    """Addresses under "The following addresses had permanent fatal errors" (``lower``:
    the notice lower-cased)."""
    match = _FATAL.search(notice, lower)
    if match is None:
        return []
    out: list[str] = []
    for line in notice[match.end() :].split("\n")[1:200]:
        text = line.strip()
        if text.startswith("-----"):
            break
        if not text or text.startswith("("):
            continue
        found = addr.find_address(text)
        if found:
            out.append(found)
    return out


def _fix_address(facts: Facts, index: int, count: int, listed: list[str]) -> Facts:
    """A Final-Recipient like "@mx.example.org" (a source route) names no mailbox: the text's
    list of failed addresses does."""
    local = facts.address.partition("@")[0]
    if addr.is_address(facts.address) and local:
        return facts
    if len(listed) == count:
        return replace(facts, address=listed[index])
    if len(listed) == 1:
        return replace(facts, address=listed[0])
    return facts


def _complete(facts: Facts, transcript: _transcript.Transcript) -> Facts:
    if facts.diagnostic_type == "x-unix" and _EXIT_STATUS.match(facts.diagnostic):
        return _mailer_exit(facts, transcript)
    found = transcript.reply_starting(facts.diagnostic) if facts.diagnostic else None
    verdict = transcript.verdict(facts.address)
    if found is None and not facts.diagnostic and verdict is not None:
        found = verdict.reply
    if found is not None:
        diagnostic = found.text
        code = reply.find_reply_code(diagnostic)
        if not _has_words(diagnostic):
            # A reply that is a bare code ("<<< 421") says nothing more: leave the prose to the
            # notice, keep the code.
            diagnostic = facts.diagnostic if _has_words(facts.diagnostic) else ""
        return replace(
            facts,
            diagnostic=diagnostic,
            reply_code=code or facts.reply_code,
            status=_server_status(facts.status, diagnostic),
            smtp_command=found.command or facts.smtp_command,
            remote_mta=facts.remote_mta or found.host,
        )
    if not facts.diagnostic and verdict is not None and verdict.code:
        # "550 5.1.2 <a@b>... Host unknown (Name server: b: host not found)": sendmail's own
        # answer (DNS, local delivery) when no server was talked to.
        diagnostic = " ".join(p for p in (verdict.code, verdict.status, verdict.text) if p)
        return replace(
            facts,
            diagnostic=diagnostic,
            reply_code=verdict.code,
            status=_server_status(facts.status, diagnostic),
        )
    return replace(facts, status=_server_status(facts.status, facts.diagnostic))


def _mailer_exit(facts: Facts, transcript: _transcript.Transcript) -> Facts:
    """``Diagnostic-Code: X-Unix; 255``: the local delivery program exited with that status.
    Sendmail's transcript says what it made of it ("554 5.3.0 unknown mailer error 255")."""
    line = transcript.status_lines[-1] if transcript.status_lines else ""
    diagnostic = line or facts.diagnostic
    return replace(
        facts,
        diagnostic=diagnostic,
        reply_code=reply.find_reply_code(line) or facts.reply_code,
        status=status.more_specific(facts.status, line),
        reason_hint=Reason.MAILER_ERROR,
        hint_rule="sendmail.mailer-exit-status",
    )


def _server_status(own: str, diagnostic: str) -> str:
    """The server's enhanced code when it gave one: sendmail's Status is its own summary
    (4.4.7 for any deferral that timed out, 5.1.1 for any refused recipient)."""
    found = status.find_status(diagnostic)
    if found and not status.is_generic(found):
        return found
    return own or found


def _has_words(text: str) -> bool:
    return _WORD.search(text) is not None
