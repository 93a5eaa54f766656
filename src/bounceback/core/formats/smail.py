"""Smail 3: "mail failed, returning to sender", with ruled section headers.

|------------------------- Message log follows: -------------------------|
 no valid recipients were found for this message
|------------------------- Failed addresses follow: ---------------------|
 kijitora@example.com ... unknown host
|------------------------- Message text follows: ------------------------|
"""

from __future__ import annotations

import re

from bounceback.core import address as addr
from bounceback.core.formats._common import facts
from bounceback.core.message import Mail
from bounceback.core.report import Facts

NAME = "smail"

_SECTION = re.compile(r"^\|-+ ([a-z ]+) follows?:? -+\|\s*$", re.I | re.M)
_FAILED = re.compile(r"^\s*(\S+@\S+?)\s+\.\.\.\s*(.*)$")


def detect(mail: Mail) -> list[Facts] | None:
    text = mail.text
    if "|-" not in text:  # every ruled line begins so
        return None
    sections = _sections(text)
    failed = sections.get("failed addresses")
    if failed is None:
        return None
    log = " ".join(sections.get("message log", "").split())
    out: list[Facts] = []
    for line in failed.split("\n"):
        match = _FAILED.match(line)
        if match and addr.is_address(addr.clean(match.group(1))):
            out.append(facts(addr.clean(match.group(1)), match.group(2) or log))
    return out or None


def _sections(text: str) -> dict[str, str]:
    """Section name (lower case) -> its text, for each ruled header line."""
    marks = list(_SECTION.finditer(text[:200_000]))
    return {
        m.group(1).strip().lower(): text[
            m.end() : marks[i + 1].start() if i + 1 < len(marks) else None
        ]
        for i, m in enumerate(marks)
    }
