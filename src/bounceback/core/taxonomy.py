"""The bounce taxonomy as data: reasons, categories, kinds and DSN actions.

This module is the code form of ``shared/taxonomy.md`` (the contract). Reasons are what the remote
side said; categories are what a marketer sees; whether a failure is hard or soft follows from the
category and from whether it was permanent. Policy (what to do about it) lives in the service.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a message is, as a whole."""

    BOUNCE = "bounce"
    DELAY = "delay"
    DELIVERED = "delivered"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    NOT_BOUNCE = "not_bounce"


class Action(StrEnum):
    """The DSN Action field of RFC 3464 section 2.3.3 (empty when no report said it)."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"
    NONE = ""

    @classmethod
    def parse(cls, text: str) -> Action:
        word = text.strip().lower().split(" ", 1)[0] if text.strip() else ""
        # Some MTAs write "failure", "fail" or "delay"; normalise the common misspellings.
        word = {"failure": "failed", "fail": "failed", "delay": "delayed"}.get(word, word)
        # A dictionary lookup: calling the enum (and catching its ValueError) is far slower.
        return _ACTIONS.get(word, cls.NONE)


_ACTIONS = {action.value: action for action in Action}


class Reason(StrEnum):
    """Fine-grained: what the remote side said. Values are the contract of ``bounceback parse``."""

    USER_UNKNOWN = "user_unknown"
    HOST_UNKNOWN = "host_unknown"
    HAS_MOVED = "has_moved"
    SUSPENDED = "suspended"
    NOT_ACCEPTING = "not_accepting"
    MAILBOX_FULL = "mailbox_full"
    SYSTEM_FULL = "system_full"
    MESSAGE_TOO_BIG = "message_too_big"
    EXCEED_LIMIT = "exceed_limit"
    BLOCKED = "blocked"
    BAD_REPUTATION = "bad_reputation"
    REQUIRE_PTR = "require_ptr"
    AUTH_FAILURE = "auth_failure"
    SENDER_REJECTED = "sender_rejected"
    NO_RELAYING = "no_relaying"
    SPAM_DETECTED = "spam_detected"
    VIRUS_DETECTED = "virus_detected"
    CONTENT_ERROR = "content_error"
    FILTERED = "filtered"
    POLICY_VIOLATION = "policy_violation"
    SECURITY_ERROR = "security_error"
    NOT_COMPLIANT_RFC = "not_compliant_rfc"
    FAILED_STARTTLS = "failed_starttls"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    NETWORK_ERROR = "network_error"
    EXPIRED = "expired"
    SYSTEM_ERROR = "system_error"
    MAILER_ERROR = "mailer_error"
    SYNTAX_ERROR = "syntax_error"
    SUPPRESSED = "suppressed"
    ON_HOLD = "on_hold"
    UNDETERMINED = "undetermined"
    FEEDBACK = "feedback"
    AUTO_REPLY = "auto_reply"
    DELIVERED = "delivered"


class Category(StrEnum):
    """What the user sees. ``label`` and ``advice`` give the words."""

    UNKNOWN_USER = "unknown_user"
    INVALID_DOMAIN = "invalid_domain"
    MAILBOX_FULL = "mailbox_full"
    CONTENT = "content"
    SPAM = "spam"
    POLICY = "policy"
    DMARC_UNAUTHORIZED = "dmarc_unauthorized"
    SECURITY_FILTER = "security_filter"
    RECIPIENT_SERVER = "recipient_server"
    TEMPORARY = "temporary"
    OTHER = "other"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    DELIVERED = "delivered"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]

    @property
    def advice(self) -> str:
        return CATEGORY_ADVICE[self]

    @property
    def is_bounce(self) -> bool:
        return self not in (Category.COMPLAINT, Category.AUTO_REPLY, Category.DELIVERED)

    def is_hard(self, permanent: bool) -> bool:
        """Whether a failure of this category is a hard bounce by default (taxonomy section 2)."""
        if self in (Category.UNKNOWN_USER, Category.INVALID_DOMAIN):
            return True
        if self in _HARD_WHEN_PERMANENT:
            return permanent
        return False


_HARD_WHEN_PERMANENT = frozenset({Category.CONTENT, Category.SPAM, Category.POLICY, Category.OTHER})

CATEGORY_LABELS: dict[Category, str] = {
    Category.UNKNOWN_USER: "Unknown user",
    Category.INVALID_DOMAIN: "Invalid domain",
    Category.MAILBOX_FULL: "Mailbox full",
    Category.CONTENT: "Content",
    Category.SPAM: "Spam",
    Category.POLICY: "Policy (includes DMARC, DKIM and SPF failures)",
    Category.DMARC_UNAUTHORIZED: (
        "Your IT team has not authorized this service to send on your behalf"
    ),
    Category.SECURITY_FILTER: "Rejected by the recipient's email security filter",
    Category.RECIPIENT_SERVER: "Temporary technical problem with the recipient's email",
    Category.TEMPORARY: "Temporary technical problem",
    Category.OTHER: "Other (includes global bounces and replies too vague to categorize)",
    Category.COMPLAINT: "Spam report",
    Category.AUTO_REPLY: "Automatic reply",
    Category.DELIVERED: "Delivered",
}

CATEGORY_ADVICE: dict[Category, str] = {
    Category.UNKNOWN_USER: (
        "The address does not exist (or no longer does). Remove it or ask the contact for a new "
        "address; sending again will only bounce and hurt your reputation."
    ),
    Category.INVALID_DOMAIN: (
        "The domain does not exist or receives no mail. Check the address for a typo after the @ "
        "and correct it, or remove the contact."
    ),
    Category.MAILBOX_FULL: (
        "The contact's mailbox is full. Nothing to do on your side: clone the email and send it "
        "again later to the affected contacts."
    ),
    Category.CONTENT: (
        "The recipient's server refused the content (size, format, attachment or a filter). "
        "Review the email: shrink attachments, fix broken links or markup, then send it again."
    ),
    Category.SPAM: (
        "The recipient's server judged the email to be spam. Review the content and links, ask the "
        "contact to add the sending IP addresses to their allowlist, then unbounce them."
    ),
    Category.POLICY: (
        "The recipient's server refused the email by policy (sender reputation, SPF, DKIM, DMARC "
        "or a block list). Ask the contact to add the sending IP addresses to their allowlist, "
        "then unbounce them."
    ),
    Category.DMARC_UNAUTHORIZED: (
        "Your domain's DMARC policy does not authorize this service to send for you. Ask your IT "
        "team to add the service to your SPF record and publish its DKIM key, then send again."
    ),
    Category.SECURITY_FILTER: (
        "The recipient's email security filter held the email back for now. Ask the contact to "
        "add the sending IP addresses to their allowlist, then clone the email and send it again."
    ),
    Category.RECIPIENT_SERVER: (
        "The recipient's mail server had a temporary problem. Clone the email and send it again "
        "later to the affected contacts."
    ),
    Category.TEMPORARY: (
        "A temporary technical problem stopped delivery. Clone the email and send it again later "
        "to the affected contacts."
    ),
    Category.OTHER: (
        "The recipient's server refused the email without a clear reason. Check the server's "
        "response; if the address is right, ask the contact to allowlist you, then unbounce them."
    ),
    Category.COMPLAINT: (
        "The contact reported the email as spam. They will not receive marketing email again; "
        "make sure everyone on your list asked to hear from you."
    ),
    Category.AUTO_REPLY: "An automatic reply (such as out of office). Nothing to do.",
    Category.DELIVERED: "The email was delivered.",
}


# Reason -> category when the failure is permanent, and when it is temporary. Reasons that are not
# bounces map to their own category either way. Written as one table so that the whole mapping of
# taxonomy section 2 can be read at a glance.
_CATEGORY_BY_REASON: dict[Reason, tuple[Category, Category]] = {
    # reason:                    (when permanent,          when temporary)
    Reason.USER_UNKNOWN: (Category.UNKNOWN_USER, Category.UNKNOWN_USER),
    Reason.HAS_MOVED: (Category.UNKNOWN_USER, Category.UNKNOWN_USER),
    Reason.SUSPENDED: (Category.UNKNOWN_USER, Category.RECIPIENT_SERVER),
    Reason.HOST_UNKNOWN: (Category.INVALID_DOMAIN, Category.INVALID_DOMAIN),
    Reason.NOT_ACCEPTING: (Category.INVALID_DOMAIN, Category.INVALID_DOMAIN),
    Reason.MAILBOX_FULL: (Category.MAILBOX_FULL, Category.MAILBOX_FULL),
    Reason.CONTENT_ERROR: (Category.CONTENT, Category.SECURITY_FILTER),
    Reason.VIRUS_DETECTED: (Category.CONTENT, Category.SECURITY_FILTER),
    Reason.FILTERED: (Category.CONTENT, Category.SECURITY_FILTER),
    Reason.MESSAGE_TOO_BIG: (Category.CONTENT, Category.SECURITY_FILTER),
    Reason.EXCEED_LIMIT: (Category.CONTENT, Category.SECURITY_FILTER),
    Reason.NOT_COMPLIANT_RFC: (Category.CONTENT, Category.SECURITY_FILTER),
    Reason.SPAM_DETECTED: (Category.SPAM, Category.SECURITY_FILTER),
    Reason.POLICY_VIOLATION: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.SECURITY_ERROR: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.AUTH_FAILURE: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.REQUIRE_PTR: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.BAD_REPUTATION: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.BLOCKED: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.SENDER_REJECTED: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.NO_RELAYING: (Category.POLICY, Category.SECURITY_FILTER),
    Reason.SYSTEM_ERROR: (Category.RECIPIENT_SERVER, Category.RECIPIENT_SERVER),
    Reason.SYSTEM_FULL: (Category.RECIPIENT_SERVER, Category.RECIPIENT_SERVER),
    Reason.NETWORK_ERROR: (Category.RECIPIENT_SERVER, Category.RECIPIENT_SERVER),
    Reason.EXPIRED: (Category.RECIPIENT_SERVER, Category.RECIPIENT_SERVER),
    Reason.TOO_MANY_CONNECTIONS: (Category.RECIPIENT_SERVER, Category.RECIPIENT_SERVER),
    Reason.FAILED_STARTTLS: (Category.RECIPIENT_SERVER, Category.RECIPIENT_SERVER),
    Reason.RATE_LIMITED: (Category.TEMPORARY, Category.TEMPORARY),
    Reason.SYNTAX_ERROR: (Category.TEMPORARY, Category.TEMPORARY),
    Reason.MAILER_ERROR: (Category.TEMPORARY, Category.TEMPORARY),
    Reason.ON_HOLD: (Category.OTHER, Category.TEMPORARY),
    Reason.UNDETERMINED: (Category.OTHER, Category.TEMPORARY),
    Reason.SUPPRESSED: (Category.OTHER, Category.OTHER),
    Reason.FEEDBACK: (Category.COMPLAINT, Category.COMPLAINT),
    Reason.AUTO_REPLY: (Category.AUTO_REPLY, Category.AUTO_REPLY),
    Reason.DELIVERED: (Category.DELIVERED, Category.DELIVERED),
}


def categorize(
    reason: Reason, permanent: bool, *, has_code: bool = True, sender_dmarc: bool = False
) -> Category:
    """The category of a failure (taxonomy section 2).

    ``has_code`` is False when neither a reply code nor a status code was found: on_hold and
    undetermined without a code are temporary problems. ``sender_dmarc`` is True when an
    auth_failure is the sender's own DMARC policy failing (a sender-side problem).
    """
    if reason is Reason.AUTH_FAILURE and sender_dmarc:
        return Category.DMARC_UNAUTHORIZED
    if reason in (Reason.ON_HOLD, Reason.UNDETERMINED) and not has_code:
        return Category.TEMPORARY
    when_permanent, when_temporary = _CATEGORY_BY_REASON[reason]
    return when_permanent if permanent else when_temporary


# Reasons that describe a message that is not a bounce at all.
NOT_BOUNCES = frozenset({Reason.FEEDBACK, Reason.AUTO_REPLY, Reason.DELIVERED})


# When a failure carries no enhanced status code at all (old MTAs, free-text notices),
# bounceback derives one so that every failed recipient has a status to sort and filter on:
# class 5 or 4 from permanence, subject 0 ("other or undefined"), and a detail from this table
# in the 900-999 range, which RFC 3463 and the IANA registry leave unassigned under X.0. The
# numbering follows the one Sisimai uses for the same purpose, so that results can be compared;
# a derived code is always marked as such (RecipientResult.status_derived), never passed off as
# the server's.
DERIVED_STATUS_DETAIL: dict[Reason, int] = {
    Reason.UNDETERMINED: 900,
    Reason.ON_HOLD: 901,
    Reason.SYNTAX_ERROR: 902,
    Reason.SUPPRESSED: 903,
    Reason.NO_RELAYING: 909,
    Reason.FILTERED: 910,
    Reason.USER_UNKNOWN: 911,
    Reason.HOST_UNKNOWN: 912,
    Reason.HAS_MOVED: 916,
    Reason.SENDER_REJECTED: 918,
    Reason.SUSPENDED: 921,
    Reason.MAILBOX_FULL: 922,
    Reason.EXCEED_LIMIT: 923,
    Reason.SYSTEM_ERROR: 930,
    Reason.SYSTEM_FULL: 931,
    Reason.NOT_ACCEPTING: 932,
    Reason.MESSAGE_TOO_BIG: 934,
    Reason.MAILER_ERROR: 939,
    Reason.NETWORK_ERROR: 944,
    Reason.TOO_MANY_CONNECTIONS: 945,
    Reason.RATE_LIMITED: 946,
    Reason.EXPIRED: 947,
    Reason.CONTENT_ERROR: 960,
    Reason.NOT_COMPLIANT_RFC: 961,
    Reason.SECURITY_ERROR: 970,
    Reason.BLOCKED: 971,
    Reason.POLICY_VIOLATION: 972,
    Reason.REQUIRE_PTR: 973,
    Reason.AUTH_FAILURE: 974,
    Reason.BAD_REPUTATION: 975,
    Reason.FAILED_STARTTLS: 976,
    Reason.SPAM_DETECTED: 980,
    Reason.VIRUS_DETECTED: 981,
}


def derived_status(reason: Reason, permanent: bool) -> str:
    """The status code bounceback derives for a failure that carried none ("" for non-bounces)."""
    detail = DERIVED_STATUS_DETAIL.get(reason)
    if detail is None:
        return ""
    return f"{5 if permanent else 4}.0.{detail}"
