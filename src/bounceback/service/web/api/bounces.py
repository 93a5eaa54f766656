"""Bounces: raw intake over HTTP, the account's bounce events with the explanation of their
classification, the raw message download; and the suppression list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from bounceback.core.taxonomy import Category
from bounceback.service.db.models import BounceEvent, Suppression
from bounceback.service.domain import bounces, intake, suppression
from bounceback.service.domain.errors import Invalid
from bounceback.service.settings import Settings
from bounceback.service.web import display, reads
from bounceback.service.web.deps import DB, AppSettings, Caller, Paging, page
from bounceback.service.web.schemas import (
    BounceDetail,
    BounceOut,
    ErrorResponse,
    ExplanationOut,
    Page,
    RawAccepted,
    RawOut,
    SuppressionOut,
)

router = APIRouter()


async def _raw_message(request: Request) -> bytes:
    """The request body as bytes, whatever its content type (the size limit is the app's)."""
    return await request.body()


@router.post(
    "/bounces/raw",
    status_code=202,
    tags=["bounces"],
    summary="Submit a raw bounce message",
    description="The whole message (an NDR, a DSN, an ARF complaint...) as the request body. It "
    "is stored before the answer and processed in the background like a bounce received by "
    "SMTP; it may only affect this account. The same bytes twice are stored once.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={413: {"model": ErrorResponse, "description": "The message is too large."}},
)
def submit_raw(caller: Caller, db: DB, raw: Annotated[bytes, Depends(_raw_message)]) -> RawAccepted:
    if not raw.strip():
        raise Invalid("the request body must be the raw bounce message (message/rfc822)")
    row, new = intake.store_raw(db, raw, source="http", account_id=caller.account_id)
    return RawAccepted(id=row.id, new=new, status=row.status)


@router.get("/bounces/raw/{raw_id}", tags=["bounces"], summary="A submitted raw message's status")
def raw_status(raw_id: int, caller: Caller, db: DB) -> RawOut:
    raw = bounces.get_raw(db, caller.account_id, raw_id)
    out = RawOut.model_validate(raw)
    out.event_ids = bounces.event_ids_of_raw(db, caller.account_id, raw.id)
    return out


def _bounce(event: BounceEvent) -> BounceOut:
    out = BounceOut.model_validate(event)
    out.category_label = display.category_label(event.category)
    return out


@router.get("/bounces", tags=["bounces"], summary="The account's bounce events, newest first")
def list_bounces(
    caller: Caller,
    db: DB,
    paging: Paging,
    *,
    contact_id: Annotated[int | None, Query(description="Only this contact's.")] = None,
    email_id: Annotated[int | None, Query(description="Only sends of this email.")] = None,
    send_id: Annotated[int | None, Query(description="Only this send's.")] = None,
) -> Page[BounceOut]:
    items, total = bounces.list_events(
        db,
        caller.account_id,
        contact_id=contact_id,
        email_id=email_id,
        send_id=send_id,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page[BounceOut](**page([_bounce(e) for e in items], total, paging.limit, paging.offset))


def _explanation(event: BounceEvent, raw: bytes, settings: Settings) -> ExplanationOut:
    """Re-read the stored message (the parser is pure), so the explanation matches what is
    stored; fall back on the event's own fields when the message no longer names the address
    (a rejection during the SMTP transaction, or a parser that changed its mind)."""
    found = display.explain(raw, event.email)
    result = found.result
    if result is not None and result.address.lower() != event.email.lower():
        result = None
    category = result.category.value if result else event.category
    try:
        advice = Category(category).advice
    except ValueError:
        advice = ""
    return ExplanationOut(
        detector=found.detector,
        kind=found.kind,
        rule_id=result.rule_id if result else event.rule_id,
        matched=result.matched if result else "",
        reason=result.reason.value if result else event.reason,
        category=category,
        category_label=display.category_label(category),
        advice=advice,
        permanent=result.permanent if result else event.permanent,
        status=result.status if result else event.status_code,
        diagnostic=result.diagnostic if result else event.diagnostic,
        problems=list(found.problems),
        sending_ips=list(settings.sending_ips),
    )


@router.get(
    "/bounces/{bounce_id}",
    tags=["bounces"],
    summary="A bounce event and the explanation of its classification",
)
def get_bounce(bounce_id: int, caller: Caller, db: DB, settings: AppSettings) -> BounceDetail:
    event, raw = reads.bounce_event(db, caller.account_id, bounce_id)
    return BounceDetail(
        **_bounce(event).model_dump(), explanation=_explanation(event, raw.raw, settings)
    )


@router.get(
    "/bounces/{bounce_id}/raw",
    tags=["bounces"],
    summary="Download the raw message of a bounce",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}, "description": "The message as received."}},
)
def download_raw(bounce_id: int, caller: Caller, db: DB) -> Response:
    event, raw = reads.bounce_event(db, caller.account_id, bounce_id)
    return Response(
        raw.raw,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="bounce-{event.id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _suppression(row: Suppression) -> SuppressionOut:
    is_global = row.account_id is None
    return SuppressionOut(
        id=row.id,
        email=row.email,
        scope="global" if is_global else "account",
        reason=row.reason,
        reason_label=display.suppression_label(row.reason),
        category=row.category,
        category_label=display.category_label(row.category),
        # A global bounce's response came from other accounts' mail: not this account's to see.
        detail="" if is_global else row.detail,
        created_at=row.created_at,
    )


@router.get(
    "/suppressions",
    tags=["suppressions"],
    summary="Addresses this account does not send to (its own and global bounces)",
)
def list_suppressions(
    caller: Caller,
    db: DB,
    paging: Paging,
    q: Annotated[str, Query(max_length=320, description="Part of the address.")] = "",
) -> Page[SuppressionOut]:
    items, total = suppression.list_suppressions(
        db, caller.account_id, q, paging.limit, paging.offset
    )
    rows = [_suppression(r) for r in items]
    return Page[SuppressionOut](**page(rows, total, paging.limit, paging.offset))
