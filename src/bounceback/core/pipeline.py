"""``parse``: raw bytes -> :class:`Mail` -> detectors -> facts -> classifier -> :class:`Report`."""

from __future__ import annotations

import traceback

from bounceback.core import address as addr
from bounceback.core.classify import classify
from bounceback.core.formats import DETECTORS
from bounceback.core.message import Mail
from bounceback.core.mime import FieldSelection, decode_words
from bounceback.core.report import Facts, Original, Problem, RecipientResult, Report
from bounceback.core.standards import rfc3464
from bounceback.core.taxonomy import Action, Kind, Reason, categorize, derived_status

# The detectors as (name, function) pairs: the loop over them runs for every message, and
# unpacking a pair is cheaper than reading two attributes of each.
_DETECTORS = tuple((detector.name, detector.detect) for detector in DETECTORS)

# Headers of the returned message kept on Original.headers: ours, and the ones senders commonly
# use to tie a message to their own records.
_OWN_HEADER_PREFIXES = (
    "x-bounceback-",
    "x-app-",
    "x-campaign",
    "x-mailer-",
    "x-message-",
    "x-delivery",
    "x-job",
    "x-list",
    "list-",
    "x-ses-",
    "x-sg-",
    "x-mailgun-",
    "x-mc-",
    "x-pm-",
    "feedback-id",
)
_OWN_HEADER_INITIALS = frozenset(
    initial for prefix in _OWN_HEADER_PREFIXES for initial in (prefix[0], prefix[0].upper())
)
# What _original reads of the returned message's headers: only these are looked for.
_ORIGINAL_FIELDS = FieldSelection(
    ("message-id", "from", "to", "subject", "date"), _OWN_HEADER_PREFIXES
)
_RETURN_PATH_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")


_BYTES_LIKE = (bytes, bytearray, memoryview)  # made once, not at every call


def parse(raw: bytes) -> Report:
    """Read one message. Never raises on bad mail; problems are listed on the report.

    Raises TypeError when ``raw`` is not bytes (a programmer error, not bad mail).
    """
    if not isinstance(raw, _BYTES_LIKE):
        raise TypeError(f"parse() takes bytes, not {type(raw).__name__}")
    mail = Mail(bytes(raw))
    try:
        return _parse(mail)
    except Exception as exc:  # a bug in a detector must not lose the message: report it as data
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = (
            f"{type(exc).__name__}: {exc} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        )
        return Report(
            kind=Kind.NOT_BOUNCE, problems=(*mail.problems, Problem("parser.bug", detail))
        )


def _parse(mail: Mail) -> Report:
    detector_name = ""
    facts: list[Facts] = []
    for name, detect in _DETECTORS:
        found = detect(mail)
        if found:
            detector_name, facts = name, _dedupe(found)
            break
    results = tuple([_classify(f, mail, detector_name) for f in facts])  # no generator
    return_path = _return_path(mail)
    return Report(
        kind=_kind(results),
        recipients=results,
        original=_original(mail),
        detector=detector_name,
        subject=mail.subject,
        sender=mail.sender,
        return_path=return_path,
        verp_token=verp_token(return_path),
        problems=tuple(mail.problems),
    )


def _dedupe(facts: list[Facts]) -> list[Facts]:
    seen: dict[str, int] = {}
    out: list[Facts] = []
    for fact in facts:
        key = fact.address.lower()
        if key and key in seen:
            # Keep the first, but prefer one that carries a diagnostic.
            index = seen[key]
            if not out[index].diagnostic and fact.diagnostic:
                out[index] = fact
            continue
        seen[key] = len(out)
        out.append(fact)
    return out


def _classify(facts: Facts, mail: Mail, detector: str) -> RecipientResult:
    decision = classify(facts, "" if facts.diagnostic else mail.notice)
    permanent = is_permanent(facts)
    has_code = bool(facts.status or facts.reply_code)
    action = facts.action
    if action is Action.NONE and decision.reason not in (Reason.FEEDBACK, Reason.AUTO_REPLY):
        action = (
            Action.DELIVERED
            if decision.reason is Reason.DELIVERED
            else (
                Action.FAILED if permanent or decision.reason is Reason.EXPIRED else Action.DELAYED
            )
        )
    status = facts.status or derived_status(decision.reason, permanent)
    return RecipientResult(
        address=facts.address,
        original_recipient=facts.original_recipient,
        action=action,
        status=status,
        status_derived=status != facts.status,
        reply_code=facts.reply_code,
        diagnostic=facts.diagnostic,
        remote_mta=facts.remote_mta,
        reporting_mta=facts.reporting_mta,
        smtp_command=facts.smtp_command,
        reason=decision.reason,
        category=categorize(
            decision.reason, permanent, has_code=has_code, sender_dmarc=decision.sender_dmarc
        ),
        permanent=permanent,
        rule_id=decision.rule_id,
        matched=decision.matched,
        feedback_type=facts.feedback_type,
        last_attempt=facts.last_attempt,
        detector=detector,
    )


def is_permanent(facts: Facts) -> bool:
    """5.x.x / 5xx is permanent, 4.x.x / 4xx temporary; without a code the action decides."""
    for code in (facts.status, facts.reply_code):
        if code[:1] == "5":
            return True
        if code[:1] in ("4", "2"):
            return False
    return facts.action is not Action.DELAYED


_DELIVERED_ONLY = frozenset({Reason.DELIVERED})


def _kind(results: tuple[RecipientResult, ...]) -> Kind:
    if not results:
        return Kind.NOT_BOUNCE
    reasons = {r.reason for r in results}
    if Reason.FEEDBACK in reasons:
        return Kind.COMPLAINT
    if Reason.AUTO_REPLY in reasons:
        return Kind.AUTO_REPLY
    if reasons == _DELIVERED_ONLY:
        return Kind.DELIVERED
    # A delay when each recipient that was not delivered is only delayed (a plain loop: no list
    # of them, no generator).
    for result in results:
        if result.reason is not Reason.DELIVERED and result.action is not Action.DELAYED:
            return Kind.BOUNCE
    return Kind.DELAY


def _original(mail: Mail) -> Original:
    headers = mail.original_headers(_ORIGINAL_FIELDS)
    own = tuple(
        [  # a list comprehension: cheaper than tuple() over a generator
            (name, value)
            for name, value in headers.items()
            # The first letter rules out most names before the full test.
            if name[:1] in _OWN_HEADER_INITIALS and name.lower().startswith(_OWN_HEADER_PREFIXES)
        ][:50]
    )
    return Original(
        message_id=headers.get("Message-ID").strip(),
        from_=decode_words(headers.get("From")).strip(),
        to=decode_words(headers.get("To")).strip(),
        subject=decode_words(headers.get("Subject")).strip(),
        date=headers.get("Date").strip(),
        envelope_id=rfc3464.envelope_id(mail),
        headers=own,
    )


def _return_path(mail: Mail) -> str:
    get = mail.headers.get
    for name in _RETURN_PATH_HEADERS:
        value = get(name)
        if value:
            found = addr.find_address(value)
            if found:
                return found
    return ""


def verp_token(address: str, separator: str = "+") -> str:
    """``bounces+TOKEN@bounce.example`` -> ``TOKEN`` (empty when the address has none)."""
    local = address.rpartition("@")[0]
    if separator not in local:
        return ""
    return local.split(separator, 1)[1]
