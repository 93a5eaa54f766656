"""Sendmail's "Transcript of session follows": who was talked to, what was sent, what came back.

Sendmail (version 5 to 8, and the many MTAs that copy its notices) logs each failed SMTP session
as lines of its own kind::

    ... while talking to mx.example.org.:        (V5: "While talking to mx.example.org:")
    >>> RCPT To:<kijitora@example.org>            the command sendmail sent last
    <<< 550 5.1.1 <kijitora@example.org>... User Unknown      the server's reply (may be several
    550 5.1.1 <kijitora@example.org>... User unknown           lines), then sendmail's verdict

A verdict line names the recipient it is about; the replies logged since the previous verdict are
the server's answer for that recipient. With pipelining, sendmail logs the replies to RCPT after
">>> DATA": the command recorded is still the last one sendmail sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bounceback.core.formats._common import squash

MARKER = "----- transcript of session follows -----"

_WHILE = re.compile(r"^(?:\.\.\.\s*)?while talking to\s+(\S+?)\.?:?\s*$", re.I)
# "550 5.1.1 <a@b>... User unknown", "<a@b>... Deferred: 421", "kijitora... Deferred: ..."
_VERDICT = re.compile(
    r"^(?:(?P<code>[245]\d\d)[ \t]+(?:(?P<status>[245]\.\d{1,3}\.\d{1,3})[ \t]+)?)?"
    r"<?(?P<address>[^\s<>]+?)>?\.\.\.[ \t]+(?P<text>.*)$"
)
# "550 example.org (smtp)... 550 Host unknown": a verdict about a host, not about a recipient.
_HOST_VERDICT = re.compile(
    r"^(?P<code>[245]\d\d)[ \t]+(?P<host>\S+)[ \t]+\([\w-]+\)\.\.\.[ \t]+"
    r"(?P<text>.*)$"
)
# A sendmail status line without a recipient: "554 5.3.0 unknown mailer error 255".
_STATUS_LINE = re.compile(r"^[245]\d\d[ \t]+[245]\.\d{1,3}\.\d{1,3}\b.*$")
_REPLY_PREFIX = re.compile(r"^(?P<code>[245]\d\d)(?P<sep>[ -]?)(?:[245]\.\d{1,3}\.\d{1,3}[ \t]*)?")
_ADDRESS = re.compile(r"<[^<>\s]*@[^<>\s]*>|[^\s<>]+@[^\s<>]+")
_RULE = re.compile(r"^\s*-----", re.M)
_COMMANDS = {
    "RCPT": "RCPT",
    "MAIL": "MAIL",
    "DATA": "DATA",
    "HELO": "HELO",
    "EHLO": "HELO",
    "STARTTLS": "STARTTLS",
    "AUTH": "AUTH",
    "QUIT": "QUIT",
    "RSET": "RSET",
    "BDAT": "DATA",
}


@dataclass(slots=True)
class Reply:
    """One server reply (all its lines), with the host and the command it answered."""

    host: str
    command: str  # canonical (RCPT, MAIL, DATA, ...); "CONN" when nothing had been sent
    lines: list[str] = field(default_factory=list)
    more: bool = False  # the last line was "NNN-...": the reply goes on

    @property
    def first(self) -> str:
        return self.lines[0] if self.lines else ""

    @property
    def text(self) -> str:
        """The reply as one line: the first line whole, later lines without their codes."""
        if not self.lines:
            return ""
        rest = [_REPLY_PREFIX.sub("", line, count=1).strip() for line in self.lines[1:]]
        head = _REPLY_PREFIX.sub(_keep_codes, self.lines[0], count=1)
        return squash(" ".join([head, *rest]))


def _keep_codes(match: re.Match[str]) -> str:
    """``552-5.7.0 `` -> ``552 5.7.0 ``: a continuation mark is not part of the answer."""
    return match.group(0).replace("-", " ", 1) if match.group("sep") == "-" else match.group(0)


@dataclass(slots=True)
class Verdict:
    """Sendmail's line about one recipient, and the server replies logged just before it."""

    address: str
    code: str
    status: str
    text: str
    replies: list[Reply]

    @property
    def reply(self) -> Reply | None:
        """The server's answer about this recipient: the last reply logged before the verdict."""
        return self.replies[-1] if self.replies else None


@dataclass(slots=True)
class HostVerdict:
    code: str
    host: str
    text: str


@dataclass(slots=True)
class Transcript:
    replies: list[Reply] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    host_verdicts: list[HostVerdict] = field(default_factory=list)
    status_lines: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # program output, warnings

    def verdict(self, address: str) -> Verdict | None:
        key = address.lower()
        found = None
        for verdict in self.verdicts:
            if verdict.address.lower() == key:
                found = verdict if found is None or verdict.replies else found
        return found

    def reply_starting(self, first_line: str) -> Reply | None:
        """The reply whose first line is ``first_line`` (a DSN quotes only that line; a relay
        may have rewritten the addresses in it)."""
        wanted = _comparable(first_line)
        if not wanted:
            return None
        for reply in self.replies:
            first = _comparable(reply.first)
            if first and (first == wanted or first.startswith(wanted) or wanted.startswith(first)):
                return reply
        return None


def _comparable(text: str) -> str:
    """The text squashed and lower-cased, each address replaced by "<>"."""
    # No address contains a space, so only the words with an "@" can hold one: the same result
    # as substituting over the whole line, without trying the pattern at every position (its
    # second form rescans a word from each of its characters).
    words = squash(text).lower().split(" ")
    return " ".join([_ADDRESS.sub("<>", word) if "@" in word else word for word in words])


def section(text: str, lower: str = "") -> str:
    """The transcript part of a notice: from the marker line to the next "-----" line.
    ``lower`` is ``text.lower()`` when the caller has it already."""
    lower = lower or text.lower()
    start = lower.find(MARKER)
    if start < 0:
        return ""
    start = text.find("\n", start)
    if start < 0:
        return ""
    body = text[start + 1 :]
    end = _RULE.search(body)
    return body[: end.start()] if end else body


def parse(text: str) -> Transcript:
    """Read transcript lines (as returned by :func:`section`, or any block of them)."""
    out = Transcript()
    host, command = "", ""
    pending: list[Reply] = []
    for raw in text.split("\n")[:2000]:
        line = raw.strip()
        if not line:
            continue
        match = _WHILE.match(line)
        if match:
            host, command, pending = match.group(1).rstrip("."), "", []
            continue
        if line.startswith(">>>"):
            word = line[3:].strip().split(" ", 1)[0].split(":", 1)[0].upper()
            command = _COMMANDS.get(word, word[:8])
            continue
        if line.startswith("<<<"):
            _add_reply(out, pending, host, command or "CONN", line[3:].strip())
            continue
        _read_sendmail_line(out, pending, line)
        if out.verdicts and out.verdicts[-1].replies is pending:
            pending = []
    return out


def _add_reply(out: Transcript, pending: list[Reply], host: str, command: str, line: str) -> None:
    code = line[:3]
    last = pending[-1] if pending else None
    if last is not None and last.more and last.first[:3] == code:
        last.lines.append(line)
    else:
        last = Reply(host, command, [line])
        pending.append(last)
        out.replies.append(last)
    last.more = len(line) > 3 and line[3] == "-"


def _read_sendmail_line(out: Transcript, pending: list[Reply], line: str) -> None:
    match = _HOST_VERDICT.match(line)
    if match:
        out.host_verdicts.append(HostVerdict(match["code"], match["host"], match["text"].strip()))
        return
    match = _VERDICT.match(line)
    if match and (match["code"] or "@" in match["address"] or match["text"].startswith("Deferred")):
        out.verdicts.append(
            Verdict(
                match["address"],
                match["code"] or "",
                match["status"] or "",
                match["text"].strip(),
                pending,
            )
        )
        return
    if _STATUS_LINE.match(line):
        out.status_lines.append(line)
    else:
        out.other.append(line)
