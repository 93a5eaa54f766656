"""The speed-ups never change an answer.

``classify.prefilter`` skips the phrase and provider rules that cannot match a text, and
``quick.may_contain`` skips a case-insensitive pattern whose words are absent. Both must only ever
skip what could not have matched: checked here on strings generated from the patterns themselves,
on random word soups, and (for the case trap list) on every Unicode character. Patterns rewritten
to be searched faster are checked against the plain form they replace.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import re
import string
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceback.core import frozen, message, mime, report
from bounceback.core.classify import engine
from bounceback.core.classify.prefilter import needles
from bounceback.core.classify.rules.phrases import PHRASE_RULES
from bounceback.core.classify.rules.providers import PROVIDER_RULES
from bounceback.core.formats import _common, _mta, _transcript, courier, exim, postfix, sendmail
from bounceback.core.quick import _CASE_TRAPS, may_contain
from bounceback.core.report import Problem
from bounceback.core.standards import command, reply, rfc3464, status
from bounceback.core.taxonomy import Kind

_RELAXED = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plain_phrase(text: str) -> tuple[str, str] | None:
    """The phrase table tried rule by rule, without the prefilter."""
    for rule, pattern in engine._COMPILED_PHRASES:
        match = pattern.search(text)
        if match:
            return rule.id, match.group(0)
    return None


def _filtered_phrase(text: str) -> tuple[str, str] | None:
    found = engine._phrase(text)
    return (found.rule_id, found.matched) if found else None


def test_every_rule_has_needles() -> None:
    # Not required for correctness (a rule without needles is always tried), but a rule that
    # loses them makes every recipient slower: this says which one.
    missing = [r.id for r in PHRASE_RULES if needles(r.pattern) is None]
    missing += [r.id for r in PROVIDER_RULES if needles(r.host) is None]
    assert missing == []


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_matching_text_always_keeps_its_rule(data: st.DataObject) -> None:
    prefilter = engine._PHRASE_FILTER
    for index, rule in enumerate(PHRASE_RULES):
        text = data.draw(st.from_regex(rule.pattern), label=rule.id)
        if re.search(rule.pattern, text):
            assert index in prefilter.candidates(text), (rule.id, text)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_matching_host_always_keeps_its_rule(data: st.DataObject) -> None:
    prefilter = engine._PROVIDER_FILTER
    for index, rule in enumerate(PROVIDER_RULES):
        host = data.draw(st.from_regex(rule.host), label=rule.id)
        if re.search(rule.host, host):
            assert index in prefilter.candidates(host), (rule.id, host)


# Words of the rules' own needles and of real answers, so that random texts hit many rules.
_WORDS = sorted(
    {
        word
        for rule in PHRASE_RULES
        for needle in needles(rule.pattern) or ()
        for word in needle.split()
    }
    | {"550", "5.1.1", "<a@b.example>", "the", "mailbox", "is", "user", "unknown", "rejected", "ip"}
)


@_RELAXED
@given(st.lists(st.sampled_from(_WORDS), max_size=40))
def test_the_decision_is_the_plain_loops(words: list[str]) -> None:
    text = " ".join(words)
    assert _filtered_phrase(text) == _plain_phrase(text)


@_RELAXED
@given(
    st.text(alphabet=st.sampled_from(sorted(set(string.ascii_lowercase + " -:'.5"))), max_size=200)
)
def test_the_decision_is_the_plain_loops_on_any_text(text: str) -> None:
    assert _filtered_phrase(text) == _plain_phrase(text)


def test_case_traps_are_all_the_characters_lower_misses() -> None:
    letter = re.compile("[a-z]", re.I)
    found = set()
    for code in range(128, sys.maxunicode + 1):
        char = chr(code)
        if letter.fullmatch(char) and char.lower() not in string.ascii_lowercase:
            found.add(char)
    assert found == set(_CASE_TRAPS)


_MIXED = st.text(
    alphabet=st.sampled_from([*"aAbBiIkKsSnNoO -'", *_CASE_TRAPS, "\u212a", "é"]), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(_MIXED, st.sampled_from(["is no", "skin", "a' b", "kiss", "on-bi"]))
def test_may_contain_is_true_whenever_the_ignorecase_search_finds(text: str, needle: str) -> None:
    if re.search(re.escape(needle), text, re.I):
        assert may_contain(text, (needle,))


# --- patterns rewritten for speed, against the plain forms they replace ---------------------
# (rewritten pattern, the plain form it replaces, an alphabet that exercises it, tricky cases)
_PLAIN_FORMS = (
    (
        status._STATUS,
        r"(?<![\w.])([245])\.([0-7])\.(\d{1,3})(?![\w]|\.\d)",
        "5.0a \n",
        ["a5.0.0", "192.5.0.2", "x 4.1.2.7", "(#5.7.1)"],
    ),
    (
        _mta._FIRST_REPLY,
        r"(?<![\w.])([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\s)?",
        "50 .-a",
        ["a550 x", "1.550 x", "said: 550-5.1.1 x", "550 5.1.1"],
    ),
    (
        postfix._PARAGRAPH,
        r"^<([^<>\s]+@[^<>\s]+)>(?:\s*\(expanded\s+from\s+<[^<>]*>\))?:\s*",
        "<>a@:\n ",
        ["x <a@b>: y", "x\n<a@b>: y\n<c@d> (expanded from <e@f>): z", " <a@b>:"],
    ),
)


def _same_search(fast: re.Pattern[str], plain: re.Pattern[str], text: str) -> None:
    for start in range(len(text) + 1):
        found, expected = fast.search(text, start), plain.search(text, start)
        assert (found and (found.span(), found.groups())) == (
            expected and (expected.span(), expected.groups())
        ), (fast.pattern, text, start)


@pytest.mark.parametrize(("fast", "plain", "alphabet", "cases"), _PLAIN_FORMS)
def test_rewritten_patterns_find_what_the_plain_forms_find(
    fast: re.Pattern[str], plain: str, alphabet: str, cases: list[str]
) -> None:
    # Every string of up to six characters over the alphabet, and the tricky cases.
    compiled = re.compile(plain, fast.flags)
    for text in cases:
        _same_search(fast, compiled, text)
    for length in range(7):
        for chars in itertools.product(alphabet, repeat=length):
            _same_search(fast, compiled, "".join(chars))


def _params_through_the_escaping_pattern(value: str) -> tuple[str, dict[str, str]]:
    """parse_params as it reads a value with a backslash, for any value."""
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for name, raw in mime._PARAM.findall(rest[:4096]):
        val = raw
        if val.startswith('"') and val.endswith('"') and len(val) >= 2:
            val = val[1:-1].replace('\\"', '"')
        params.setdefault(name.lower().rstrip("*"), val)
    return head.strip().lower(), params


def test_parameters_without_escapes_read_as_with_them() -> None:
    # The pattern without escapes gives a quoted value without its quotes in a group of its
    # own: the parameters come out as the escaping pattern and the unquoting give them.
    for length in range(7):
        for chars in itertools.product('a;= "\n*', repeat=length):
            value = "t/s;" + "".join(chars)
            assert mime.parse_params(value) == _params_through_the_escaping_pattern(value), value


_WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from([*_WHITESPACE, "a", "B", "é"]), max_size=20))
def test_split_and_join_collapses_whitespace_as_the_substitution_did(text: str) -> None:
    collapsed = re.sub(r"\s+", " ", text).strip()
    assert _common.squash(text) == collapsed
    assert engine.normalize(text) == collapsed.lower()


def test_tags_are_stripped_as_the_substitution_did() -> None:
    plain = re.compile(r"<[^<>]{0,2000}>")
    cases = ["<" + "a" * 2000 + ">x", "<" + "a" * 2001 + ">x", "a<<b>>c", "<a" + "<" * 3 + "b>"]
    for text in cases:
        assert mime._strip_tags(text) == plain.sub(" ", text), text
    for length in range(8):
        for chars in itertools.product("<>a ", repeat=length):
            text = "".join(chars)
            assert mime._strip_tags(text) == plain.sub(" ", text), text


def test_header_values_come_out_stripped_as_str_strip_did() -> None:
    plain = re.compile(r"^([!-9;-~]{1,128}):(.*)$", re.M)
    for length in range(7):
        for chars in itertools.product("a: \t\xa0\x0c\n", repeat=length):
            text = "".join(chars)
            expected = [(name, value.strip()) for name, value in plain.findall(text)]
            assert mime._FIELD_LINE.findall(text) == expected, repr(text)


@_RELAXED
@given(st.lists(st.sampled_from(_WORDS), max_size=40))
def test_the_needle_search_finds_what_a_lookahead_at_every_position_finds(
    words: list[str],
) -> None:
    prefilter = engine._PHRASE_FILTER
    scan = prefilter._scan
    assert scan is not None
    text = " ".join(words)
    everywhere = re.compile(f"(?=({scan.pattern}))")
    assert prefilter._found(scan, text) == {m.group(1) for m in everywhere.finditer(text)}


def _split_original_marker_by_marker(text: str) -> tuple[str, str]:
    """split_original as it was: every marker searched for in the whole text."""
    lower = text.lower()
    best = len(lower)
    for marker in message.ORIGINAL_MARKERS:
        pos = lower.find(marker, 0, best + len(marker) - 1)
        if pos >= 0:
            best = pos
    if best == len(lower):
        return text, ""
    line_end = text.find("\n", best)
    return text[:best], text[line_end + 1 :] if line_end >= 0 else ""


_MARKER_SOUP = st.lists(
    st.sampled_from(
        [
            *message.ORIGINAL_MARKERS,
            *(m.upper() for m in message.ORIGINAL_MARKERS),
            *("-", "--", "---", "-----", "------------", " ", "\n", "original message", "x"),
        ]
    ),
    max_size=12,
).map("".join)


@_RELAXED
@given(st.one_of(_MARKER_SOUP, st.text(alphabet="-o \nriginalmessage", max_size=80)))
def test_one_dashed_pattern_finds_the_marker_each_search_found(text: str) -> None:
    assert message.split_original(text) == _split_original_marker_by_marker(text)


def test_every_marker_splits_where_it_starts() -> None:
    for marker in message.ORIGINAL_MARKERS:
        for before in ("", "notice\n", "-", "--", "----------\n", "-- "):
            text = f"{before}{marker}\nFrom: a@b\n"
            assert message.split_original(text) == _split_original_marker_by_marker(text)


_QUICK_INIT_CLASSES = (report.Facts, report.Decision, report.RecipientResult)
_QUICK_INIT_CLASSES += (report.Original, report.Report)


@pytest.mark.parametrize("cls", _QUICK_INIT_CLASSES, ids=lambda cls: cls.__name__)
def test_quick_init_takes_the_dataclass_parameters_and_stores_them(cls: type) -> None:
    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [f.name for f in fields]
    for param, f in zip(params, fields, strict=True):
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if f.default is not dataclasses.MISSING:
            assert param.default is f.default
        elif f.default_factory is not dataclasses.MISSING:
            assert param.default is frozen._FACTORY
        else:
            assert param.default is inspect.Parameter.empty
    values = {f.name: object() for f in fields}
    made = cls(**values)
    assert all(getattr(made, name) is value for name, value in values.items())
    assert cls(*values.values()) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(fields[0].name, "changed")


def test_quick_init_calls_default_factories_each_time() -> None:
    first, second = report.Report(kind=Kind.BOUNCE), report.Report(kind=Kind.BOUNCE)
    assert first.original == report.Original() and first.original is not second.original
    assert report.Facts("a@b") == report.Facts(address="a@b", reason_hint=None)


_SELECTION = mime.FieldSelection(("message-id", "from", "to"), ("x-app-", "list-", "x-mc-"))
_HEADER_LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "From: a@b",
                "from:  <a@b>  ",
                "TO:x",
                "To : not a field",
                "Message-ID: <1@b>",
                "message-id:",
                "X-App-Id: 7",
                "x-APP-: empty name tail",
                "List-Unsubscribe: <mailto:u@b>",
                "x-mc-user:\u00a0v\u00a0",
                "Received: from a by b",
                "X-Other: 1",
                "\tfolded: into the previous field",
                "  more",
                "",
                "From ",
                "Fromage: no",
                "K: kelvin",
                "X-App-\u212a: not a name",
                "l" + "i" * 130 + ": too long",
            ]
        ),
        st.text(alphabet="FfTtXx-:Mm \t\u00a0aA\u212a", max_size=12),
    ),
    max_size=12,
)


def _selected(headers: mime.Headers) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in headers.items()
        if name.lower() in ("message-id", "from", "to")
        or name.lower().startswith(("x-app-", "list-", "x-mc-"))
    ]


@_RELAXED
@given(_HEADER_LINES, st.sampled_from(["\n", "\r\n"]))
def test_a_field_selection_reads_the_selected_fields_as_the_full_parse(
    lines: list[str], newline: str
) -> None:
    block = newline.join(lines).encode("utf-8") + b"\n"
    full = mime.parse_header_block(block)
    scanned = _SELECTION.scan(block)
    assert scanned is not None
    has_fields, selected = scanned
    assert has_fields == (len(full) > 0)
    assert selected.items() == _selected(full)
    for name in ("Message-ID", "from", "TO", "x-app-id", "List-Unsubscribe", "received"):
        assert selected.get(name) == (full.get(name) if name != "received" else "")


def test_a_field_selection_leaves_a_block_of_too_many_lines_to_the_full_parse() -> None:
    assert _SELECTION.scan(b"X-A: 1\n" * mime.MAX_HEADERS) is None
    assert _SELECTION.scan(b"X-A: 1\n" * (mime.MAX_HEADERS - 1)) is not None
    # The shortest fields take three bytes each: a block under 3000 bytes has at most 1000.
    shortest = b"a:\n" * (mime.MAX_HEADERS - 1) + b"a:"  # 2999 bytes, as many as allowed
    problems: list[Problem] = []
    assert len(mime.parse_header_block(shortest, problems)) == mime.MAX_HEADERS and not problems
    scanned = _SELECTION.scan(shortest)  # read by the scan, not left to the full parse
    assert scanned is not None and scanned[0] and not scanned[1].items()


@_RELAXED
@given(st.text(alphabet="From:\n \tab-", max_size=40))
def test_the_header_block_is_split_head_bodys_head(text: str) -> None:
    data = text.encode()
    assert mime.header_block(data) == mime.split_head_body(data)[0]


def _bounce(returned_type: str, returned: str, text: str = "notice") -> bytes:
    return (
        "From: MAILER-DAEMON@b\nContent-Type: multipart/report; boundary=B\n\n"
        f"--B\nContent-Type: text/plain\n\n{text}\n"
        f"--B\nContent-Type: {returned_type}\n\n{returned}\n--B--\n"
    ).encode()


@pytest.mark.parametrize(
    "raw",
    [
        _bounce("message/rfc822", "Received: x\nFrom: a@b\nTo: c@d\nX-App-Id: 1\n\nbody"),
        _bounce("text/rfc822-headers", "Message-ID: <1@b>\nList-Id: l\nTo: c@d"),
        _bounce("message/rfc822", "no header here\n", "----- Original message -----\nTo: e@f"),
        _bounce("message/rfc822", "\nbody only", "--- Original message header\nFrom: g@h"),
        b"From: a@b\nContent-Type: text/plain\n\n----- Original message follows -----\nTo: x@y\n",
    ],
)
def test_selected_original_headers_are_the_full_ones(raw: bytes) -> None:
    full, quick = message.Mail(raw), message.Mail(raw)
    assert _selected(quick.original_headers(_SELECTION)) == _selected(full.original_headers())
    assert quick.problems == full.problems


@_RELAXED
@given(st.text(alphabet="ab@<> \t\n.-\u00a0", max_size=60))
def test_addresses_replaced_word_by_word_as_over_the_whole_line(text: str) -> None:
    whole = _transcript._ADDRESS.sub("<>", _common.squash(text).lower())
    assert _transcript._comparable(text) == whole


def _find_command_case_insensitively(text: str) -> str:
    """find_command as it was: the re.I pattern over the text itself."""
    match = command._COMMAND.search(text)
    if not match:
        return ""
    return "DATA" if match.group("eod") else command._CANONICAL.get(match.group("cmd").lower(), "")


_COMMAND_SOUP = st.lists(
    st.sampled_from(
        [
            *command._LEADS,
            *("In Reply To", "AFTER", " ", "\n", "the ", "end of ", "RCPT", "Data", "initial "),
            *("server ", "greeting", "banner", "x", "\u0130", "\u0131", "\u017f", "\u212a"),
        ]
    ),
    max_size=10,
).map("".join)


@_RELAXED
@given(_COMMAND_SOUP)
def test_the_command_is_found_in_the_lower_cased_text_as_case_insensitively(text: str) -> None:
    assert command.find_command(text) == _find_command_case_insensitively(text)


_CASELESS = {
    "exim._SIGNATURE": exim._SIGNATURE,
    "exim._START": exim._START,
    "exim._END": exim._END,
    "postfix._SIGNATURE": postfix._SIGNATURE,
    "courier._SIGNATURE": courier._SIGNATURE,
    "sendmail._FATAL": sendmail._FATAL,
    "sendmail._INLINE_DSN": sendmail._INLINE_DSN,
}
_CASELESS_SOUP = st.lists(
    st.sampled_from(
        [
            "This message was created automatically by mail delivery software",
            "following addresses failed:",
            "Address(es) to which the message has not yet been delivered is:",
            "  ------ This is a copy of",
            "Reporting-MTA:",
            "this address has been IGNORED",
            "This is the Postfix program at host ",
            "running the Courier mail server, version",
            "----- The following addresses had permanent fatal errors -----",
            " ",
            "\n",
            "\t",
            "-----",
            "x",
            "\u0130",
            "\u0131",
            "\u017f",
            "\u212a",
            "\u03a3",
            "A\u03a3",
            "Content-Type: message/delivery-status",
            "\u00a0",
            "S",
            "K",
        ]
    ),
    max_size=8,
).map("".join)


@pytest.mark.parametrize("name", sorted(_CASELESS))
def test_a_caseless_source_spells_its_letters_in_lower_case(name: str) -> None:
    source = _CASELESS[name].ignorecase.pattern
    assert re.sub(r"\\[A-Za-z]", "", source) == re.sub(r"\\[A-Za-z]", "", source).lower()


@_RELAXED
@given(_CASELESS_SOUP, st.integers(0, 40))
def test_the_lower_cased_search_gives_the_case_insensitive_match(text: str, cut: int) -> None:
    for pattern in _CASELESS.values():
        expected = pattern.ignorecase.search(text)
        found = pattern.search(text, text.lower())
        assert (found and (found.span(), found.groups())) == (
            expected and (expected.span(), expected.groups())
        )
        # The start of the lower-cased whole, as the detectors pass it.
        expected = pattern.ignorecase.search(text[:cut])
        found = pattern.search(text[:cut], text.lower()[:cut])
        assert (found and found.span()) == (expected and expected.span())


@pytest.mark.parametrize("cls", _QUICK_INIT_CLASSES, ids=lambda cls: cls.__name__)
def test_frozen_replace_is_dataclasses_replace(cls: type) -> None:
    fields = dataclasses.fields(cls)
    made = cls(**{f.name: object() for f in fields})
    for count in (0, 1, 2, len(fields)):
        changes = {f.name: object() for f in fields[:count]}
        copied = frozen.replace(made, **changes)
        assert type(copied) is cls and copied is not made
        expected = dataclasses.replace(made, **changes)
        assert all(getattr(copied, f.name) is getattr(expected, f.name) for f in fields)
    with pytest.raises(TypeError):
        frozen.replace(made, no_such_field=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copied.__setattr__(fields[0].name, "changed")


_BLANKS = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


def test_a_blank_line_is_what_strip_empties() -> None:
    # parse_fields tests "not line or line.isspace()" where it tested "not line.strip()".
    for line in ["", *_BLANKS, _BLANKS, " x", "x\u00a0", "\u200b"]:
        assert (not line or line.isspace()) == (not line.strip())


_DSN_VALUES = st.sampled_from(["", " ", "rfc822; a@b.example", "dns; mx.example", "smtp; 550 x"])


@given(
    st.dictionaries(
        st.sampled_from(sorted(rfc3464._RECIPIENT_FIELDS | {"remote-mta"})), _DSN_VALUES
    ),
    _DSN_VALUES,
)
def test_facts_from_block_reads_a_missing_field_as_empty(block: dict[str, str], mta: str) -> None:
    # facts_from_block skips the cleaning calls for a field the block lacks: the same as
    # cleaning "" (every field spelled out, empty, gives the same facts).
    full = dict.fromkeys((*rfc3464._RECIPIENT_FIELDS, "remote-mta", "diagnostic-code"), "")
    full.update(block)
    per_message = {"reporting-mta": mta} if mta else {}
    assert rfc3464.facts_from_block(block, per_message) == rfc3464.facts_from_block(
        full, {"reporting-mta": mta}
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["X-Mimecast-Spam", "x-MIMECAST", "X-Mime", "Received", "İ-x", "x"]),
            st.just("v"),
        )
    )
)
def test_has_prefix_is_a_scan_of_every_name(items: list[tuple[str, str]]) -> None:
    headers = mime.Headers(items)
    for prefix in ("x-mimecast", "x-mime", "i", "received"):
        expected = any(name.lower().startswith(prefix) for name, _ in headers.items())
        assert headers.has_prefix(prefix) is expected


def _unfold_always_substituting(text: str) -> str:
    """_mta.unfold before it returned one-line replies without the substitution."""
    first = _mta._FIRST_REPLY.search(text)
    if first is None:
        return text
    code, status = re.escape(first.group(1)), first.group(2)
    repeat = rf"\s{code}-" + (rf"(?:{re.escape(status)}\s)?" if status else "")
    if status:
        repeat = rf"(?:{repeat}|\s{code} {re.escape(status)}\s)"
    head, rest = text[: first.end()], text[first.end() :]
    return head + re.sub(repeat, " ", rest)


_REPLY_PIECES = st.sampled_from(
    [
        "550",
        "550-",
        "550 ",
        "5.7.1",
        "5.7.1 ",
        "451",
        "\n",
        " ",
        "-",
        "x",
        "550-5.7.1 ",
        "550 5.7.1 ",
    ]
)


@given(st.lists(_REPLY_PIECES, max_size=12).map("".join))
def test_unfold_skips_only_replies_it_would_not_change(text: str) -> None:
    assert _mta.unfold(text) == _unfold_always_substituting(text)


def test_unfold_joins_a_multi_line_reply() -> None:
    text = "550-5.7.1 Messages with multiple\n550-5.7.1 addresses\n550 5.7.1 refused"
    assert _mta.unfold(text) == _unfold_always_substituting(text)
    assert _mta.unfold(text) == "550-5.7.1 Messages with multiple addresses refused"


def test_an_empty_header_block_has_no_fields() -> None:
    problems: list[Problem] = []
    assert len(mime.parse_header_block(b"", problems)) == 0 and not problems
    assert mime.Part(b"\nbody", problems).headers.items() == [] and not problems


_OPTIONAL_VALUE_LINE = re.compile(r"^([!-9;-~]{1,128}):[^\S\n]*(.*\S)?", re.M)


@given(st.text(alphabet="ab:\n \t\u00a0\x0b\r", max_size=40))
def test_field_line_value_alternation_is_the_optional_group(text: str) -> None:
    # _FIELD_LINE's value was "(.*\S)?"; "(.*\S|)" finds the same fields and values.
    assert mime._FIELD_LINE.findall(text) == _OPTIONAL_VALUE_LINE.findall(text)


_FIELD_OF_A_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)$")


def _parse_fields_line_by_line(text: str) -> tuple[rfc3464.Block, list[rfc3464.Block]]:
    """rfc3464.parse_fields as it was: str.split into lines, a match per line."""
    per_message: rfc3464.Block = {}
    recipients: list[rfc3464.Block] = []
    current: rfc3464.Block | None = None
    last: str | None = None
    for line in text.split("\n")[:20_000]:
        if not line.strip():
            if current:
                recipients.append(current)
            current = None
            last = None
            continue
        if line[0] in " \t":
            if last is not None:
                target = current if current is not None else per_message
                if last in target:
                    target[last] = (target[last] + " " + line.strip())[:16_384]
            continue
        match = _FIELD_OF_A_LINE.match(line)
        if not match:
            continue
        name, value = match.group(1).lower(), match.group(2).strip()
        if current is None and name in rfc3464._PER_MESSAGE and not recipients:
            per_message.setdefault(name, value)
            last = name
            continue
        if current is not None and name in rfc3464._RECIPIENT_FIELDS and name in current:
            recipients.append(current)
            current = None
        if current is None:
            if name in rfc3464._PER_MESSAGE:
                per_message.setdefault(name, value)
                last = name
                continue
            current = {}
        current.setdefault(name, value)
        last = name
    if current:
        recipients.append(current)
    return per_message, [b for b in recipients if rfc3464._is_recipient(b)]


def test_parse_fields_reads_every_short_text_as_line_by_line() -> None:
    for length in range(7):
        for chars in itertools.product("a:\n \t\u00a0-", repeat=length):
            text = "".join(chars)
            assert rfc3464.parse_fields(text) == _parse_fields_line_by_line(text), text


_DSN_LINES = st.sampled_from(
    [
        "Reporting-MTA: dns; mx.example",
        "Final-Recipient: rfc822; a@b.example",
        "final-recipient:rfc822;c@d.example",
        "Original-Recipient: rfc822; e@f.example",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 unknown",
        "  continued text",
        "\tcontinued\r",
        "",
        " ",
        "\u00a0",
        "junk line",
        "X-Postfix-Queue-ID: 1",
        "Arrival-Date: now",
        "Name : value ",
    ]
)


@given(st.lists(_DSN_LINES, max_size=25).map("\n".join))
def test_parse_fields_reads_reports_as_line_by_line(text: str) -> None:
    assert rfc3464.parse_fields(text) == _parse_fields_line_by_line(text)


def test_normalize_newlines_is_the_two_replacements() -> None:
    for length in range(8):
        for chars in itertools.product(
            [b"a", b"\r", b"\n", b"\x0b", b"\x0c", b"\x1c", b"\x85"], repeat=length
        ):
            raw = b"".join(chars)
            assert mime.normalize_newlines(raw) == raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


_DELIMITER_AT_LINE_START = re.compile(rb"^--([!-~]{1,200})[ \t]*$", re.M)


def test_delimiter_lines_after_a_line_break_are_those_at_line_starts() -> None:
    for length in range(8):
        for chars in itertools.product([b"-", b"a", b"\n", b" ", b"\r"], repeat=length):
            body = b"".join(chars)
            found = [m.group(1) for m in mime._DELIMITER_LINE.finditer(b"\n" + body)]
            assert found == _DELIMITER_AT_LINE_START.findall(body), body


def _reply_code_through_finditer(text: str) -> str:
    for pattern in (reply._REPLY_WITH_STATUS, reply._REPLY):
        for match in pattern.finditer(text):
            if match.group(0) in reply.REGISTERED:
                return match.group(0)
    return ""


_REPLY_TEXT = st.lists(
    st.sampled_from(["550", "426", "5.1.1", "421", " ", "-", "\n", ":", "x", "2", "5", "0", "#"]),
    max_size=12,
).map("".join)


@given(_REPLY_TEXT)
def test_find_reply_code_searches_as_finditer_iterates(text: str) -> None:
    assert reply.find_reply_code(text) == _reply_code_through_finditer(text)


def test_every_undashed_marker_is_searched_under_a_word_it_holds() -> None:
    grouped = [(word, m) for word, ms in message._UNDASHED_BY_WORD.items() for m in ms]
    assert sorted(m for _, m in grouped) == sorted(message._UNDASHED)
    assert all(word in marker for word, marker in grouped)
