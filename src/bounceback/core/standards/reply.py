"""SMTP reply codes (RFC 5321 section 4.2) in free text.

A reply code is three digits, the first 2, 4 or 5, at the start of a server's line. In a bounce
it is usually quoted inside prose ("host mx.example.com said: 550 5.1.1 ..."), so it is looked for
where a server's answer begins: at the start of the text or a line, after a colon, after "said"
or "<<<", or before an enhanced status code.

Only registered reply codes count: a three-digit number such as "426" or "542" that no RFC
defines is a server's private number, not a reply code a client can act on.
"""

from __future__ import annotations

import re

# "550 5.1.1 <a@b>...", "550-5.7.1 ...", "said: 554 ...", "<<< 421 ...", "(552)".
# The digit comes first and the look-behind after it, so the engine skips ahead to digits
# instead of testing the look-behind at every position.
_REPLY = re.compile(
    r"[245](?:(?<=^[245])|(?<=[\s:(\[\"'>;=#][245]))[0-5][0-9](?=[ \-)\]]|$)",
    re.M,
)
# A reply code directly followed by an enhanced status code: the strongest signal.
_REPLY_WITH_STATUS = re.compile(r"[245](?<!\d[245])[0-5][0-9](?=[ -]+\(?#?[245]\.[0-7]\.\d)")


# The reply codes the RFCs define: RFC 5321 section 4.2.3, RFC 3207 (STARTTLS), RFC 4954 (AUTH),
# RFC 1985 (ETRN), RFC 7504 (521, 556) and those the IANA enhanced-status registry (RFC 5248)
# pairs with its codes (523, 524, 525).
_POSITIVE = frozenset(("211", "214", "220", "221", "235", "250", "251", "252", "253", "334", "354"))
_TRANSIENT = frozenset(("421", "432", "450", "451", "452", "454", "455", "458", "459"))
_PERMANENT = frozenset(("500", "501", "502", "503", "504", "521", "523", "524", "525", "530"))
_PERMANENT_TOO = frozenset(("534", "535", "538", "550", "551", "552", "553", "554", "555", "556"))
REGISTERED = _POSITIVE | _TRANSIENT | _PERMANENT | _PERMANENT_TOO


def find_reply_code(text: str) -> str:
    """The SMTP reply code of the server's answer quoted in ``text``, or ``""``."""
    for pattern in (_REPLY_WITH_STATUS, _REPLY):
        # The matches one after another as finditer gives them (each is three characters, none
        # empty), without making an iterator: most texts are decided by the first.
        match = pattern.search(text)
        while match is not None:
            code = match.group(0)
            if code in REGISTERED:
                return code
            match = pattern.search(text, match.end())
    return ""
