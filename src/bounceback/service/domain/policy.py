"""Per-account bounce policy: taxonomy section 3 as defaults, overridable per account.

``Account.policy`` is a JSON object with any of the keys below; what it leaves out takes the
default. The policy says what the service does; what a bounce *is* comes from the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bounceback.core.taxonomy import Category
from bounceback.service.domain.errors import Invalid

# Categories whose hard bounces suppress the address in the account (the taxonomy's hard ones).
DEFAULT_SUPPRESS = frozenset(
    {
        Category.UNKNOWN_USER.value,
        Category.INVALID_DOMAIN.value,
        Category.CONTENT.value,
        Category.SPAM.value,
        Category.POLICY.value,
        Category.OTHER.value,
    }
)
# Only these count towards a global bounce: the address itself is gone, whoever sends.
GLOBAL_CATEGORIES = frozenset({Category.UNKNOWN_USER.value, Category.INVALID_DOMAIN.value})
# Sender-side: counted against no contact; the account gets an alert instead.
SENDER_SIDE_CATEGORIES = frozenset({Category.DMARC_UNAUTHORIZED.value})
# Refusals that, when many recipients at one provider get them in one send, say more about the
# sender (its IP addresses, domain or authentication) than about the contacts.
PROVIDER_BLOCK_CATEGORIES = frozenset(
    {
        Category.POLICY.value,
        Category.SECURITY_FILTER.value,
        Category.DMARC_UNAUTHORIZED.value,
    }
)
# An account cannot lift these (the address does not exist); nor global bounces.
NOT_LIFTABLE = frozenset({Category.UNKNOWN_USER.value, Category.INVALID_DOMAIN.value})


@dataclass(frozen=True)
class Policy:
    suppress_categories: frozenset[str] = DEFAULT_SUPPRESS
    soft_to_hard_count: int = 5  # this many soft bounces ...
    soft_to_hard_days: int = 30  # ... within this many days, with no delivery between: hard
    global_accounts: int = 3  # hard bounces in this many accounts ...
    global_days: int = 60  # ... within this many days: a global bounce
    unbounce_every_days: int = 30  # a contact can be unbounced at most once in this period
    retry_hours: int = 72  # a temporary failure is retried this long, then a soft bounce
    # Guardrails: a send pauses itself when, after this many were sent, its hard-bounce rate or
    # its complaint rate passes these percentages (taxonomy section 3).
    pause_after_sent: int = 100
    pause_hard_bounce_percent: float = 5.0
    pause_complaint_percent: float = 0.1
    # A provider refusing the sender: at least this many policy, security-filter or DMARC bounces
    # in one send at one receiving provider, and at least this share of the send's recipients
    # there, are the sender's problem: nobody is suppressed for them, the account is alerted.
    provider_block_min_bounces: int = 10
    provider_block_min_percent: float = 20.0
    # Bounces of one-to-one and sequence email found in users' own mailboxes (domain/inbox.py)
    # suppress the contact from marketing email too only when this is set.
    inbox_bounces_suppress: bool = False

    def suppresses(self, category: str, hard: bool) -> bool:
        return hard and category in self.suppress_categories


def policy_for(settings: dict[str, Any] | None) -> Policy:
    """The policy of an account from its JSON settings (unknown keys are ignored)."""
    values: dict[str, Any] = {}
    for field in fields(Policy):
        if settings and field.name in settings:
            value = settings[field.name]
            values[field.name] = _typed(field.name, value)
    return Policy(**values)


def _typed(name: str, value: Any) -> Any:
    if name == "suppress_categories":
        return frozenset(value)
    if name in _FLAGS:
        return bool(value)
    return float(value) if name in _PERCENTS else int(value)


_LIMITS = {
    "soft_to_hard_count": (1, 100),
    "soft_to_hard_days": (1, 365),
    "global_accounts": (2, 100),
    "global_days": (1, 365),
    "unbounce_every_days": (0, 365),
    "retry_hours": (1, 168),
    "pause_after_sent": (1, 1_000_000),
    "provider_block_min_bounces": (1, 1_000_000),
}
# Switches: true or false.
_FLAGS = frozenset({"inbox_bounces_suppress"})
# Percentages: any number from 0 to 100 (fractions allowed: 0.1 is one in a thousand).
_PERCENTS = frozenset(
    {"pause_hard_bounce_percent", "pause_complaint_percent", "provider_block_min_percent"}
)


def as_dict(policy: Policy) -> dict[str, Any]:
    values = {field.name: getattr(policy, field.name) for field in fields(Policy)}
    values["suppress_categories"] = sorted(policy.suppress_categories)
    return values


def validated(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes to an account's policy, checked: known keys, known categories, sane numbers.
    Raises Invalid with a message that names the key."""
    out: dict[str, Any] = {}
    bounce_categories = {c.value for c in Category if c.is_bounce}
    for key, value in changes.items():
        if key == "suppress_categories":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise Invalid("suppress_categories: a list of category names")
            unknown = set(value) - bounce_categories
            if unknown:
                raise Invalid(f"suppress_categories: unknown categories {sorted(unknown)}")
            out[key] = sorted(set(value))
        elif key in _FLAGS:
            if not isinstance(value, bool):
                raise Invalid(f"{key}: true or false")
            out[key] = value
        elif key in _PERCENTS:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not 0 <= value <= 100:
                raise Invalid(f"{key}: a percentage from 0 to 100")
            out[key] = float(value)
        elif key in _LIMITS:
            low, high = _LIMITS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise Invalid(f"{key}: a whole number from {low} to {high}")
            out[key] = value
        else:
            raise Invalid(f"unknown policy setting {key!r}")
    return out
