"""Which phrase rules can possibly match a text, found with one scan instead of one per rule.

The phrase table is tried in order, a regular expression per rule, on every recipient: most of
the time goes into rules that cannot match. Every match of a rule contains one of a few fixed
strings (its *needles*: "unknown user" needs "unknown "...), read once from the rule's parsed
pattern. One scan of the text finds which needles occur; a rule none of whose needles occurs is
skipped. The rules left are still tried in table order with their own expressions, so the rule
that wins and the text it matched are exactly those of the plain loop.

Needles are derived, never written by hand: a rule added to the table is covered (or, when no
needle can be named, always tried) without anyone keeping a second list in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

# Bounds on the alternatives spelled out while reading a pattern ("(?:is )?user" is the two
# strings "is user" and "user"); past them a piece is treated as "anything".
_MAX_STRINGS = 64
_MAX_OPTIONAL = 3
_ZERO_WIDTH = frozenset({_c.AT, _c.ASSERT, _c.ASSERT_NOT})
_REPEATS = frozenset(
    {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT)}
)

Items = Sequence[tuple[Any, Any]]


def needles(pattern: str) -> frozenset[str] | None:
    """Strings of which every match of ``pattern`` contains at least one; None when no such set
    can be named (the rule must then always be tried)."""
    try:
        parsed = _parser.parse(pattern)
    except Exception:  # a construct this reader does not know: no needles, always tried
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    found = _required(list(parsed))
    return frozenset(found) if found else None


def _exact(items: Items) -> set[str] | None:
    """Every string the sequence can match, when they are few; else None."""
    out = {""}
    for op, av in items:
        strings = _exact_item(op, av)
        if strings is None:
            return None
        out = {a + b for a in out for b in strings}
        if len(out) > _MAX_STRINGS:
            return None
    return out


def _exact_item(op: Any, av: Any) -> set[str] | None:
    if op is _c.LITERAL:
        return {chr(av)}
    if op in _ZERO_WIDTH:  # consumes nothing: the literals around it stay adjacent
        return {""}
    if op is _c.IN:
        return _char_set(av)
    if op is _c.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _exact(sub)
    if op is _c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            strings = _exact(branch)
            if strings is None:
                return None
            out |= strings
        return out if len(out) <= _MAX_STRINGS else None
    if op in _REPEATS:
        low, high, sub = av
        if high is _c.MAXREPEAT or high > _MAX_OPTIONAL:
            return None
        return _repeated(_exact(sub), low, high)
    return None


def _char_set(items: Items) -> set[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is _c.LITERAL:
            chars.add(chr(av))
        elif op is _c.RANGE and av[1] - av[0] < _MAX_STRINGS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:  # negated sets, categories (\s, \w), large ranges
            return None
    return chars


def _repeated(one: set[str] | None, low: int, high: int) -> set[str] | None:
    if one is None:
        return None
    out: set[str] = set()
    current = {""}
    for count in range(high + 1):
        if count >= low:
            out |= current
        current = {a + b for a in current for b in one}
        if len(out) > _MAX_STRINGS or len(current) > _MAX_STRINGS:
            return None
    return out


def _required(items: Items) -> set[str] | None:
    """Needles of a sequence: the best of those of its pieces. Adjacent pieces with few exact
    spellings are spelled out together (a run too long to spell is cut in two); any other
    piece gives its own needles."""
    candidates: list[set[str]] = []
    spelled = {""}
    for op, av in items:
        strings = _exact_item(op, av)
        if strings is not None:
            joined = {a + b for a in spelled for b in strings}
            if len(joined) <= _MAX_STRINGS:
                spelled = joined
                continue
            candidates.append(spelled)
            spelled = strings
            continue
        candidates.append(spelled)
        spelled = {""}
        inner = _required_item(op, av)
        if inner:
            candidates.append(inner)
    candidates.append(spelled)
    usable = [c for c in candidates if "" not in c]
    # The most selective: the longest shortest needle, then the fewest needles.
    return max(usable, key=lambda s: (min(map(len, s)), -len(s)), default=None)


def _required_item(op: Any, av: Any) -> set[str] | None:
    if op is _c.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _required(sub)
    if op is _c.BRANCH:  # one of the branches matched: the union of their needles
        out: set[str] = set()
        for branch in av[1]:
            inner = _required(branch)
            if not inner:
                return None
            out |= inner
        return out
    if op in _REPEATS:
        low, _, sub = av
        return _required(sub) if low >= 1 else None
    if op is getattr(_c, "ATOMIC_GROUP", None):
        return _required(av)
    return None


class Prefilter:
    """For a list of patterns, which ones can match a given text (a superset, never fewer)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._always: list[int] = []
        by_needle: dict[str, list[int]] = {}
        for index, pattern in enumerate(patterns):
            found = needles(pattern)
            if found is None:
                self._always.append(index)
                continue
            for needle in found:
                by_needle.setdefault(needle, []).append(index)
        # The scan finds, at each position, the longest needle that starts there; the needles
        # that are its prefixes are there too, so each needle stands for theirs as well.
        self._rules_of: dict[str, frozenset[int]] = {
            needle: frozenset(
                i for end in range(1, len(needle) + 1) for i in by_needle.get(needle[:end], ())
            )
            for needle in by_needle
        }
        self._scan = re.compile(_trie(by_needle)) if by_needle else None

    def candidates(self, text: str) -> list[int]:
        """Indexes of the patterns that may match ``text``, in pattern order."""
        if self._scan is None:
            return list(self._always)
        found = self._found(self._scan, text)
        if not found:
            return list(self._always)
        chosen = set(self._always)
        for needle in found:
            chosen |= self._rules_of[needle]
        return sorted(chosen)

    @staticmethod
    def _found(scan: re.Pattern[str], text: str) -> set[str]:
        """The longest needle at each position where one starts. Each search resumes one
        character after the previous match's start, so overlapping needles are all found (as a
        zero-width lookahead at every position would find them). A pattern that begins with a
        literal character lets re skip the positions where no needle starts without entering
        it, and no match object is made where nothing is found: about a third faster than
        finditer over a lookahead on the texts the rules read."""
        found: set[str] = set()
        search = scan.search
        match = search(text)
        while match is not None:
            found.add(match.group())
            match = search(text, match.start() + 1)
        return found


def _trie(words: Iterable[str]) -> str:
    """A regular expression matching the longest of ``words`` at a position, shaped as a tree
    of their shared prefixes so that each position costs one character test per branch."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a word
    return _branches(root)


def _escape(char: str) -> str:
    return char if char.isalnum() or char == " " else re.escape(char)


def _branches(node: dict[str, Any]) -> str:
    alternatives = [
        _escape(char) + _branches(child) for char, child in sorted(node.items()) if char
    ]
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    # A word ends here: a longer word is tried first (greedy), this one when none continues.
    return f"(?:{body})?" if "" in node else body
