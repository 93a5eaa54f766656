"""Words and small data shapes for the web UI's pages (no I/O, no database).

The labels and the advice of categories come from ``bounceback.core.taxonomy`` (one source for
the CLI, the API and the UI); this module only adds what a page needs around them: what a
category means in plain words, how a delivery's state reads, why a contact was not sent to, and
the explanation of one classification read back from the stored raw message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bounceback import parse
from bounceback.core.report import RecipientResult
from bounceback.core.taxonomy import Category
from bounceback.service.db.models import (
    DeliveryState,
    NotSentReason,
    SuppressionReason,
)

# What each category means, for the help page (the label says what; this says why).
CATEGORY_MEANING: dict[Category, str] = {
    Category.UNKNOWN_USER: (
        "The recipient's server says the mailbox does not exist: the address was mistyped, "
        "the person left, or the mailbox was closed or has moved."
    ),
    Category.INVALID_DOMAIN: (
        "The part after the @ does not exist or accepts no email at all, so no address on it "
        "can receive your messages."
    ),
    Category.MAILBOX_FULL: (
        "The mailbox exists but is over its storage quota; it can receive email again once "
        "its owner makes room."
    ),
    Category.CONTENT: (
        "The recipient's server refused this email for what it contains: its size, format, an "
        "attachment, a link or a word its filters do not accept."
    ),
    Category.SPAM: "The recipient's server (or its spam filter) judged the email to be spam.",
    Category.POLICY: (
        "The recipient's server refused the email by its own rules: the sending IP address or "
        "domain is on a block list, has a poor reputation, or failed SPF, DKIM or DMARC checks."
    ),
    Category.DMARC_UNAUTHORIZED: (
        "The From address is on your own domain, and your domain's DMARC policy does not list "
        "this service as allowed to send for it. This is about your settings, not the contact."
    ),
    Category.SECURITY_FILTER: (
        "A security filter in front of the recipient's mailbox (often a corporate gateway) held "
        "the email back for now, for its content, its links or the sender's reputation."
    ),
    Category.RECIPIENT_SERVER: (
        "The recipient's mail server was down, misconfigured, out of space or unreachable, and "
        "could not take the email in time."
    ),
    Category.TEMPORARY: (
        "Delivery failed for a passing reason, such as sending too fast for the recipient's "
        "server; it may well work later."
    ),
    Category.OTHER: (
        "The recipient's server refused the email without saying why clearly enough to "
        "categorize it; global bounces (addresses that bounce for many senders) are here too."
    ),
    Category.COMPLAINT: (
        'The contact pressed "Report spam" (or similar) in their mailbox, and their provider '
        "told us. Not a bounce."
    ),
    Category.AUTO_REPLY: (
        "An automatic answer such as an out-of-office notice: the email was delivered. "
        "Not a bounce."
    ),
    Category.DELIVERED: "The recipient's server confirmed that it delivered the email.",
}

STATE_LABELS: dict[DeliveryState, str] = {
    DeliveryState.QUEUED: "Queued",
    DeliveryState.SENT: "Sent",
    DeliveryState.DELIVERED: "Delivered",
    DeliveryState.PENDING: "Pending (deferred, retrying)",
    DeliveryState.BOUNCED_HARD: "Hard bounce",
    DeliveryState.BOUNCED_SOFT: "Soft bounce",
    DeliveryState.NOT_SENT: "Not sent",
}

NOT_SENT_LABELS: dict[NotSentReason, str] = {
    NotSentReason.ACCOUNT_BOUNCE: "Bounced in this account",
    NotSentReason.GLOBAL_BOUNCE: "Bounced globally",
    NotSentReason.UNSUBSCRIBED: "Unsubscribed",
    NotSentReason.COMPLAINED: "Complained",
    NotSentReason.INVALID_ADDRESS: "Invalid address",
    NotSentReason.CANCELLED: "The send was cancelled",
}

SUPPRESSION_LABELS: dict[SuppressionReason, str] = {
    SuppressionReason.HARD_BOUNCE: "Bounced in this account",
    SuppressionReason.GLOBAL_BOUNCE: "Bounced globally",
    SuppressionReason.COMPLAINT: "Complained",
    SuppressionReason.UNSUBSCRIBE: "Unsubscribed",
}


def category_label(value: str) -> str:
    """The label of a stored category value ("" when empty, the value itself when unknown)."""
    if not value:
        return ""
    try:
        return Category(value).label
    except ValueError:
        return value


def bounce_type(state: DeliveryState | str, category: str) -> str:
    """How the Recipients tab names a failure: "Hard bounce – Unknown user" and the like."""
    label = category_label(category)
    prefix = {
        DeliveryState.BOUNCED_HARD: "Hard bounce",
        DeliveryState.BOUNCED_SOFT: "Soft bounce",
        DeliveryState.PENDING: "Deferred",
    }.get(DeliveryState(state))
    if prefix is None:
        return ""
    return f"{prefix} – {label}" if label else prefix


def state_label(state: DeliveryState | str) -> str:
    return STATE_LABELS.get(DeliveryState(state), str(state))


def not_sent_label(reason: NotSentReason | str | None) -> str:
    if not reason:
        return ""
    return NOT_SENT_LABELS.get(NotSentReason(reason), str(reason))


def suppression_label(reason: SuppressionReason | str) -> str:
    return SUPPRESSION_LABELS.get(SuppressionReason(reason), str(reason))


def when(value: datetime | None) -> str:
    """A timestamp as the pages show it, in UTC (SQLite hands back naive UTC datetimes)."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def sentence(text: str) -> str:
    """A domain message ("no such contact") as a sentence ("No such contact.")."""
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


@dataclass(frozen=True)
class Explanation:
    """Why the parser classified one recipient of a raw message the way it did."""

    detector: str
    kind: str
    result: RecipientResult | None
    problems: tuple[str, ...]

    @property
    def category_label(self) -> str:
        return self.result.category.label if self.result else ""

    @property
    def advice(self) -> str:
        return self.result.category.advice if self.result else ""

    @property
    def permanence(self) -> str:
        if self.result is None:
            return ""
        return "Permanent (5xx / 5.x.x)" if self.result.permanent else "Temporary (4xx / 4.x.x)"

    @property
    def hardness(self) -> str:
        if self.result is None or not self.result.category.is_bounce:
            return ""
        return "Hard bounce" if self.result.hard else "Soft bounce"


def explain(raw: bytes, address: str) -> Explanation:
    """Parse ``raw`` again (the parser is pure and fast) and pick the result for ``address``,
    so the explanation always matches the stored message, even after a parser upgrade."""
    report = parse(raw)
    wanted = address.strip().lower()
    result = next((r for r in report.recipients if r.address.lower() == wanted), None)
    if result is None and report.recipients:
        result = report.recipients[0]
    problems = tuple(f"{p.code}: {p.detail}" for p in report.problems)
    return Explanation(
        detector=report.detector, kind=report.kind.value, result=result, problems=problems
    )


def decode_raw(raw: bytes, limit: int) -> tuple[str, bool]:
    """The raw message as text for a <pre> (escaped by the template), cut at ``limit`` bytes."""
    cut = len(raw) > limit
    return raw[:limit].decode("utf-8", errors="replace"), cut


def default_hardness(category: Category) -> str:
    """What a failure of this category is by default (taxonomy section 2), in words."""
    if category is Category.DMARC_UNAUTHORIZED:
        return "Soft bounce, counted against no contact: an alert for you instead"
    if not category.is_bounce:
        if category is Category.COMPLAINT:
            return "Not a bounce; the contact gets no more marketing email"
        return "Not a bounce"
    if category.is_hard(False):
        return "Hard bounce: the address is suppressed"
    if category.is_hard(True):
        return "Hard bounce when permanent (suppressed), soft when temporary"
    return "Soft bounce: the contact stays eligible"


@dataclass(frozen=True)
class Pager:
    """One page of a list: which rows to fetch and which page links to show."""

    page: int
    per_page: int
    total: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_row(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_row(self) -> int:
        return min(self.total, self.offset + self.per_page)


def page_number(value: str | None) -> int:
    """A page number from the query string; anything odd is page 1 (never an error page)."""
    try:
        number = int(value or "1")
    except ValueError:
        return 1
    return min(max(number, 1), 1_000_000)
