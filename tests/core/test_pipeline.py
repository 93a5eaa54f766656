"""parse() end to end on the bounces the project ships (real Postfix and Exim output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bounceback import Action, Category, Kind, Reason, parse, verp_token

from support import SAMPLES

# sample file stem -> (kind, address, reason, category, hard)
EXPECTED = {
    "local_unknown-failed": (
        Kind.BOUNCE,
        "nosuchuser@local.test",
        Reason.USER_UNKNOWN,
        Category.UNKNOWN_USER,
        True,
    ),
    "remote_550-failed": (
        Kind.BOUNCE,
        "unknown.alice@remote.test",
        Reason.USER_UNKNOWN,
        Category.UNKNOWN_USER,
        True,
    ),
    "remote_552-failed": (
        Kind.BOUNCE,
        "full.bob@remote.test",
        Reason.MAILBOX_FULL,
        Category.MAILBOX_FULL,
        False,
    ),
    "remote_554_spam-failed": (
        Kind.BOUNCE,
        "spam.carol@remote.test",
        Reason.SPAM_DETECTED,
        Category.SPAM,
        True,
    ),
    "remote_421_soft-delayed": (Kind.DELAY, "tempfail.dave@remote.test", None, None, False),
    "remote_421_soft-failed": (Kind.BOUNCE, "tempfail.dave@remote.test", None, None, False),
    "remote_data_554-failed": (
        Kind.BOUNCE,
        "datareject.erin@remote.test",
        None,
        Category.CONTENT,
        True,
    ),
    "remote_ok_notify_success-relayed": (
        Kind.DELIVERED,
        "ok.frank@remote.test",
        Reason.DELIVERED,
        Category.DELIVERED,
        False,
    ),
}

SAMPLE_FILES = sorted(SAMPLES.glob("*/*.eml"))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_samples(path: Path) -> None:
    kind, address, reason, category, hard = EXPECTED[path.stem]
    report = parse(path.read_bytes())
    assert report.kind is kind
    (recipient,) = report.recipients
    assert recipient.address == address
    if reason is not None:
        assert recipient.reason is reason
    if category is not None:
        assert recipient.category is category
    assert recipient.hard is hard
    if kind is Kind.DELAY:
        assert recipient.action is Action.DELAYED
    # The lab's sender put its token in the VERP address, the Message-ID and a header of its own.
    token = report.verp_token
    assert token and token.split("-")[0] in report.original.message_id
    if path.stem != "local_unknown-failed":
        assert report.original.header("X-App-Token") == token


def test_samples_cover_both_mtas() -> None:
    assert {p.parent.name for p in SAMPLE_FILES} == {"postfix", "exim"}
    assert len(SAMPLE_FILES) == 2 * len(EXPECTED)


def test_wrong_argument_type_is_a_programmer_error() -> None:
    with pytest.raises(TypeError):
        parse("not bytes")  # type: ignore[arg-type]


def test_empty_and_junk_input() -> None:
    for raw in (b"", b"\x00\xff" * 100, b"\n\n\n", b"From: \n"):
        report = parse(raw)
        assert report.kind is Kind.NOT_BOUNCE
        assert report.recipients == ()


def test_verp_token() -> None:
    assert verp_token("bounces+abc.def@bounce.example") == "abc.def"
    assert verp_token("bounces@bounce.example") == ""
    assert verp_token("a+b+c@x.example") == "b+c"


def test_report_is_frozen() -> None:
    report = parse((SAMPLES / "postfix" / "remote_550-failed.eml").read_bytes())
    with pytest.raises(AttributeError):
        report.kind = Kind.DELAY  # type: ignore[misc]


def test_derived_status_when_the_message_gives_none() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
        b"Hi. This is the qmail-send program at mx.example.net.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        b"<nobody@example.org>:\nSorry, no mailbox here by that name.\n\n"
        b"--- Below this line is a copy of the message.\n\nSubject: hi\n\nhi\n"
    )
    (recipient,) = parse(raw).recipients
    assert recipient.reason is Reason.USER_UNKNOWN
    assert (recipient.status, recipient.status_derived) == ("5.0.911", True)


def test_a_reported_status_is_not_marked_derived() -> None:
    report = parse((SAMPLES / "postfix" / "remote_550-failed.eml").read_bytes())
    assert (report.recipients[0].status, report.recipients[0].status_derived) == ("5.1.1", False)
