"""The classifier: which rule table decides a recipient's reason, in which order.

Precedence, written down once (first step that gives an answer wins):

1. ``hint``: the detector knows what its format means (ARF, auto-reply, a provider's fixed text).
2. ``delivered``: a success action or a 2.x.x status.
3. ``provider``: rules for the remote host's provider (its codes may mean something narrower).
4. ``status-decisive``: an enhanced status code that names one cause precisely (5.1.1, 5.2.2),
   unless the diagnostic is a local program's output ("x-unix"), whose code is only a mapped
   exit status.
5. ``phrase``: the server's response text against the phrase table (ordered, first match); a
   weak phrase ("access denied") gives way to step 6 when the refused command is known.
6. ``command``: the SMTP command the failure answered (MAIL FROM refused: the sender; refused
   at the greeting or HELO: the connecting host). It comes before the broad status codes: a
   5.7.1 "not authorized" at MAIL FROM is the sender refused.
7. ``status``: any other listed enhanced status code.
8. ``fallback``: on_hold when a code said "failed" but not why, undetermined when nothing did.

After that, the SMTP command adjusts what the phrase table said (``_CONTEXT``): a recipient
refused as unknown only after DATA was refused by a content filter (the server had accepted the
RCPT), so it is ``filtered``; an unknown address or domain in reply to MAIL FROM is the sender's.
Provider rules and decisive status codes are not adjusted: some providers check recipients only
after DATA, and a 5.1.1 says plainly that the mailbox does not exist.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bounceback.core.classify.prefilter import Prefilter
from bounceback.core.classify.rules import ProviderRule, StatusRule
from bounceback.core.classify.rules.phrases import PHRASE_RULES
from bounceback.core.classify.rules.providers import PROVIDER_RULES
from bounceback.core.classify.rules.status import STATUS_RULES
from bounceback.core.report import Decision, Facts
from bounceback.core.taxonomy import Action, Reason

_COMPILED_PHRASES = tuple((rule, rule.compiled()) for rule in PHRASE_RULES)
# Finds, with one scan, the phrase rules that can match a text at all (see prefilter.py).
_PHRASE_FILTER = Prefilter(rule.pattern for rule in PHRASE_RULES)
_PHRASE_IDS = frozenset(rule.id for rule in PHRASE_RULES)
_WEAK_IDS = frozenset(rule.id for rule in PHRASE_RULES if rule.weak)
_SENDER_DMARC = tuple(pattern for rule, pattern in _COMPILED_PHRASES if rule.sender_dmarc)
_COMPILED_PROVIDERS = tuple(
    (rule, re.compile(rule.host), re.compile(rule.pattern) if rule.pattern else None)
    for rule in PROVIDER_RULES
)
# The same for provider rules and the remote host: most hosts are no listed provider's.
_PROVIDER_FILTER = Prefilter(rule.host for rule in PROVIDER_RULES)
_STATUS_EXACT: dict[str, StatusRule] = {r.code: r for r in STATUS_RULES if r.code[0] != "*"}
_STATUS_FAMILY: dict[str, StatusRule] = {r.code[1:]: r for r in STATUS_RULES if r.code[0] == "*"}
_SUCCESS = frozenset({Action.DELIVERED, Action.RELAYED, Action.EXPANDED})

# (refused command, reason the phrase table gave) -> the reason it really is in that context.
_CONTEXT: dict[tuple[str, Reason], tuple[str, Reason]] = {
    # "550 Unknown user" after DATA: the RCPT was accepted, so a filter refused the message.
    ("DATA", Reason.USER_UNKNOWN): ("context.unknown-after-data", Reason.FILTERED),
    # "553 example.com does not exist" in reply to MAIL FROM: the sender's domain.
    ("MAIL", Reason.HOST_UNKNOWN): ("context.domain-at-mail-from", Reason.SENDER_REJECTED),
    # "550 no such user" in reply to MAIL FROM: the sender's address.
    ("MAIL", Reason.USER_UNKNOWN): ("context.address-at-mail-from", Reason.SENDER_REJECTED),
}

_COMMAND_RULES: dict[str, tuple[str, Reason]] = {
    # The server refused the envelope sender: nothing about the recipient is known.
    "MAIL": ("command.mail", Reason.SENDER_REJECTED),
    # Refused before any envelope: the connecting host (IP, name) was not welcome.
    "CONN": ("command.connect", Reason.BLOCKED),
    "HELO": ("command.helo", Reason.BLOCKED),
}


def explain_order() -> tuple[str, ...]:
    """The steps of the precedence, for ``bounceback explain`` and the UI."""
    return (
        "hint",
        "delivered",
        "provider",
        "status-decisive",
        "phrase",
        "command",
        "status",
        "fallback",
    )


def normalize(text: str) -> str:
    # The same as collapsing \s+ to one space and stripping, done the fast way.
    return " ".join(text.split()).lower()


def classify(facts: Facts, fallback_text: str = "") -> Decision:
    """Decide the reason of one recipient. ``fallback_text`` is read when the facts carry no
    diagnostic (a notice that quotes the server's answer only in its prose)."""
    text = normalize(facts.diagnostic or fallback_text[:4096])
    decision = _decide(facts, text)
    adjusted = _CONTEXT.get((facts.smtp_command, decision.reason))
    if adjusted is not None and decision.rule_id in _PHRASE_IDS:
        return Decision(adjusted[1], adjusted[0], decision.matched)
    # Whatever step decided (a 5.7.26 status, a provider rule), the response may say that it is
    # the sender's own DMARC policy that failed: a sender-side problem.
    if (
        decision.reason is Reason.AUTH_FAILURE
        and not decision.sender_dmarc
        and any(pattern.search(text) for pattern in _SENDER_DMARC)
    ):
        return Decision(decision.reason, decision.rule_id, decision.matched, True)
    return decision


def _decide(facts: Facts, text: str) -> Decision:
    if facts.reason_hint is not None:
        return Decision(facts.reason_hint, facts.hint_rule or "hint.detector")
    if facts.action in _SUCCESS or facts.status.startswith("2."):
        return Decision(Reason.DELIVERED, "delivered.action", facts.action.value or facts.status)
    host = (facts.remote_mta or facts.reporting_mta).lower()
    found = _provider(host, facts, text) if host else None
    if found:
        return found
    status_rule = _status_rule(facts.status)
    # An "x-unix" diagnostic is a local delivery program's own output; its status code is only
    # the MTA's reading of the program's exit status (sysexits EX_NOUSER becomes 5.1.1), so what
    # the program said is read first.
    if status_rule is not None and status_rule.decisive and facts.diagnostic_type != "x-unix":
        return Decision(status_rule.reason, status_rule.id, facts.status)
    found = _phrase(text)
    if found and not (found.rule_id in _WEAK_IDS and facts.smtp_command in _COMMAND_RULES):
        return found
    if facts.smtp_command in _COMMAND_RULES:
        rule_id, reason = _COMMAND_RULES[facts.smtp_command]
        return Decision(reason, rule_id, facts.smtp_command)
    if status_rule is not None:
        return Decision(status_rule.reason, status_rule.id, facts.status)
    if facts.status or facts.reply_code or text:
        return Decision(Reason.ON_HOLD, "fallback.on-hold", facts.status or facts.reply_code)
    return Decision(Reason.UNDETERMINED, "fallback.undetermined")


def _provider(host: str, facts: Facts, text: str) -> Decision | None:
    status = facts.status
    for index in _PROVIDER_FILTER.candidates(host):  # in table order
        rule, host_re, pattern = _COMPILED_PROVIDERS[index]
        if not host_re.search(host):
            continue
        if (rule.status and rule.status != status) or (
            rule.command and rule.command != facts.smtp_command
        ):
            continue
        if pattern is not None:
            match = pattern.search(text)
            if not match:
                continue
            return _decided(rule, match.group(0))
        return _decided(rule, status)
    return None


def _decided(rule: ProviderRule, matched: str) -> Decision:
    return Decision(rule.reason, rule.id, matched, sender_dmarc=rule.sender_dmarc)


def _phrase(text: str) -> Decision | None:
    if not text:
        return None
    # Table order is kept: the candidates come back in it, and each is tried with its own
    # pattern, so the first rule that matches wins exactly as if every rule were tried.
    for index in _PHRASE_FILTER.candidates(text):
        rule, pattern = _COMPILED_PHRASES[index]
        match = pattern.search(text)
        if match:
            return Decision(rule.reason, rule.id, match.group(0), sender_dmarc=rule.sender_dmarc)
    return None


@lru_cache(maxsize=512)
def _status_rule(status: str) -> StatusRule | None:
    if not status or status.endswith(".0.0"):
        return None
    exact = _STATUS_EXACT.get(status)
    if exact is not None:
        return exact
    return _STATUS_FAMILY.get(status[1:])
