"""Per-account bounce policy: taxonomy section 3 as defaults, overridable per account.

``Account.policy`` is a JSON object with any of the keys below; what it leaves out takes the
default. The policy says what the service does; what a bounce *is* comes from the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bounceback.core.taxonomy import Category

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

    def suppresses(self, category: str, hard: bool) -> bool:
        return hard and category in self.suppress_categories


def policy_for(settings: dict[str, Any] | None) -> Policy:
    """The policy of an account from its JSON settings (unknown keys are ignored)."""
    values: dict[str, Any] = {}
    for field in fields(Policy):
        if settings and field.name in settings:
            value = settings[field.name]
            values[field.name] = (
                frozenset(value) if field.name == "suppress_categories" else int(value)
            )
    return Policy(**values)
