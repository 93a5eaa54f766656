"""Bytes to a light, lazy view of a message: headers, parts, decoded text.

Not a general MIME library. It reads what bounce parsing needs and never raises on bad mail:
problems are collected as :class:`Problem` values. Children of a multipart and decoded bodies are
computed on first use, so a detector that only needs headers pays for headers only.

Limits keep every input bounded in time: nesting depth, number of parts, header line length.
"""

from __future__ import annotations

import binascii
import codecs
import re
from email.header import decode_header

from bounceback.core.lazy import lazy
from bounceback.core.report import Problem

MAX_DEPTH = 8
MAX_PARTS = 500
MAX_HEADER_VALUE = 64 * 1024
MAX_HEADERS = 1000
# Text longer than this is cut before detectors scan it: a bounce notice is short, and what is
# past this point is an attachment that no rule needs.
MAX_TEXT = 512 * 1024

_HEADER_NAME = re.compile(rb"^([!-9;-~]{1,128}):")  # RFC 5322 ftext, bounded
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,64}\?[bBqQ]\?[^?\s]*\?=")

# Charset names seen in the wild that Python's codecs do not know by that name.
_CHARSET_ALIASES = {
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "sjis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "ks_c_5601-1987": "cp949",
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}


def normalize_newlines(raw: bytes) -> bytes:
    """CRLF and lone CR become LF, so every later step sees one line ending."""
    if b"\r" not in raw:
        return raw
    # The lines joined by LF: bytes.splitlines breaks at CRLF, CR and LF only (the ASCII line
    # boundaries), which is what the two replacements CRLF -> LF, CR -> LF do, in about
    # two-thirds of the time (a two-byte replacement is bytes.replace's slow case). The break
    # that ends the last line leaves no empty line behind it: it is put back.
    joined = b"\n".join(raw.splitlines())
    return joined + b"\n" if raw.endswith((b"\r", b"\n")) else joined


def decode_bytes(data: bytes, charset: str, problems: list[Problem] | None = None) -> str:
    """Decode with the declared charset, falling back to UTF-8 then Latin-1, never raising."""
    name = _CHARSET_ALIASES.get(charset.lower().strip(), charset.lower().strip())
    if not name:
        if b"\x1b$" in data:  # ISO-2022-JP escape sequences without a declared charset
            name = "iso2022_jp"
        else:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("latin-1")
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a name with a NUL character in it
        if problems is not None:
            problems.append(Problem("charset.unknown", f"unknown charset {charset!r}"))
        return data.decode("utf-8", "replace")
    try:
        return data.decode(name, "replace")
    except Exception:  # a broken codec state machine (e.g. stateful encodings) on junk input
        return data.decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words to text; the value unchanged when it has none or they are broken."""
    if "=?" not in value or not _ENCODED_WORD.search(value):
        return value
    try:
        pieces = decode_header(value)
    except Exception:  # email.header raises on some malformed words; keep the raw text
        return value
    out = []
    for chunk, charset in pieces:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset or ""))
        else:
            out.append(chunk)
    return "".join(out)


_PARAM = re.compile(r'([\w.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
# The same without backslash escapes in quoted values: where there is no backslash it finds the
# same parameters, and a plain character run is several times faster to match than the
# alternation repeated character by character. Its quoted value comes without its quotes in
# a group of its own: a bare value never both starts and ends with a quote (a quote that a later
# one closes is taken as a quoted value first), so the group to read says whether to unquote.
_PARAM_NO_ESCAPES = re.compile(r'([\w.*-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """``type/subtype; a=b; c="d"`` to (lower-cased type, {param: value})."""
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    if not rest:  # most values have no parameters: skip the scan
        return head.strip().lower(), params
    rest = rest[:4096]
    if "\\" not in rest:
        for name, quoted, bare in _PARAM_NO_ESCAPES.findall(rest):
            params.setdefault(name.lower().rstrip("*"), quoted or bare)  # one of them is ""
        return head.strip().lower(), params
    for name, raw in _PARAM.findall(rest):
        val = raw
        if val.startswith('"') and val.endswith('"') and len(val) >= 2:
            val = val[1:-1].replace('\\"', '"')
        params.setdefault(name.lower().rstrip("*"), val)
    return head.strip().lower(), params


class Headers:
    """An ordered, case-insensitive multi-map of unfolded header values."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        # The first value of each name is what nearly every reader asks for: indexed at once.
        # All the values of a name are asked for rarely (Received), and found by a scan then.
        # (A plain loop: faster than a comprehension over reversed items that overwrites.)
        first: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            if key not in first:
                first[key] = value
        self._first = first

    def get(self, name: str, default: str = "") -> str:
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        if key not in self._first:
            return []
        return [value for field, value in self._items if field.lower() == key]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._first

    def has_prefix(self, prefix: str) -> bool:
        """Whether a field's name starts with ``prefix`` (lower-case) in any case: each name is
        tested once, lower-cased already, however many fields have it (Received ...)."""
        return any(key.startswith(prefix) for key in self._first)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


_FOLD = re.compile(r"\n[ \t]+")
# One header line: an RFC 5322 field name (printable US-ASCII but the colon), a colon, the value.
# The value comes out stripped, with no str.strip() per field: the blanks after the colon are
# skipped and it ends at the last non-blank character of the line (\s and str.strip() agree on
# what is blank; [^\S\n] is a blank that is not the line break). An all-blank value gives "".
# The value is "(.*\S|)" rather than "(.*\S)?": the same greedy choice (the value, else
# nothing), which re runs as a plain alternation instead of its slower general repeat.
_VALUE = r"[^\S\n]*(.*\S|)"
_FIELD_LINE = re.compile(r"^([!-9;-~]{1,128}):" + _VALUE, re.M)


def parse_header_block(block: bytes, problems: list[Problem] | None = None) -> Headers:
    """Parse a block of header lines (already LF-only) into :class:`Headers`.

    The block is decoded once and unfolded with one substitution; lines that are not
    ``name: value`` (an mbox "From " line, junk) are skipped.
    """
    if not block:  # a part without headers (common in multiparts): nothing to decode or find
        return Headers([])
    text = _FOLD.sub(" ", _decode_header_bytes(block))
    items: list[tuple[str, str]] = _FIELD_LINE.findall(text)
    if len(text) > MAX_HEADER_VALUE:  # only then can a value be over the limit
        items = [(name, value[:MAX_HEADER_VALUE]) for name, value in items]
    if len(items) > MAX_HEADERS:
        if problems is not None:
            problems.append(Problem("mime.too_many_headers", f"over {MAX_HEADERS} headers"))
        items = items[:MAX_HEADERS]
    return Headers(items)


class FieldSelection:
    """Some fields of a header block, found without reading the others: those named one of
    ``names`` or starting with one of ``prefixes`` (ASCII letters in any case, as
    :meth:`Headers.get` compares them).

    A returned message's header block is long (Received, DKIM-Signature ...) and only a few of
    its fields are read. :meth:`scan` gives exactly the fields of those names that
    :func:`parse_header_block` gives, in the same order with the same values, but the search
    skips from line start to line start and reads the value of a selected field only.
    """

    def __init__(self, names: tuple[str, ...], prefixes: tuple[str, ...]) -> None:
        # A field name is 1 to 128 characters of [!-9;-~] (see _FIELD_LINE): a prefix leaves
        # room for fewer after it.
        ends = {name.lower(): "" for name in names}
        ends.update({p.lower(): f"[!-9;-~]{{0,{128 - len(p)}}}" for p in prefixes})
        # Each field line follows a line break (one is put in front of the block): the search
        # jumps from one to the next, a line is left at its first character that no selected
        # name has there (the names as a tree of shared beginnings), and _FIELD_LINE's value
        # part reads the selected ones.
        self._pattern = re.compile(r"\n(" + _name_tree(ends) + r"):" + _VALUE)

    def scan(self, block: bytes) -> tuple[bool, Headers] | None:
        """(whether the block has any field at all, the selected fields), or None when the
        block is too long to be sure of (over MAX_HEADERS lines): read it whole then."""
        # A field takes three characters at least ("a:" and a line break): a block shorter
        # than that many has too few to count its lines.
        if len(block) >= 3 * MAX_HEADERS and block.count(b"\n") >= MAX_HEADERS:
            return None
        text = _FOLD.sub(" ", _decode_header_bytes(block))
        items: list[tuple[str, str]] = self._pattern.findall("\n" + text)
        if len(text) > MAX_HEADER_VALUE:
            items = [(name, value[:MAX_HEADER_VALUE]) for name, value in items]
        # A selected field is a field line too: the block has fields if any was selected.
        return bool(items) or _FIELD_LINE.search(text) is not None, Headers(items)


def _name_tree(ends: dict[str, str]) -> str:
    """A pattern for any of ``ends``' words (lower-case), each followed by its own pattern, as a
    tree of shared beginnings. Letters match in either case as [xX]: re.I would also let the
    Kelvin sign stand for a "k" (no such name reaches a field, as names are ASCII)."""
    tree: dict[str, dict[str, str]] = {}
    for word, end in ends.items():
        tree.setdefault(word[:1], {})[word[1:]] = end
    branches = []
    for first, rest in sorted(tree.items()):
        if not first:  # a whole word ends here
            branches.append(rest[""])
            continue
        char = f"[{first}{first.upper()}]" if first.isalpha() else re.escape(first)
        branches.append(char + _name_tree(rest))
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _decode_header_bytes(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if b"\x1b$" in raw:
            return raw.decode("iso2022_jp", "replace")
        return raw.decode("latin-1")


# The empty line that ends a header block. re finds it faster than bytes.find does (measured on
# real headers: a two-byte needle of line breaks is bytes.find's slow case).
_HEAD_END = re.compile(rb"\n\n")


def header_block(data: bytes) -> bytes:
    """The first of :func:`split_head_body`'s two parts, without copying the body."""
    if data.startswith(b"\n") or not (_HEADER_NAME.match(data) or data.startswith(b"From ")):
        return b""
    found = _HEAD_END.search(data)
    return data if found is None else data[: found.start() + 1]


def split_head_body(data: bytes) -> tuple[bytes, bytes]:
    """Split LF-only message bytes at the first empty line (the header/body separator).

    When the first line is not a header at all, the whole input is body. A message whose header
    block runs into body text without an empty line keeps the text as body from the first line
    that is neither a header nor a continuation.
    """
    if data.startswith(b"\n"):
        return b"", data[1:]
    # Matched on the whole data: a field name cannot hold a line break, so this looks at the
    # first line only.
    if not _HEADER_NAME.match(data) and not data.startswith(b"From "):
        return b"", data
    found = _HEAD_END.search(data)
    if found is None:
        return data, b""
    end = found.start()
    return data[: end + 1], data[end + 2 :]


class Part:
    """One MIME entity: its headers and its (undecoded) body, with lazy children and text."""

    def __init__(
        self, data: bytes, problems: list[Problem], depth: int = 0, headers_only: bool = False
    ) -> None:
        self._problems = problems
        self.depth = depth
        if headers_only:
            head, body = data, b""
        else:
            head, body = split_head_body(data)
        self.headers = parse_header_block(head, problems)
        self.body = body
        # Every walk over the parts asks for the content type, many times: plain attributes.
        # (Read from the index by its lower-cased key: this runs for every part.)
        self.content_type, self.params = _content_type(self.headers._first.get("content-type", ""))
        # (_content_type gives a type with a "/" in it: the prefix is the main type.)
        self.is_multipart = self.content_type.startswith("multipart/")

    # --- children ------------------------------------------------------------------------------
    @lazy
    def children(self) -> list[Part]:
        """The parts of a multipart, or the embedded message of a message/rfc822; else []."""
        if self.depth >= MAX_DEPTH:
            if self.is_multipart or self.content_type in _EMBEDDED:
                self._problems.append(Problem("mime.too_deep", f"nesting over {MAX_DEPTH}"))
            return []
        if self.is_multipart:
            return self._split_multipart()
        if self.content_type in _EMBEDDED:
            return [Part(self.decoded, self._problems, self.depth + 1)]
        if self.content_type in _HEADERS_ONLY:
            return [Part(self.decoded, self._problems, self.depth + 1, headers_only=True)]
        return []

    def _split_multipart(self) -> list[Part]:
        boundary = self.params.get("boundary", "")
        body = self.body
        positions = _delimiters(body, boundary) if boundary else []
        if not positions:
            guessed = _guess_boundary(body)
            if guessed:
                positions = _delimiters(body, guessed)
                self._problems.append(
                    Problem(
                        "mime.boundary_mismatch",
                        f"declared boundary {boundary!r} not found; the body uses {guessed!r}",
                    )
                )
            elif not boundary:
                self._problems.append(Problem("mime.no_boundary", "multipart without a boundary"))
            else:
                self._problems.append(Problem("mime.boundary_not_found", f"boundary {boundary!r}"))
        if not positions:
            return []
        if len(positions) > MAX_PARTS:
            self._problems.append(Problem("mime.too_many_parts", f"over {MAX_PARTS} parts"))
            positions = positions[: MAX_PARTS + 1]
        elif not positions[-1][2]:
            self._problems.append(Problem("mime.unterminated", "no closing boundary"))
        parts = []
        for (_, end, closing), nxt in zip(positions, [*positions[1:], None], strict=True):
            if closing:
                break
            chunk_end = nxt[0] - 1 if nxt is not None else len(body)
            chunk = body[end + 1 : max(end + 1, chunk_end)]
            parts.append(Part(chunk, self._problems, self.depth + 1))
        return parts

    def walk(self) -> list[Part]:
        """This part and every descendant, depth first, bounded by MAX_PARTS."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack and len(out) < MAX_PARTS:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.children))
        return out

    # --- decoded content ---------------------------------------------------------------------
    @lazy
    def decoded(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone (never raising)."""
        cte = self.headers._first.get("content-transfer-encoding", "").strip().lower()
        body = self.body
        if cte == "base64":
            return _decode_base64(body, self._problems)
        if cte == "quoted-printable":
            try:
                return binascii.a2b_qp(body)
            except (binascii.Error, ValueError):
                self._problems.append(Problem("mime.bad_qp", "undecodable quoted-printable"))
                return body
        return body

    @lazy
    def text(self) -> str:
        """The decoded body as text in its declared charset (HTML reduced to text)."""
        if self.content_type == "text/html":
            return html_to_text(self.source_text)
        return self.source_text

    @lazy
    def source_text(self) -> str:
        """The decoded body as text in its declared charset, HTML left as it is."""
        return decode_bytes(self.decoded[:MAX_TEXT], self.params.get("charset", ""), self._problems)


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    """(type, params) of a Content-Type value; text/plain when missing or without a subtype."""
    if not value:
        return "text/plain", {}
    ctype, params = parse_params(value)
    if "/" not in ctype:
        return "text/plain", params
    return ctype, params


def _delimiters(body: bytes, boundary: str) -> list[tuple[int, int, bool]]:
    """(line start, line end, is closing) of each delimiter line of ``boundary`` in ``body``,
    up to the closing delimiter and at most MAX_PARTS + 1 of them."""
    delim = b"--" + boundary.encode("utf-8", "replace")[:200]
    line_delim = b"\n" + delim  # a delimiter at the start of a line
    positions: list[tuple[int, int, bool]] = []
    start = 0 if body.startswith(delim) else -1
    if start < 0:
        found = body.find(line_delim)
        start = found + 1 if found >= 0 else -1
    while start >= 0 and len(positions) <= MAX_PARTS:
        line_end = body.find(b"\n", start)
        line_end = len(body) if line_end < 0 else line_end
        rest = body[start + len(delim) : line_end]
        closing = rest.startswith(b"--")
        if closing or not rest.strip():
            positions.append((start, line_end, closing))
            if closing:
                break
        found = body.find(line_delim, line_end)
        start = found + 1 if found >= 0 else -1
    return positions


# A "--token" line, found after the line break before it (the body is searched with one put in
# front): a pattern that starts with a literal is searched far faster than one that starts at
# every line start ("^"), and it finds the same lines.
_DELIMITER_LINE = re.compile(rb"\n--([!-~]{1,200})[ \t]*$", re.M)


def _guess_boundary(body: bytes) -> str:
    """The boundary a body really uses when the declared one is missing or wrong: the most
    frequent ``--token`` line that also closes (``--token--``) or repeats."""
    counts: dict[bytes, int] = {}
    for match in _DELIMITER_LINE.finditer(b"\n" + body[:MAX_TEXT]):
        token = match.group(1)
        if token.endswith(b"--") and len(token) > 2:
            token = token[:-2]
        if token.strip(b"-"):
            counts[token] = counts.get(token, 0) + 1
    best = max(counts.items(), key=lambda kv: kv[1], default=(b"", 0))
    return best[0].decode("utf-8", "replace") if best[1] >= 2 else ""


_EMBEDDED = frozenset({"message/rfc822", "message/global", "message/partial"})
_HEADERS_ONLY = frozenset(
    {"text/rfc822-headers", "message/global-headers", "message/rfc822-headers"}
)


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _decode_base64(body: bytes, problems: list[Problem]) -> bytes:
    try:
        return binascii.a2b_base64(body)
    except (binascii.Error, ValueError):
        pass
    # Broken padding or stray characters: keep the alphabet, pad, and try once more.
    cleaned = _NOT_BASE64.sub(b"", body)
    if len(cleaned) % 4 == 1:  # one stray character cannot encode anything: drop it
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError):
        problems.append(Problem("mime.bad_base64", "undecodable base64 body"))
        return body


# A tag: "<", at most this many characters that are neither "<" nor ">", then ">".
_MAX_TAG = 2000
_BREAK = re.compile(r"<br\s{0,10}/?>|</(?:p|div|tr|li|h\d)>", re.I)
# Runs of blanks (and lone tabs) become one space; a lone space is left alone, which is the
# same result with far fewer replacements.
_BLANKS = re.compile(r"[ \t]{2,}|\t")
_ENTITY = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def html_to_text(html: str) -> str:
    """Enough HTML to text for rules to read a diagnostic: tags become spaces or line breaks."""
    text = _BREAK.sub("\n", _drop_scripts(html))
    text = _strip_tags(text)
    for entity, char in _ENTITY.items():
        text = text.replace(entity, char)
    return _BLANKS.sub(" ", text)


def _strip_tags(html: str) -> str:
    """Each tag becomes one space: the same as substituting ``<[^<>]{0,2000}>``, about twice
    as fast on real HTML, whose tags are long (the pattern tests every character of a tag
    against a character set). Cut at each "<", a piece is a tag up to its first ">" when that
    comes within _MAX_TAG characters; else the "<" was no tag and stays."""
    pieces = html.split("<")
    out = [pieces[0]]
    for piece in pieces[1:]:
        end = piece.find(">", 0, _MAX_TAG + 1)
        if end >= 0:
            out.append(" ")
            out.append(piece[end + 1 :])
        else:
            out.append("<")
            out.append(piece)
    return "".join(out)


_SCRIPT_OR_STYLE = re.compile("<script|<style")


def _drop_scripts(html: str) -> str:
    """Remove <script> and <style> elements in one linear pass (an unclosed one ends the text)."""
    lower = html.lower()
    out: list[str] = []
    pos = 0
    while True:
        found = _SCRIPT_OR_STYLE.search(lower, pos)  # one scan, not one per tag name
        if found is None:
            out.append(html[pos:])
            return "".join(out)
        start = found.start()
        out.append(html[pos:start])
        tag = "</script" if lower.startswith("<script", start) else "</style"
        end = lower.find(tag, start)
        close = lower.find(">", end) if end >= 0 else -1
        if close < 0:
            return "".join(out)
        pos = close + 1
