"""SMTP reply codes (RFC 5321 section 4.2) in free text.

A reply code is three digits, the first 2, 4 or 5, at the start of a server's line. In a bounce
it is usually quoted inside prose ("host mx.example.com said: 550 5.1.1 ..."), so it is looked for
where a server's answer begins: at the start of the text or a line, after a colon, after "said"
or "<<<", or before an enhanced status code.
"""

from __future__ import annotations

import re

# "550 5.1.1 <a@b>...", "550-5.7.1 ...", "said: 554 ...", "<<< 421 ...", "(552)".
_REPLY = re.compile(
    r"(?:^|(?<=[\s:(\[\"'>;=#]))([245][0-5][0-9])(?=[ \-)\]]|$)",
    re.M,
)
# A reply code directly followed by an enhanced status code: the strongest signal.
_REPLY_WITH_STATUS = re.compile(r"(?<!\d)([245][0-5][0-9])[ -]+\(?#?([245])\.[0-7]\.\d{1,3}")


def find_reply_code(text: str) -> str:
    """The SMTP reply code of the server's answer quoted in ``text``, or ``""``."""
    match = _REPLY_WITH_STATUS.search(text)
    if match:
        return match.group(1)
    match = _REPLY.search(text)
    return match.group(1) if match else ""
