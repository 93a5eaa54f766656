"""RFC 3464 fields in a multipart/report whose MIME structure is broken.

Some MTAs declare ``multipart/report`` but write no boundary lines, or indent one so that it no
longer separates the parts; the message/delivery-status part then never appears and its fields
("Final-Recipient:", "Action:", "Status:", "Diagnostic-Code:") sit in the text. They are read
from there. A recipient without a Diagnostic-Code takes the answer from the Sendmail-style
"----- Transcript of session follows -----" or, failing that, the comment of its Status field
("4.0.0 (cat.example.net: host name lookup failure)").
"""

from __future__ import annotations

import re

from bounceback.core.formats._common import between, squash
from bounceback.core.frozen import replace
from bounceback.core.message import Mail
from bounceback.core.report import Facts
from bounceback.core.standards import command, reply, rfc3464, status

NAME = "dsntext"

_RECIPIENT_FIELD = re.compile(r"^(?:final|original)-recipient:", re.I | re.M)
_REPORT_START = re.compile(r"^(?:reporting-mta|final-recipient|original-recipient):", re.I | re.M)
_STATUS_COMMENT = re.compile(r"^\s*[245]\.\d\.\d{1,3}\s*\((.+)\)\s*$")
_TRANSCRIPT = "----- Transcript of session follows -----"


def detect(mail: Mail) -> list[Facts] | None:
    if mail.delivery_status is not None or mail.content_type != "multipart/report":
        return None
    text = mail.text
    start = _REPORT_START.search(text)
    if start is None or not _RECIPIENT_FIELD.search(text, start.start()):
        return None
    per_message, blocks = rfc3464.parse_fields(text[start.start() :])
    transcript = _transcript(text)
    out: list[Facts] = []
    for block in blocks:
        found = rfc3464.facts_from_block(block, per_message)
        if found is None:
            continue
        if not found.diagnostic:
            found = _answer(found, block, transcript, len(blocks) == 1)
        out.append(found)
    return out or None


def _transcript(text: str) -> str:
    """The transcript paragraph of a Sendmail-style notice ("" when there is none)."""
    section = between(text, _TRANSCRIPT)
    return squash(re.split(r"\n\s*\n", section.strip("\n"), maxsplit=1)[0]) if section else ""


def _answer(found: Facts, block: rfc3464.Block, transcript: str, only: bool) -> Facts:
    diagnostic = ""
    if transcript and (only or found.address.lower() in transcript.lower()):
        diagnostic = transcript
    else:
        comment = _STATUS_COMMENT.match(block.get("status", ""))
        diagnostic = comment.group(1).strip() if comment else ""
    if not diagnostic:
        return found
    return replace(
        found,
        diagnostic=diagnostic,
        status=status.more_specific(found.status, diagnostic),
        reply_code=found.reply_code or reply.find_reply_code(diagnostic),
        smtp_command=found.smtp_command or command.find_command(diagnostic),
    )
