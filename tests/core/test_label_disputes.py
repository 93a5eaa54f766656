"""Corpus labels we believe are wrong, and why we keep our answer.

The corpus truth is another project's labelling. Where a label contradicts what the message says,
or contradicts the label of the same server response in another file, bounceback keeps its own
reading. Each row below states the message's own words and the reason. The test checks both our
answer and the label, so it fails if either changes: then the row is to be looked at again.
(The CRLF and CR copies of these files under maildir/dos and maildir/mac carry the same labels.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bounceback import parse

from support import CORPUS, require_corpus

# file, recipient index, field, ours, the label, why
DISPUTES: list[tuple[str, int, str, str, str, str]] = [
    # --- "user unknown" labelled "filtered" ---------------------------------------------------
    # The server said the address does not exist; nothing in these messages says a content
    # filter refused them. "filtered" would show the marketer "Content" and hide a dead address.
    # The same responses are labelled user_unknown elsewhere in the corpus (rfc3464-58,
    # rhost-messagelabs-02, lhost-yandex-02).
    ("lhost-mcafee-01", 1, "reason", "user_unknown", "filtered", "550 Unknown user a@b"),
    ("lhost-mcafee-04", 1, "reason", "user_unknown", "filtered", "550 a@b... No such user"),
    ("lhost-mcafee-05", 1, "reason", "user_unknown", "filtered", "550 <a@b>... User not exist"),
    ("lhost-surfcontrol-01", 1, "reason", "user_unknown", "filtered", "550 a@b... No such user"),
    ("lhost-mailfoundry-01", 1, "reason", "user_unknown", "filtered", "550 No such user here"),
    (
        "lhost-activehunter-02",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "Recipient address rejected: User unknown in local recipient table",
    ),
    ("lhost-mxlogic-03", 1, "reason", "user_unknown", "filtered", "550 unknown user"),
    ("lhost-x1-03", 1, "reason", "user_unknown", "filtered", "User unknown"),
    (
        "lhost-x2-01",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "This user doesn't have a example.co.jp account",
    ),
    (
        "lhost-x2-02",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "This user doesn't have a example.com account",
    ),
    (
        "lhost-apachejames-01",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "550 - Requested action not taken: no such user here",
    ),
    (
        "lhost-zoho-03",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "550 Requested action not taken: mailbox unavailable (RFC 5321's own words for it)",
    ),
    ("lhost-exchange2003-04", 1, "reason", "user_unknown", "filtered", "Recipient Not Found"),
    (
        "lhost-messagingserver-03",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "550 5.7.1 550 User Unknown, refused at RCPT TO",
    ),
    (
        "lhost-messagingserver-06",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "550 5.2.1 <a@b>... User Unknown, refused at RCPT TO",
    ),
    (
        "lhost-amazonworkmail-02",
        1,
        "reason",
        "user_unknown",
        "filtered",
        "550 5.2.1 User Unknown; the same words are user_unknown in lhost-yandex-02",
    ),
    # --- the same response, other labels ------------------------------------------------------
    (
        "lhost-powermta-01",
        1,
        "reason",
        "user_unknown",
        "suspended",
        "550 5.2.1 User Unknown; user_unknown in lhost-exim-02 #2 and lhost-yandex-02",
    ),
    (
        "lhost-gmail-03",
        1,
        "reason",
        "content_error",
        "filtered",
        "554 5.7.0 Header error; policy_violation in lhost-exim-03, filtered here",
    ),
    (
        "lhost-exim-03",
        1,
        "reason",
        "content_error",
        "policy_violation",
        "554 5.7.0 Header error: the message's headers were refused (taxonomy: content_error)",
    ),
    (
        "lhost-sendmail-09",
        1,
        "reason",
        "content_error",
        "policy_violation",
        "554 5.7.9 Header error",
    ),
    (
        "lhost-gmail-05",
        1,
        "reason",
        "sender_rejected",
        "security_error",
        "550 5.7.1 Access denied in reply to MAIL FROM; sender_rejected in lhost-postfix-54",
    ),
    (
        "rhost-nttdocomo-02",
        1,
        "reason",
        "filtered",
        "sender_rejected",
        "550 Unknown user after DATA; the identical exchange is filtered in rhost-nttdocomo-01",
    ),
    # --- what the message says ---------------------------------------------------------------
    (
        "lhost-amavis-03",
        1,
        "reason",
        "spam_detected",
        "not_compliant_rfc",
        "554 5.7.0 Reject, id=... - SPAM (the notice: 'considered UBE')",
    ),
    (
        "lhost-sendmail-38",
        1,
        "reason",
        "content_error",
        "spam_detected",
        "550 5.7.1 message content rejected: nothing says spam",
    ),
    (
        "rfc3464-01",
        1,
        "reason",
        "user_unknown",
        "mailbox_full",
        "its delivery-status says 550 5.1.1 User Unknown for this recipient; the disk-space "
        "sentence of the prose is about another address",
    ),
    (
        "rhost-yahooinc-02",
        1,
        "reason",
        "rate_limited",
        "sender_rejected",
        "421 4.7.0 [TSS04] temporarily deferred due to unexpected volume (Yahoo's documented "
        "throttling code)",
    ),
    (
        "lhost-yahoo-13",
        1,
        "reason",
        "expired",
        "system_error",
        "Unable to deliver message after multiple retries, giving up",
    ),
    (
        "lhost-postfix-48",
        1,
        "reason",
        "exceed_limit",
        "too_many_connections",
        "552 Too many recipients: the taxonomy files recipient limits under exceed_limit",
    ),
    (
        "lhost-mfilter-04",
        1,
        "reason",
        "security_error",
        "sender_rejected",
        "550 5.4.1 All recipient addresses rejected : Access denied (the recipients, not the "
        "sender)",
    ),
    (
        "lhost-mailru-06",
        1,
        "reason",
        "user_unknown",
        "host_unknown",
        "Exim's 'Unrouteable address' is also what it says of an unknown local user (see the "
        "shipped sample exim/local_unknown-failed.eml)",
    ),
    (
        "lhost-dragonfly-18",
        1,
        "reason",
        "policy_violation",
        "security_error",
        "550 5.7.0 Recipient address rejected: Policy violation",
    ),
    # --- codes ---------------------------------------------------------------------------------
    (
        "lhost-v5sendmail-07",
        1,
        "reply_code",
        "501",
        "554",
        "the server answered '501 <a@b>... no access from mail server'",
    ),
    (
        "lhost-sendmail-56",
        1,
        "reply_code",
        "554",
        "421",
        "the failure is the greeting's '554 ... not accepting connections'; the 421 answered QUIT",
    ),
    ("lhost-postfix-38", 1, "reply_code", "554", "", "the server's answer begins with 554"),
    ("lhost-postfix-60", 1, "reply_code", "554", "", "the server's answer begins with 554"),
    # --- addresses -----------------------------------------------------------------------------
    # The reported message names no recipient ("To: <Undisclosed Recipients>"); the label is an
    # address invented by another project. We report none rather than invent one.
    (
        "arf-11",
        1,
        "address",
        "",
        "undisclosed-recipient-in-headers@libsisimai.org.invalid",
        "no recipient address anywhere in the report",
    ),
]


def _truth(file: str, index: int) -> dict[str, Any]:
    for line in (CORPUS / "truth.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["file"] == f"maildir/bsd/{file}.eml" and row["index"] == index:
            return dict(row)
    raise LookupError(f"{file} #{index} is not in the truth")


_TRUTH_FIELD = {"address": "recipient"}


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("file", "index", "field", "ours", "theirs", "why"),
    DISPUTES,
    ids=[f"{d[0]}#{d[1]}-{d[2]}" for d in DISPUTES],
)
def test_disputed_label(
    file: str, index: int, field: str, ours: str, theirs: str, why: str
) -> None:
    require_corpus()
    truth = _truth(file, index)
    assert truth[_TRUTH_FIELD.get(field, field)] == theirs, f"the label changed: {truth}"
    report = parse((CORPUS / "maildir" / "bsd" / f"{file}.eml").read_bytes())
    recipient = report.recipients[index - 1]
    got = {
        "address": recipient.address,
        "reason": recipient.reason.value,
        "reply_code": recipient.reply_code,
        "status": recipient.status,
    }[field]
    assert got == ours, f"{file}: {field} is now {got!r} ({why})"
