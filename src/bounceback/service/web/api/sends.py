"""Marketing emails and their sends: create, start, progress, recipients, not sent; resend to
soft-bounced; pause, resume and cancel (administrators and API keys only)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from sqlalchemy.orm import Session

from bounceback.service.db.models import Delivery, DeliveryState, Send, SendStatus
from bounceback.service.domain import guardrails, resend, sending
from bounceback.service.domain.errors import Forbidden
from bounceback.service.web import display
from bounceback.service.web.deps import DB, Caller, Paging, Principal, page
from bounceback.service.web.schemas import (
    EmailIn,
    EmailOut,
    ErrorResponse,
    NotSentOut,
    Page,
    PauseIn,
    ProgressOut,
    RecipientOut,
    ResendIn,
    SendDetail,
    SendIn,
    SendOut,
)

router = APIRouter()

# Without a state filter the Recipients list shows everyone handed to the relay (or about to
# be); the recipients left out are the Not sent list.
_HANDED: list[DeliveryState] = [s for s in DeliveryState if s is not DeliveryState.NOT_SENT]


@router.post("/emails", status_code=201, tags=["emails"], summary="Create a marketing email")
def create_email(body: EmailIn, caller: Caller, db: DB) -> EmailOut:
    email = sending.create_email(db, caller.account_id, **body.model_dump())
    return EmailOut.model_validate(email)


@router.get("/emails/{email_id}", tags=["emails"], summary="A marketing email")
def get_email(email_id: int, caller: Caller, db: DB) -> EmailOut:
    return EmailOut.model_validate(sending.get_email(db, caller.account_id, email_id))


def _detail(db: Session, account_id: int, send: Send) -> SendDetail:
    progress = sending.progress(db, account_id, send.id)
    return SendDetail(
        **SendOut.model_validate(send).model_dump(),
        progress=ProgressOut(**asdict(progress), bounce_rate=progress.bounce_rate),
        resend_ids=[s.id for s in resend.resends_of(db, account_id, send.id)],
        resend_eligible=resend.eligible_count(db, account_id, send.id),
    )


def _admin_only(caller: Principal, action: str) -> None:
    """Pausing, resuming and cancelling are an administrator's (or the account's API key's)."""
    if caller.via == "session" and not caller.is_admin_user:
        raise Forbidden(f"only an administrator can {action} a send")


_ADMIN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "A member's session: administrators only."},
    409: {"model": ErrorResponse, "description": "The send is not in a state that allows it."},
}


@router.post(
    "/sends",
    status_code=201,
    tags=["sends"],
    summary="Create a send",
    description="A send of an email to contacts (all of the account's when `contact_ids` is "
    "omitted). Suppressed contacts are recorded as not sent, with the reason. The send starts "
    "with POST /api/sends/{id}/start.",
)
def create_send(body: SendIn, caller: Caller, db: DB) -> SendDetail:
    send = sending.create_send(
        db,
        caller.account_id,
        body.email_id,
        contact_ids=body.contact_ids,
        scheduled_at=body.scheduled_at,
        created_by_id=caller.user_id,
    )
    return _detail(db, caller.account_id, send)


@router.post(
    "/sends/{send_id}/start",
    tags=["sends"],
    summary="Start (or resume) a send",
    responses={409: {"model": ErrorResponse, "description": "The send cannot start now."}},
)
def start_send(send_id: int, caller: Caller, db: DB) -> SendDetail:
    if sending.get_send(db, caller.account_id, send_id).status is SendStatus.PAUSED:
        _admin_only(caller, "resume")
    send = sending.start_send(db, caller.account_id, send_id)
    return _detail(db, caller.account_id, send)


@router.post(
    "/sends/{send_id}/pause",
    tags=["sends"],
    summary="Pause a send",
    description="Its remaining deliveries wait until it is resumed or cancelled. Sends also "
    "pause themselves when their hard-bounce or complaint rate passes the account's limits.",
    responses=_ADMIN,
)
def pause_send(
    send_id: int, caller: Caller, db: DB, body: Annotated[PauseIn | None, Body()] = None
) -> SendDetail:
    _admin_only(caller, "pause")
    reason = body.reason if body else ""
    send = guardrails.pause_send(db, caller.account_id, send_id, reason)
    return _detail(db, caller.account_id, send)


@router.post(
    "/sends/{send_id}/resume",
    tags=["sends"],
    summary="Resume a paused send",
    description="Its remaining deliveries are sent; a guardrail that paused it does not pause "
    "it again.",
    responses=_ADMIN,
)
def resume_send(send_id: int, caller: Caller, db: DB) -> SendDetail:
    _admin_only(caller, "resume")
    send = guardrails.resume_send(db, caller.account_id, send_id)
    return _detail(db, caller.account_id, send)


@router.post(
    "/sends/{send_id}/cancel",
    tags=["sends"],
    summary="Cancel a send",
    description="The deliveries not yet handed to the relay become not sent, with the reason "
    "`cancelled`.",
    responses=_ADMIN,
)
def cancel_send(send_id: int, caller: Caller, db: DB) -> SendDetail:
    _admin_only(caller, "cancel")
    send = guardrails.cancel_send(db, caller.account_id, send_id)
    return _detail(db, caller.account_id, send)


@router.post(
    "/sends/{send_id}/resend-soft-bounced",
    status_code=201,
    tags=["sends"],
    summary="Resend to soft-bounced",
    description="Clones the send's email (subject, html and text may be changed) and creates a "
    "send of it to this send's soft-bounced recipients who may still be sent to (not "
    "suppressed or unsubscribed since, not in an earlier resend). It starts at once, or at "
    "`scheduled_at`; with `start: false` it is left a draft. Without a body: the same email, "
    "now. Returns the new send.",
    responses={409: {"model": ErrorResponse, "description": "Nobody to resend to."}},
)
def resend_soft_bounced(
    send_id: int, caller: Caller, db: DB, body: Annotated[ResendIn | None, Body()] = None
) -> SendDetail:
    send = resend.resend_soft_bounced(
        db,
        caller.account_id,
        send_id,
        **(body or ResendIn()).model_dump(),
        created_by_id=caller.user_id,
    )
    return _detail(db, caller.account_id, send)


@router.get("/sends", tags=["sends"], summary="The account's sends, newest first")
def list_sends(caller: Caller, db: DB, paging: Paging) -> Page[SendOut]:
    items, total = sending.list_sends(db, caller.account_id, paging.limit, paging.offset)
    return Page[SendOut](
        **page([SendOut.model_validate(s) for s in items], total, paging.limit, paging.offset)
    )


@router.get("/sends/{send_id}", tags=["sends"], summary="A send with its progress and bounce rate")
def get_send(send_id: int, caller: Caller, db: DB) -> SendDetail:
    return _detail(db, caller.account_id, sending.get_send(db, caller.account_id, send_id))


def _recipient(delivery: Delivery) -> RecipientOut:
    return RecipientOut(
        delivery_id=delivery.id,
        contact_id=delivery.contact_id,
        address=delivery.email,
        state=delivery.state,
        bounce_type=display.bounce_type(delivery.state, delivery.category),
        category=delivery.category,
        category_label=display.category_label(delivery.category),
        reason=delivery.reason,
        response=delivery.response,
        sent_at=delivery.sent_at,
        time=delivery.updated_at,
    )


@router.get(
    "/sends/{send_id}/recipients",
    tags=["sends"],
    summary="A send's recipients (the Recipients tab)",
    description="Filter with one or more `state` parameters; without any, every recipient "
    "handed to the relay (or queued) is listed. The not sent ones are under /not-sent.",
)
def recipients(
    send_id: int,
    caller: Caller,
    db: DB,
    paging: Paging,
    state: Annotated[list[DeliveryState] | None, Query(description="Delivery states.")] = None,
) -> Page[RecipientOut]:
    items, total = sending.recipients(
        db,
        caller.account_id,
        send_id,
        states=state or _HANDED,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page[RecipientOut](
        **page([_recipient(d) for d in items], total, paging.limit, paging.offset)
    )


@router.get(
    "/sends/{send_id}/not-sent",
    tags=["sends"],
    summary="A send's recipients left out, with the reason (the Not sent tab)",
)
def not_sent(send_id: int, caller: Caller, db: DB, paging: Paging) -> Page[NotSentOut]:
    items, total = sending.recipients(
        db,
        caller.account_id,
        send_id,
        states=[DeliveryState.NOT_SENT],
        limit=paging.limit,
        offset=paging.offset,
    )
    rows = [
        NotSentOut(
            delivery_id=d.id,
            contact_id=d.contact_id,
            address=d.email,
            reason=d.not_sent_reason,
            reason_label=display.not_sent_label(d.not_sent_reason),
        )
        for d in items
    ]
    return Page[NotSentOut](**page(rows, total, paging.limit, paging.offset))
