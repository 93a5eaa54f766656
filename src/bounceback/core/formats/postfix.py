"""Postfix's bounce, delay and error notices.

Postfix writes "This is the mail system at host mx.example.jp." (older versions: "This is the
Postfix program at host ..."), then one paragraph per recipient::

    <kijitora@example.net> (expanded from <alias@example.net>): host
        mx.example.net[192.0.2.78] said: 550 5.1.1 Unknown user (in reply to RCPT TO
        command)

and, since 2.3, a delivery-status part. The report drops the "(in reply to ... command)" that
tells which SMTP command the server refused, so this detector reads the report and completes each
recipient from its paragraph; a notice without a report (old versions, or a bounce forwarded as
text) is read from the paragraphs alone. The "Postfix SMTP server: errors from" notice to the
postmaster is a session transcript: the recipients are the RCPT TO lines before the refusal.
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats import _mta
from bounceback.core.formats._common import facts, squash
from bounceback.core.frozen import replace
from bounceback.core.message import Mail
from bounceback.core.quick import CaselessPattern
from bounceback.core.report import Facts
from bounceback.core.standards import rfc3464
from bounceback.core.taxonomy import Action, Reason

NAME = "postfix"

# Searched over the lower-cased text where it can (see quick).
_SIGNATURE = CaselessPattern(r"this is the (?:mail system|postfix program) at host ")
_SUBJECTS = re.compile(
    r"^(?:undelivered mail returned to sender|delayed mail \(still being retried\)|"
    r"mail delivery status report|successful mail delivery report|"
    r"postfix smtp server: errors from)",
    re.I,
)
_DELAYED_SUBJECT = re.compile(r"^delayed mail|will be retried", re.I)
# "<a@b>: text" or "<a@b> (expanded from <c@d>): text" at the start of a line.
# The "<" first and "at a line start" checked behind it (the same as a leading "^"): a pattern
# that starts with a literal is searched far faster over a long notice.
_PARAGRAPH = re.compile(
    r"<(?<=^<)([^<>\s]+@[^<>\s]+)>(?:\s*\(expanded\s+from\s+<[^<>]*>\))?:\s*", re.M
)
_REPORT_FIELD = re.compile(
    r"^(?:reporting-mta|final-recipient|original-recipient|arrival-date|x-postfix-[\w-]+|"
    r"received-from-mta):",
    re.I | re.M,
)
# pipe(8)/local(8) wording for a delivery command that failed ("x-unix" diagnostics).
# Alone, "temporary failure" is the command's exit status without any output of its own.
_COMMAND_FAILED = re.compile(
    r"^(?:temporary|permanent) failure\.?$|^command died with|^command time limit exceeded", re.I
)
_REPORT_UNAVAILABLE = re.compile(r"^\s*-+ delivery report unavailable -+\s*$", re.I | re.M)
_TRANSCRIPT = re.compile(r"^transcript of session follows", re.I | re.M)
_SESSION_LINE = re.compile(r"^ ?(In|Out):\s+(.*)$")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n|\n--")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def detect(mail: Mail) -> list[Facts] | None:
    if not (_SUBJECTS.search(mail.subject) or "(Postfix" in mail.received):
        return None
    text = mail.text
    if mail.subject_lower.startswith("postfix smtp server: errors from"):
        return _transcript(text)
    # Many notices pass a Postfix relay: a plain search for the signature's words first.
    if not mail.mentions(" at host ") or not _SIGNATURE.search(text[:5000], mail.text_lower[:5000]):
        return None
    report = _mta.dsn_facts(mail) or _inline_report(text)
    paragraphs = _paragraphs(text)
    if report:
        return [_complete(f, paragraphs) for f in report]
    action = Action.DELAYED if _DELAYED_SUBJECT.search(mail.subject) else Action.FAILED
    found = [
        facts(a, _mta.unfold(p), action=action, remote_mta=_mta.remote_host(p))
        for a, p in paragraphs.values()
    ]
    if not found and _REPORT_UNAVAILABLE.search(text):
        found = _from_returned(mail, action)
    return found or None


def _from_returned(mail: Mail, action: Action) -> list[Facts]:
    """A notice that reads "--- Delivery report unavailable ---": bounce(8) could not read the
    message's delivery log, so it names neither recipient nor cause. It still returns the
    message, whose recipients are the best account of who was not reached (as the sendmail_v5
    detector does for a host verdict); the cause stays undetermined."""
    headers = mail.original_headers()
    found = addr.find_addresses(" ".join(headers.get_all("To") + headers.get_all("Cc")))
    return [
        facts(
            a,
            "",
            action=action,
            reason_hint=Reason.UNDETERMINED,
            hint_rule="postfix.report-unavailable",
        )
        for a in found
    ]


def _paragraphs(text: str) -> dict[str, tuple[str, str]]:
    """Each recipient's address and paragraph (what follows its "<address>:"), by lower-cased
    address."""
    out: dict[str, tuple[str, str]] = {}
    matches = list(_PARAGRAPH.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = _PARAGRAPH_END.split(text[match.end() : end], maxsplit=1)[0]
        out.setdefault(match.group(1).lower(), (match.group(1), squash(body)))
    return out


def _complete(fact: Facts, paragraphs: dict[str, tuple[str, str]]) -> Facts:
    key = fact.address.lower()
    if key not in paragraphs:
        # The report's address lost the quotes of a quoted local part ("a..b"@example.org).
        quoted = [k for k in paragraphs if k.replace('"', "") == key.replace('"', "")]
        if quoted:
            key = quoted[0]
            fact = replace(fact, address=paragraphs[key][0])
    paragraph = paragraphs.get(key, ("", ""))[1]
    fact = _mta.enrich(fact, paragraph)
    if fact.diagnostic_type == "x-unix" and _COMMAND_FAILED.search(fact.diagnostic):
        # pipe(8) / local(8): the delivery command itself failed or exited with an error.
        return replace(fact, reason_hint=Reason.MAILER_ERROR, hint_rule="postfix.command-failed")
    return fact


def _inline_report(text: str) -> list[Facts]:
    """Delivery-status fields quoted in the text (a bounce forwarded as plain text, or one whose
    MIME structure was lost): the run of paragraphs that start with a report field."""
    match = _REPORT_FIELD.search(text)
    if match is None:
        return []
    kept: list[str] = []
    for block in _BLANK_LINE.split(text[match.start() :])[:200]:
        if not _REPORT_FIELD.match(block.strip("\n")):
            break
        kept.append(block)
    per_message, blocks = rfc3464.parse_fields("\n\n".join(kept))
    return [f for f in (rfc3464.facts_from_block(b, per_message) for b in blocks) if f]


def _transcript(text: str) -> list[Facts] | None:
    """Recipients of the session that the server refused: the RCPT TO lines before the first
    4xx/5xx answer, which is the diagnostic."""
    start = _TRANSCRIPT.search(text)
    if start is None:
        return None
    turns: list[tuple[str, str]] = []
    for line in text[start.end() :].split("\n")[:2000]:
        match = _SESSION_LINE.match(line)
        if match:
            turns.append((match.group(1), match.group(2).strip()))
        elif line.startswith("  ") and turns:
            turns[-1] = (turns[-1][0], turns[-1][1] + " " + line.strip())
    recipients: list[str] = []
    last_command = ""
    for direction, said in turns:
        if direction == "In":
            last_command = said.split(" ", 1)[0].upper()
            if said.upper().startswith("RCPT TO:"):
                recipients.append(addr.find_address(said))
        elif said[:1] in ("4", "5") and recipients:
            command = {"EHLO": "HELO", "BDAT": "DATA", ".": "DATA"}.get(last_command, last_command)
            if command == "RCPT":
                recipients = recipients[-1:]
            return [facts(r, said, smtp_command=command) for r in recipients if r] or None
    return None
