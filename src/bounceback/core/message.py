"""The bounce as detectors see it: :class:`Mail`, built once per ``parse`` and read lazily.

A detector asks for what it needs (a header, the report part, the notice text, the returned
original) and pays only for that. Parts inside a returned message are never searched for report
parts: a bounce of a bounce must not be read as its inner bounce.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bounceback.core.lazy import lazy
from bounceback.core.mime import (
    _EMBEDDED,
    _HEADERS_ONLY,
    MAX_DEPTH,
    FieldSelection,
    Headers,
    Part,
    decode_words,
    header_block,
    html_to_text,
    normalize_newlines,
    parse_header_block,
)
from bounceback.core.quick import has_case_traps
from bounceback.core.report import Problem

_DELIVERY_STATUS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_FEEDBACK = frozenset({"message/feedback-report"})
_RETURNED = _EMBEDDED | _HEADERS_ONLY

# Lines that non-MIME bounces put between their notice and the copy of the original message.
# Each is a fixed phrase of one MTA family; the list is data so that a format module can rely on it.
ORIGINAL_MARKERS = (
    # qmail: "--- Below this line is a copy of the message."
    "--- below this line is a copy of the message",
    # Exim: "------ This is a copy of the message, including all the headers. ------"
    "------ this is a copy of the message",
    # Sendmail V5, many others: "----- Original message follows -----", "Unsent message below"
    "----- original message follows",
    "----- unsent message follows",
    "--- original message follows",
    "------ original message ------",
    "-------- original message --------",
    "----- original message -----",
    "-----original message-----",
    "--------original message--------",
    "--- message header follows",
    "--- original message header",
    "----- message header follows",
    "------ this is a copy of your message, including all the headers. ------",
    "original message headers:",
    "the original message headers are included as attachment",
    "the headers of your message were:",
    "content-type: message/rfc822",
    "------ the original message ------",
    "--- the header of the original message is following.",
    "----- the header of the original message is following. -----",
    "--- original message header ---",
    "--- undeliverable message ---",
)
_MARKERS = ORIGINAL_MARKERS
# All markers but a few begin with dashes ("---" at least). Those few are searched for one by one.
_UNDASHED = tuple(marker for marker in _MARKERS if not marker.startswith("---"))


def _by_word(markers: tuple[str, ...], words: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The markers under the first of ``words`` each holds (every marker must hold one)."""
    groups: dict[str, list[str]] = {word: [] for word in words}
    for marker in markers:
        groups[next(word for word in words if word in marker)].append(marker)
    return {word: tuple(found) for word, found in groups.items()}


# Few notices hold these words: one search for a word rules out all of its markers at once.
_UNDASHED_BY_WORD = _by_word(_UNDASHED, ("headers", "rfc822"))


# The dashed markers as one pattern: a search finds where the first of them starts (the leftmost
# match), in one pass that looks only at the places where three dashes are, instead of one search
# of the whole text per marker. Plain literals, no repetition: nothing to backtrack over.
_DASHED = re.compile(
    "---(?:" + "|".join(re.escape(m[3:]) for m in _MARKERS if m.startswith("---")) + ")"
)
# A marker that starts before ``best`` ends before this much further.
_LONGEST_DASHED = max(len(m) for m in _MARKERS if m.startswith("---"))


class Mail:
    """A parsed view of one message. Not frozen (it caches), but never changed after use."""

    def __init__(self, raw: bytes) -> None:
        self.problems: list[Problem] = []
        self.data = normalize_newlines(raw)
        self.root = Part(self.data, self.problems)
        self.headers: Headers = self.root.headers
        # header(name): the first value of a header ("" when absent). Detectors ask this often:
        # the index's own lookup, bound once, rather than a method that calls it.
        self.header: Callable[[str], str] = self.headers.get

    # --- headers ---------------------------------------------------------------------------
    @lazy
    def subject(self) -> str:
        return decode_words(self.headers.get("Subject")).strip()

    @lazy
    def sender(self) -> str:
        return decode_words(self.headers.get("From")).strip()

    @lazy
    def sender_lower(self) -> str:
        return self.sender.lower()

    @lazy
    def subject_lower(self) -> str:
        return self.subject.lower()

    @lazy
    def received(self) -> str:
        """Every Received header, joined by spaces: detectors look for an MTA's name in them."""
        return " ".join(self.headers.get_all("Received"))

    @lazy
    def received_lower(self) -> str:
        return self.received.lower()

    @lazy
    def content_type(self) -> str:
        return self.root.content_type

    # --- parts -----------------------------------------------------------------------------
    @lazy
    def own_parts(self) -> list[Part]:
        """Every part of this message, not descending into returned messages."""
        out: list[Part] = []
        stack: list[Part] = [self.root]
        while stack and len(out) < 500:
            part = stack.pop()
            out.append(part)
            if part.is_multipart:
                stack.extend(reversed(part.children))
        return out

    def first_part(self, types: frozenset[str]) -> Part | None:
        for part in self.own_parts:
            if part.content_type in types:
                return part
        return None

    @lazy
    def delivery_status(self) -> Part | None:
        return self.first_part(_DELIVERY_STATUS)

    @lazy
    def feedback_report(self) -> Part | None:
        return self.first_part(_FEEDBACK)

    @lazy
    def returned(self) -> Part | None:
        """The returned original message (or its headers), as a Part with headers, if attached."""
        container = self._returned_container
        if container is None:
            return None
        children = container.children
        return children[0] if children else None

    @lazy
    def _returned_container(self) -> Part | None:
        """The message/rfc822 (or headers-only) part that holds the returned message."""
        for part in self.own_parts:
            if part is self.root:
                continue
            if part.content_type in _RETURNED:
                return part
        return None

    @lazy
    def text(self) -> str:
        """The human-readable notice: this message's own text/plain parts (or HTML reduced to
        text when there is no plain text), excluding the returned message."""
        plain: list[str] = []
        html: list[str] = []
        for part in self.own_parts:
            if part.is_multipart and part is self.root and not part.children:
                plain.append(part.text)  # a multipart whose parts cannot be found: read it whole
                continue
            ctype = part.content_type
            if ctype == "text/plain":  # read whether it is an attachment or not
                plain.append(part.text)
                continue
            if (
                part.is_multipart
                or ctype in _RETURNED
                or not (ctype == "text/html" or part is self.root)
            ):
                continue  # (nor any other type but the message's own body)
            if part.headers.get("Content-Disposition").lower().startswith("attachment"):
                continue
            if ctype == "text/html":
                # Decoded now, so that its problems are recorded in part order; reduced to text
                # (the costly step) only when there is no plain text to read instead.
                html.append(part.source_text)
            else:
                plain.append(part.text)
        if plain:
            return "\n".join(plain)
        return "\n".join(html_to_text(source) for source in html)

    @lazy
    def text_lower(self) -> str:
        return self.text.lower()

    def mentions(self, *needles: str) -> bool:
        """Whether :attr:`text` may contain one of ``needles`` (lower-case ASCII) in any case:
        a cheap test for a detector to run before a case-insensitive pattern that needs one of
        them, over the text or the notice (its beginning). See :func:`quick.may_contain`."""
        if self._case_traps:
            return True
        lower = self.text_lower
        # contains_any, written out: detectors ask this very often (a plain loop, no generator)
        for needle in needles:  # noqa: SIM110
            if needle in lower:
                return True
        return False

    @lazy
    def _case_traps(self) -> bool:
        return has_case_traps(self.text)

    @lazy
    def notice(self) -> str:
        """:attr:`text` up to the start of an inline copy of the original message."""
        return self._split[0]

    @lazy
    def notice_lower(self) -> str:
        notice = self.notice
        # Most notices are the whole text (no inline copy follows): its lower-cased copy is made.
        return self.text_lower if notice is self.text else notice.lower()

    @lazy
    def inline_original(self) -> str:
        """The inline copy of the original message after a marker line, if any."""
        return self._split[1]

    @lazy
    def _split(self) -> tuple[str, str]:
        return split_original(self.text, self.text_lower)

    def original_headers(self, select: FieldSelection | None = None) -> Headers:
        """Headers of the returned message: the attached part, else the inline copy.

        With ``select``, a caller that reads only the selected fields gets at least those: an
        attached part not yet read as a Part, or the inline copy, has only them read from its
        header block."""
        # (A lazy value, once computed, is in the instance's __dict__: then it costs nothing.)
        if select is not None and "returned" not in self.__dict__:
            scanned = self._scan_returned(select)
            if scanned is not None:
                has_fields, selected = scanned
                return selected if has_fields else self._inline_headers(select)
        returned = self.returned
        if returned is not None and len(returned.headers):
            return returned.headers
        return self._inline_headers(select)

    def _scan_returned(self, select: FieldSelection) -> tuple[bool, Headers] | None:
        """:meth:`FieldSelection.scan` of the header block that :attr:`returned` would parse;
        None when there is no such part or it is nested too deep (``returned`` records that)."""
        container = self._returned_container
        if container is None or container.depth >= MAX_DEPTH:
            return None
        data = container.decoded  # as Part.children decodes it, with the same problems
        head = data if container.content_type in _HEADERS_ONLY else header_block(data)
        return select.scan(head)

    def _inline_headers(self, select: FieldSelection | None) -> Headers:
        inline = self.inline_original
        if not inline:
            return Headers([])
        block = _header_lines(inline).encode("utf-8", "replace")
        scanned = select.scan(block) if select is not None else None
        return scanned[1] if scanned is not None else parse_header_block(block)


def split_original(text: str, lower: str = "") -> tuple[str, str]:
    """Split a notice at the first known marker of an inline original message. ``lower`` is
    ``text.lower()`` when the caller has it already."""
    lower = lower or text.lower()
    best = len(lower)  # none found yet
    for word, markers in _UNDASHED_BY_WORD.items():
        if word not in lower:
            continue
        for marker in markers:
            # Only a marker that starts before the best so far matters: the search ends there.
            pos = lower.find(marker, 0, best + len(marker) - 1)
            if pos >= 0:
                best = pos
    dashed = _DASHED.search(lower, 0, best + _LONGEST_DASHED)
    if dashed is not None and dashed.start() < best:
        best = dashed.start()
    if best == len(lower):
        return text, ""
    line_end = text.find("\n", best)
    rest = text[line_end + 1 :] if line_end >= 0 else ""
    return text[:best], rest


def _header_lines(text: str) -> str:
    """The first block of header-looking lines in ``text`` (leading blank lines skipped)."""
    lines = text.lstrip("\n").split("\n", 400)  # only the first 400 lines are read
    out: list[str] = []
    for line in lines[:400]:
        if not line.strip():
            if out:
                break
            continue
        out.append(line.lstrip(" ") if not out else line)
    return "\n".join(out)
