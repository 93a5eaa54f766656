"""A cheap test to run before a case-insensitive regular expression: can it match at all?

Such a pattern is slow to try at every position of a long text, and most texts do not contain
the words it needs. Looking for those words (its needles) in the lower-cased text is fast, and
decides exactly whether the pattern can match, with one catch handled here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The only characters outside ASCII that re.IGNORECASE matches to an ASCII letter while
# str.lower() does not turn them into that letter: "İ" lower-cases to two characters, "ı" and
# "ſ" stay as they are. (The Kelvin sign lower-cases to "k" and needs no care.)
_CASE_TRAPS = ("İ", "ı", "ſ")


def may_contain(text: str, needles: Iterable[str], lower: str = "") -> bool:
    """False only when no case-insensitive search for one of ``needles`` (lower-case ASCII)
    can find it in ``text``. ``lower`` is ``text.lower()`` when the caller has it already."""
    return has_case_traps(text) or contains_any(lower or text.lower(), needles)


def has_case_traps(text: str) -> bool:
    """Whether ``text`` holds a character that lower() does not fold as re.IGNORECASE does."""
    return not text.isascii() and any(trap in text for trap in _CASE_TRAPS)


def contains_any(lower: str, needles: Iterable[str]) -> bool:
    for needle in needles:  # noqa: SIM110 (a plain loop: cheaper than any() over a generator)
        if needle in lower:
            return True
    return False


class CaselessPattern:
    """A case-insensitive pattern that searches a lower-cased copy of the text when it can.

    re.IGNORECASE makes every character test a case-folding one and keeps re from skipping ahead
    to a literal beginning, so a long text is searched several times slower. The same pattern
    without the flag, over the lower-cased text, finds a match at the same place whenever the
    text has no case traps (above); the match is then made once more, at that place, over the
    text itself, so that callers get exactly the match object the case-insensitive search gives.

    The source must spell its letters in lower case (character classes included): in the
    lower-cased text there are no others. Its escapes may be upper-case (``\\S``, ``\\W``).
    """

    def __init__(self, source: str, flags: int = 0) -> None:
        self.ignorecase = re.compile(source, flags | re.IGNORECASE)
        self._lower = re.compile(source, flags)

    def search(self, text: str, lower: str) -> re.Match[str] | None:
        """``ignorecase.search(text)``. ``lower`` is ``text.lower()``, or, when ``text`` is the
        start of a longer text, the same start of that text lower-cased. (Not any other slice:
        a case trap before it would shift the lower-cased copy. A start can differ from
        ``text.lower()`` only in a Greek sigma, final or not, which no lower-case source tells
        apart.)"""
        if has_case_traps(text):
            return self.ignorecase.search(text)
        found = self._lower.search(lower)
        return None if found is None else self.ignorecase.match(text, found.start())
