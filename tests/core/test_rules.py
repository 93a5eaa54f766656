"""The rule tables: well-formed, with unique ids, each rule matching the response it quotes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bounceback.core.classify import classify
from bounceback.core.classify.engine import normalize
from bounceback.core.classify.rules import phrases, providers, status
from bounceback.core.classify.rules.phrases import PHRASE_RULES
from bounceback.core.classify.rules.providers import PROVIDER_RULES
from bounceback.core.classify.rules.status import STATUS_RULES
from bounceback.core.report import Facts
from bounceback.core.taxonomy import Action, Category, Reason, categorize

ALL_IDS = (
    [r.id for r in PHRASE_RULES] + [r.id for r in PROVIDER_RULES] + [r.id for r in STATUS_RULES]
)


def test_rule_ids_are_unique_and_well_formed() -> None:
    assert len(ALL_IDS) == len(set(ALL_IDS)), sorted(i for i in ALL_IDS if ALL_IDS.count(i) > 1)
    for rule_id in ALL_IDS:
        assert re.fullmatch(r"[a-z0-9]+(?:[.-][a-z0-9]+)+", rule_id), rule_id


def test_patterns_compile_and_never_match_empty_text() -> None:
    for rule in PHRASE_RULES:
        assert rule.compiled().search("") is None, rule.id
    for prule in PROVIDER_RULES:
        re.compile(prule.host)
        if prule.pattern:
            assert re.compile(prule.pattern).search("") is None, prule.id


def test_status_rules_are_well_formed() -> None:
    for rule in STATUS_RULES:
        assert re.fullmatch(r"(?:\*|[245])\.\d{1,3}\.\d{1,3}", rule.code), rule.id
        assert not rule.code.endswith(".0.0"), f"{rule.id}: generic codes decide nothing"


def _quoted_above(path: Path) -> dict[str, list[str]]:
    """rule id -> the double-quoted responses in the comment block right above the rule."""
    source = path.read_text()
    lines = source.splitlines()
    out: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        rule_id = first.value if isinstance(first, ast.Constant) else None
        if not isinstance(rule_id, str):
            continue
        comment: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            comment.insert(0, lines[i].strip().lstrip("# "))
            i -= 1
        out[rule_id] = re.findall(r'"([^"]{4,})"', " ".join(comment))
    return out


PHRASES_SRC = Path(phrases.__file__)
PROVIDERS_SRC = Path(providers.__file__)


@pytest.mark.parametrize("rule", PHRASE_RULES, ids=lambda r: r.id)
def test_phrase_rule_matches_the_response_its_comment_quotes(rule: phrases.P) -> None:
    quoted = _quoted_above(PHRASES_SRC).get(rule.id)
    assert quoted, f"{rule.id}: no quoted server response in the comment above it"
    pattern = rule.compiled()
    assert any(pattern.search(normalize(q)) for q in quoted), (rule.id, quoted)


@pytest.mark.parametrize("rule", [r for r in PROVIDER_RULES if r.pattern], ids=lambda r: r.id)
def test_provider_rule_matches_the_response_its_comment_quotes(rule: providers.P) -> None:
    quoted = _quoted_above(PROVIDERS_SRC).get(rule.id)
    assert quoted, f"{rule.id}: no quoted server response in the comment above it"
    pattern = re.compile(rule.pattern)
    assert any(pattern.search(normalize(q)) for q in quoted), (rule.id, quoted)


def _facts(diagnostic: str, status_code: str = "", command: str = "", host: str = "") -> Facts:
    return Facts(
        address="a@example.org",
        action=Action.FAILED,
        status=status_code,
        diagnostic=diagnostic,
        smtp_command=command,
        remote_mta=host,
    )


@pytest.mark.parametrize(
    ("facts", "reason", "rule_prefix"),
    [
        # A decisive status code wins over the phrase around it.
        (
            _facts("550 5.1.1 <a@example.org>: Recipient address rejected", "5.1.1"),
            Reason.USER_UNKNOWN,
            "status.",
        ),
        # A phrase decides when the code is broad (5.7.1 says only "not authorized").
        (
            _facts(
                "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using "
                "zen.spamhaus.org",
                "5.7.1",
            ),
            Reason.BLOCKED,
            "blocked.",
        ),
        # With no phrase, a listed non-decisive code decides.
        (_facts("550 5.7.1 go away", "5.7.1"), Reason.SECURITY_ERROR, "status."),
        # Refused at MAIL FROM: the sender was refused.
        (_facts("550 go away", "", "MAIL"), Reason.SENDER_REJECTED, "command."),
        # A weak phrase gives way to the refused command: access denied at MAIL FROM.
        (_facts("550 5.7.1 Access denied", "5.7.1", "MAIL"), Reason.SENDER_REJECTED, "command."),
        # A domain that does not exist, in reply to MAIL FROM, is the sender's.
        (_facts("553 example.com does not exist", "", "MAIL"), Reason.SENDER_REJECTED, "context."),
        (_facts("553 example.com does not exist", "", "RCPT"), Reason.HOST_UNKNOWN, "host."),
        # Unknown user only after DATA: a content filter refused the message.
        (_facts("550 User unknown", "", "DATA"), Reason.FILTERED, "context."),
        # A code but no words: a failure whose cause is not known yet.
        (_facts("550 x", "5.0.0"), Reason.ON_HOLD, "fallback."),
        (_facts(""), Reason.UNDETERMINED, "fallback."),
    ],
)
def test_precedence(facts: Facts, reason: Reason, rule_prefix: str) -> None:
    decision = classify(facts)
    assert decision.reason is reason
    assert decision.rule_id.startswith(rule_prefix)


def test_dmarc_policy_failure_is_the_senders_problem() -> None:
    decision = classify(
        _facts(
            "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's "
            "DMARC policy",
            "5.7.26",
        )
    )
    assert decision.reason is Reason.AUTH_FAILURE
    category = categorize(decision.reason, True, sender_dmarc=decision.sender_dmarc)
    assert category is Category.DMARC_UNAUTHORIZED
    # SPF or DKIM alone failing is the policy of the receiver, not the sender's DMARC.
    spf = classify(_facts("550 5.7.26 SPF check failed", "5.7.26"))
    assert spf.reason is Reason.AUTH_FAILURE and not spf.sender_dmarc


def test_every_reason_has_a_category_both_ways() -> None:
    for reason in Reason:
        for permanent in (True, False):
            assert isinstance(categorize(reason, permanent), Category)


@pytest.mark.parametrize(
    ("reason", "permanent", "category", "hard"),
    [
        (Reason.USER_UNKNOWN, True, Category.UNKNOWN_USER, True),
        (Reason.SUSPENDED, False, Category.RECIPIENT_SERVER, False),
        (Reason.HOST_UNKNOWN, True, Category.INVALID_DOMAIN, True),
        (Reason.MAILBOX_FULL, True, Category.MAILBOX_FULL, False),
        (Reason.FILTERED, True, Category.CONTENT, True),
        (Reason.FILTERED, False, Category.SECURITY_FILTER, False),
        (Reason.SPAM_DETECTED, True, Category.SPAM, True),
        (Reason.BLOCKED, True, Category.POLICY, True),
        (Reason.EXPIRED, True, Category.RECIPIENT_SERVER, False),
        (Reason.RATE_LIMITED, True, Category.TEMPORARY, False),
        (Reason.UNDETERMINED, True, Category.OTHER, True),
        (Reason.FEEDBACK, True, Category.COMPLAINT, False),
    ],
)
def test_taxonomy_table(reason: Reason, permanent: bool, category: Category, hard: bool) -> None:
    got = categorize(reason, permanent)
    assert got is category
    assert got.is_hard(permanent) is hard
    assert got.label and got.advice


def test_labels_are_the_contracts() -> None:
    assert Category.UNKNOWN_USER.label == "Unknown user"
    assert Category.DMARC_UNAUTHORIZED.label == (
        "Your IT team has not authorized this service to send on your behalf"
    )
    assert categorize(Reason.UNDETERMINED, True, has_code=False) is Category.TEMPORARY


def test_status_table_has_no_duplicate_codes() -> None:
    codes = [r.code for r in status.STATUS_RULES]
    assert len(codes) == len(set(codes))
