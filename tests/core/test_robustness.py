"""No input makes parse() raise or take long: arbitrary bytes, mutated real bounces, huge input."""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceback import Report, parse

from support import CORPUS, SAMPLES

SEEDS = [p.read_bytes() for p in sorted(SAMPLES.glob("*/*.eml"))]
if (CORPUS / "maildir").exists():
    SEEDS += [p.read_bytes() for p in sorted((CORPUS / "maildir" / "bsd").glob("*.eml"))[::7]]


def _check(raw: bytes) -> Report:
    report = parse(raw)
    assert isinstance(report, Report)
    assert all(p.code != "parser.bug" for p in report.problems), report.problems
    for recipient in report.recipients:
        assert recipient.rule_id
    return report


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    _check(raw)


_MIME_BITS = [
    b"\n",
    b"\r\n",
    b"\r",
    b"--",
    b"Content-Type: multipart/report; boundary=x\n",
    b"Content-Type: message/delivery-status\n",
    b"Content-Transfer-Encoding: base64\n",
    b"=?utf-8?b?",
    b"Final-Recipient: rfc822; ",
    b"Status: 5.",
    b"@",
    b"<",
    b">",
    b"\x00",
    b"\xff\xfe",
    b"\x1b$B",
    b"550 ",
    b": ",
    b"\t",
]


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=len(SEEDS) - 1),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=30),
)
def test_mutated_bounces(index: int, rnd: random.Random, count: int) -> None:
    data = bytearray(SEEDS[index])
    for _ in range(count):
        op = rnd.randrange(4)
        pos = rnd.randrange(len(data) + 1)
        if op == 0 and data:  # delete a run
            del data[pos : pos + rnd.randrange(1, 200)]
        elif op == 1:  # insert MIME-significant bytes
            data[pos:pos] = rnd.choice(_MIME_BITS)
        elif op == 2 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rnd.randrange(256)
        else:  # duplicate a slice (repeated boundaries, headers, recipients)
            chunk = data[pos : pos + rnd.randrange(1, 400)]
            data[pos:pos] = chunk * rnd.randrange(1, 4)
    _check(bytes(data))


def _elapsed(raw: bytes) -> float:
    start = time.perf_counter()
    _check(raw)
    return time.perf_counter() - start


def test_ten_megabyte_message_parses_in_well_under_a_second() -> None:
    # A real bounce with a 10 MB base64 attachment after the report.
    bounce = (SAMPLES / "postfix" / "remote_550-failed.eml").read_bytes()
    big = b"QUJD" * (10 * 1024 * 1024 // 4)
    raw = bounce + b"\n" + b"\n".join(big[i : i + 76] for i in range(0, len(big), 76))
    assert len(raw) > 10_000_000
    assert _elapsed(raw) < 0.5


def test_pathological_shapes_finish_quickly() -> None:
    header_line = b"Subject: " + b"x" * (10 * 1024 * 1024) + b"\n\nbody\n"
    many_parts = b'Content-Type: multipart/mixed; boundary="b"\n\n' + b"--b\n\nx\n" * 10_000
    deep = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(200)
    )
    for raw in (
        header_line,
        many_parts,
        deep,
        b"\n" * 1_000_000,
        b"@" * 1_000_000,
        b"From: MAILER-DAEMON\nSubject: Undelivered\n\n" + b"550 a@b.example " * 50_000,
    ):
        assert _elapsed(raw) < 2.0
