"""The light MIME reader: line endings, encodings, charsets, broken structure as data."""

from __future__ import annotations

import base64

from bounceback.core.message import Mail, split_original
from bounceback.core.mime import (
    Part,
    decode_bytes,
    decode_words,
    html_to_text,
    normalize_newlines,
    parse_params,
)
from bounceback.core.report import Problem


def test_line_endings() -> None:
    assert normalize_newlines(b"a\r\nb\rc\n") == b"a\nb\nc\n"
    for sep in (b"\n", b"\r\n", b"\r"):
        mail = Mail(sep.join([b"Subject: hi", b" there", b"From: a@b.example", b"", b"body"]))
        assert mail.subject == "hi there"
        assert mail.text == "body"


def test_params() -> None:
    ctype, params = parse_params('Multipart/Report; report-type=delivery-status;\n boundary="a;b"')
    assert ctype == "multipart/report"
    assert params == {"report-type": "delivery-status", "boundary": "a;b"}


def test_charsets_and_encoded_words() -> None:
    assert decode_bytes("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_bytes("ユーザ".encode("iso2022_jp"), "") == "ユーザ"
    assert decode_bytes(b"caf\xe9", "no-such-charset").startswith("caf")
    # found by the mutation fuzzer: the codec registry raises ValueError on a NUL in the name
    assert decode_bytes(b"caf\xe9", "utf\x00-8").startswith("caf")
    assert decode_words("=?ISO-2022-JP?B?GyRCJWYhPCU2GyhC?=") == "ユーザ"
    assert decode_words("=?broken?Q?x") == "=?broken?Q?x"


def test_base64_with_bad_padding_is_still_read() -> None:
    body = base64.b64encode(b"550 5.1.1 user unknown").rstrip(b"=") + b"!!"
    part = Part(b"Content-Transfer-Encoding: base64\n\n" + body, [])
    assert part.decoded.startswith(b"550 5.1.1 user unknown")


def test_broken_multipart_is_a_problem_not_an_error() -> None:
    mail = Mail(b"Content-Type: multipart/mixed\n\n--x\n\nhello\n")
    assert mail.own_parts == [mail.root]
    assert [p.code for p in mail.problems] == ["mime.no_boundary"]
    mail = Mail(b'Content-Type: multipart/mixed; boundary="x"\n\n--x\n\nhello\n')
    assert mail.text == "hello\n"
    assert "mime.unterminated" in [p.code for p in mail.problems]


def test_returned_message_parts_are_not_searched_for_reports() -> None:
    inner = (
        b'Content-Type: multipart/report; boundary="in"\n\n--in\n'
        b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; x@y.example\n"
        b"--in--\n"
    )
    outer = (
        b'Content-Type: multipart/mixed; boundary="out"\n\n--out\n\nfyi\n--out\n'
        b"Content-Type: message/rfc822\n\n" + inner + b"--out--\n"
    )
    mail = Mail(outer)
    assert mail.delivery_status is None
    assert mail.returned is not None


def test_inline_original_split() -> None:
    notice, original = split_original(
        "Hi.\n<a@b.example>:\nno mailbox\n--- Below this line is a copy of the message.\n\n"
        "Message-ID: <x@y>\n"
    )
    assert notice.endswith("no mailbox\n")
    assert "Message-ID: <x@y>" in original


def test_html_to_text() -> None:
    html = "<html><style>p {}</style><p>550 5.1.1&nbsp;user<br>unknown</p><script>x()</script>"
    assert html_to_text(html).split() == ["550", "5.1.1", "user", "unknown"]
    assert html_to_text("a<script>never closed").strip() == "a"


def test_wrong_declared_boundary_is_recovered() -> None:
    raw = (
        b'Content-Type: multipart/report; boundary="declared"\n\n'
        b"--used\nContent-Type: text/plain\n\nnotice\n"
        b"--used\nContent-Type: message/delivery-status\n\nAction: failed\n--used--\n"
    )
    mail = Mail(raw)
    assert mail.delivery_status is not None
    assert mail.text.strip() == "notice"
    assert "mime.boundary_mismatch" in [p.code for p in mail.problems]


def test_multipart_without_parts_is_read_as_text() -> None:
    mail = Mail(b'Content-Type: multipart/mixed; boundary="nowhere"\n\nplain words\n')
    assert mail.text.strip() == "plain words"


def test_a_charset_name_with_a_nul_character_is_unknown_not_a_crash() -> None:
    problems: list[Problem] = []
    assert decode_bytes(b"abc", "utf\x008", problems) == "abc"
    assert [p.code for p in problems] == ["charset.unknown"]
