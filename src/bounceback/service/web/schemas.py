"""The JSON API's request and response bodies (they are also the OpenAPI document's schemas).

Responses are built from ORM rows with ``from_attributes``; words shown to people (category
labels, "Hard bounce – Unknown user") come from ``web.display``, the one place the UI uses too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from bounceback.service.db.models import (
    DeliveryState,
    NotSentReason,
    RawStatus,
    SendStatus,
    SuppressionReason,
)

T = TypeVar("T")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, the ``total`` over all pages, and the page asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorDetail(BaseModel):
    location: str
    message: str


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """Every error of the API has this shape."""

    error: ErrorBody


# --- who am I --------------------------------------------------------------------------------


class MeOut(BaseModel):
    account_id: int
    account_name: str
    via: str = Field(description="api_key or session")
    user_email: str | None = None
    role: str | None = None
    csrf_token: str | None = Field(
        None, description="For a browser session: send it as X-CSRF-Token on POST requests."
    )


# --- contacts --------------------------------------------------------------------------------


class ContactIn(BaseModel):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    name: str = Field("", max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)


class ContactOut(Out):
    id: int
    email: str
    name: str
    properties: dict[str, Any]
    hard_bounce_reason: str = Field(description='The "Email hard bounce reason" property.')
    unsubscribed_at: datetime | None
    created_at: datetime


class ContactDetail(ContactOut):
    not_sent_reason: NotSentReason | None = Field(
        None, description="Why a marketing email would not go to this contact now (None: it would)."
    )


class ImportRowError(BaseModel):
    line: int
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    errors: list[ImportRowError]


class TimelineOut(Out):
    id: int
    kind: str
    summary: str
    data: dict[str, Any]
    created_at: datetime


class UnbounceIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000, description="Why the contact is unbounced.")


# --- emails and sends ------------------------------------------------------------------------


class EmailIn(BaseModel):
    from_address: str = Field(max_length=320, examples=["news@example.com"])
    from_name: str = Field("", max_length=200)
    subject: str = Field(max_length=998)
    html: str = ""
    text: str = ""


class EmailOut(Out):
    id: int
    from_address: str
    from_name: str
    subject: str
    html: str
    text: str
    cloned_from_id: int | None = Field(
        None, description="The email this one is a clone of (a resend to soft-bounced)."
    )
    created_at: datetime


class SendIn(BaseModel):
    email_id: int
    contact_ids: list[int] | None = Field(
        None, description="The contacts to send to; omitted: every contact of the account."
    )
    scheduled_at: datetime | None = None


class ProgressOut(BaseModel):
    total: int
    queued: int
    sent: int
    delivered: int
    pending: int
    bounced_hard: int
    bounced_soft: int
    not_sent: int
    complaints: int
    bounce_rate: float = Field(description="Bounced over handed to the relay, 0 to 1.")


class SendOut(Out):
    id: int
    email_id: int
    status: SendStatus
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    pause_reason: str = Field(description="Why the send is (or was) paused.")
    resend_of_id: int | None = Field(
        None, description="The send whose soft-bounced recipients this one resends to."
    )
    created_at: datetime


class SendDetail(SendOut):
    progress: ProgressOut
    resend_ids: list[int] = Field(
        default_factory=list, description="The resends made of this send (see resend_of_id)."
    )
    resend_eligible: int = Field(
        0,
        description="How many soft-bounced recipients a resend to soft-bounced would go to now.",
    )


class ResendIn(BaseModel):
    """A resend to soft-bounced: the email's clone may differ in subject and bodies."""

    subject: str | None = Field(
        default=None, max_length=998, description="Omitted: the original's."
    )
    html: str | None = Field(default=None, description="Omitted: the original's HTML body.")
    text: str | None = Field(default=None, description="Omitted: the original's text body.")
    scheduled_at: datetime | None = Field(default=None, description="Send at this time, not now.")
    start: bool = Field(
        default=True, description="Start it at once (or at scheduled_at); false leaves a draft."
    )


class PauseIn(BaseModel):
    reason: str = Field(default="", max_length=2000, description="Shown on the send's page.")


class RecipientOut(BaseModel):
    delivery_id: int
    contact_id: int
    address: str
    state: DeliveryState
    bounce_type: str = Field(description='For example "Hard bounce – Unknown user".')
    category: str
    category_label: str
    reason: str
    response: str = Field(description="The server's full response.")
    sent_at: datetime | None
    time: datetime = Field(description="When the state last changed.")


class NotSentOut(BaseModel):
    delivery_id: int
    contact_id: int
    address: str
    reason: NotSentReason | None
    reason_label: str


# --- bounces ---------------------------------------------------------------------------------


class RawAccepted(BaseModel):
    id: int
    new: bool = Field(description="False when the same message was received before.")
    status: RawStatus


class RawOut(Out):
    id: int
    status: RawStatus
    source: str
    kind: str
    received_at: datetime
    processed_at: datetime | None
    event_ids: list[int] = Field(default_factory=list)


class BounceOut(Out):
    id: int
    raw_bounce_id: int
    delivery_id: int | None
    contact_id: int | None
    email: str
    kind: str
    reason: str
    category: str
    category_label: str = ""
    permanent: bool
    hard: bool
    status_code: str
    reply_code: str
    diagnostic: str
    remote_mta: str
    rule_id: str
    matched_by: str
    sender_side: bool
    created_at: datetime


class ExplanationOut(BaseModel):
    """How the parser read the stored raw message for this recipient."""

    detector: str
    kind: str
    rule_id: str
    matched: str = Field(description="The text the deciding rule matched.")
    reason: str
    category: str
    category_label: str
    advice: str
    permanent: bool | None
    status: str
    diagnostic: str
    problems: list[str]
    sending_ips: list[str] = Field(
        description="The addresses contacts can allowlist (when the advice asks for it)."
    )


class BounceDetail(BounceOut):
    explanation: ExplanationOut


# --- suppressions ----------------------------------------------------------------------------


class SuppressionOut(BaseModel):
    id: int
    email: str
    scope: str = Field(description="account, or global (bounced in several accounts)")
    reason: SuppressionReason
    reason_label: str
    category: str
    category_label: str
    detail: str = Field(description="The server's response (empty for global suppressions).")
    created_at: datetime


class UnbounceOut(BaseModel):
    contact_id: int
    suppression_id: int
    lifted_at: datetime | None
    note: str
