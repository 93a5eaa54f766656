"""What ``parse`` returns: frozen dataclasses, nothing but data.

Two stages meet here. Detectors (``standards/`` and ``formats/``) produce :class:`Facts`, what a
bounce says about one recipient, unclassified. The classifier turns each into a
:class:`RecipientResult` with a reason, a category and the id of the rule that decided it.

The classes built for every message get a faster ``__init__`` (:func:`~bounceback.core.frozen.
quick_init`); they are frozen dataclasses all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bounceback.core.frozen import quick_init
from bounceback.core.taxonomy import Action, Category, Kind, Reason


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the message that did not stop parsing (data, never an exception)."""

    code: str  # stable, e.g. "mime.no_boundary", "charset.unknown", "dsn.no_recipient"
    detail: str


@quick_init
@dataclass(frozen=True, slots=True)
class Facts:
    """What a bounce says about one recipient, before classification.

    Every field is text as found (normalised), empty when absent. ``reason_hint`` is set only by a
    detector that knows what its format means (e.g. a provider that writes "mailbox full" as a
    fixed phrase), and ``hint_rule`` names that knowledge so that results stay explainable.
    """

    address: str
    original_recipient: str = ""
    action: Action = Action.NONE
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    diagnostic_type: str = ""  # "smtp", "x-unix", "x-postfix" ...
    remote_mta: str = ""
    reporting_mta: str = ""
    smtp_command: str = ""  # the SMTP command the failure answered: CONN HELO MAIL RCPT DATA ...
    last_attempt: str = ""
    feedback_type: str = ""
    reason_hint: Reason | None = None
    hint_rule: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class Decision:
    """How the classifier decided a reason: the rule id and the text it matched."""

    reason: Reason
    rule_id: str
    matched: str = ""
    sender_dmarc: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class RecipientResult:
    """One affected recipient, classified."""

    address: str
    original_recipient: str
    action: Action
    status: str
    reply_code: str
    diagnostic: str
    remote_mta: str
    reporting_mta: str
    smtp_command: str
    reason: Reason
    category: Category
    permanent: bool
    rule_id: str
    matched: str = ""
    feedback_type: str = ""
    last_attempt: str = ""
    detector: str = ""
    status_derived: bool = False  # True when no code was given and ``status`` was derived

    @property
    def hard(self) -> bool:
        """A hard bounce by the taxonomy's default (the service's policy may differ)."""
        return self.category.is_hard(self.permanent)


@quick_init
@dataclass(frozen=True, slots=True)
class Original:
    """What identifies the message the bounce answers (from the returned message or headers)."""

    message_id: str = ""
    from_: str = ""
    to: str = ""
    subject: str = ""
    date: str = ""
    envelope_id: str = ""  # RFC 3461 ENVID, echoed as Original-Envelope-ID
    # Headers of ours (X-Bounceback-*) and any other X- header the caller asked about, as found.
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return ""


@quick_init
@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``parse`` learnt about one message."""

    kind: Kind
    recipients: tuple[RecipientResult, ...] = ()
    original: Original = field(default_factory=Original)
    detector: str = ""  # the detector that read the message, e.g. "rfc3464", "qmail"
    subject: str = ""  # of the bounce itself
    sender: str = ""  # From: of the bounce itself
    return_path: str = ""  # where the bounce was delivered: our VERP address when it is one
    verp_token: str = ""  # the part after "+" in return_path's local part
    problems: tuple[Problem, ...] = ()

    @property
    def is_bounce(self) -> bool:
        return self.kind in (Kind.BOUNCE, Kind.DELAY)
