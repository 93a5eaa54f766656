"""Contacts: create, search, read, CSV import, timeline, unbounce."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile
from sqlalchemy import func, select

from bounceback.service.db.models import TimelineEntry
from bounceback.service.domain import contacts, suppression
from bounceback.service.domain.errors import Forbidden
from bounceback.service.web.deps import DB, Caller, Paging, page
from bounceback.service.web.schemas import (
    ContactDetail,
    ContactIn,
    ContactOut,
    ErrorResponse,
    ImportOut,
    ImportRowError,
    Page,
    TimelineOut,
    UnbounceIn,
    UnbounceOut,
)

router = APIRouter(tags=["contacts"])


@router.post(
    "/contacts",
    status_code=201,
    summary="Create a contact",
    description="Creates a contact, or updates the name and properties of the contact with this "
    "address (then the answer is 200).",
)
def create_contact(body: ContactIn, caller: Caller, db: DB, response: Response) -> ContactOut:
    existed = contacts.contact_by_email(db, caller.account_id, body.email) is not None
    contact = contacts.create_contact(db, caller.account_id, body.email, body.name, body.properties)
    if existed:
        response.status_code = 200
    return ContactOut.model_validate(contact)


@router.get("/contacts", summary="Search contacts")
def search_contacts(
    caller: Caller,
    db: DB,
    paging: Paging,
    q: Annotated[str, Query(max_length=320, description="Part of the address or name.")] = "",
) -> Page[ContactOut]:
    items, total = contacts.search_contacts(db, caller.account_id, q, paging.limit, paging.offset)
    return Page[ContactOut](
        **page([ContactOut.model_validate(c) for c in items], total, paging.limit, paging.offset)
    )


@router.post(
    "/contacts/import",
    summary="Import contacts from CSV",
    description="A CSV file with a header row: `email` (required), `name`, and any other column "
    "as a property. Bad rows are reported with their line number; the others are imported.",
    responses={413: {"model": ErrorResponse, "description": "The file is too large."}},
)
def import_contacts(
    caller: Caller,
    db: DB,
    file: Annotated[UploadFile, File(description="The CSV file (UTF-8).")],
) -> ImportOut:
    result = contacts.import_csv(db, caller.account_id, file.file.read())
    return ImportOut(
        created=result.created,
        updated=result.updated,
        errors=[ImportRowError(line=line, message=message) for line, message in result.errors],
    )


@router.get("/contacts/{contact_id}", summary="A contact")
def get_contact(contact_id: int, caller: Caller, db: DB) -> ContactDetail:
    contact = contacts.get_contact(db, caller.account_id, contact_id)
    detail = ContactDetail.model_validate(contact)
    detail.not_sent_reason = suppression.not_sent_reason(db, caller.account_id, contact.email)
    return detail


@router.get("/contacts/{contact_id}/timeline", summary="A contact's timeline, newest first")
def contact_timeline(contact_id: int, caller: Caller, db: DB, paging: Paging) -> Page[TimelineOut]:
    entries = contacts.timeline(db, caller.account_id, contact_id, paging.limit, paging.offset)
    total = db.scalar(
        select(func.count())
        .select_from(TimelineEntry)
        .where(
            TimelineEntry.account_id == caller.account_id,
            TimelineEntry.contact_id == contact_id,
        )
    )
    items: list[Any] = [TimelineOut.model_validate(e) for e in entries]
    return Page[TimelineOut](**page(items, total or 0, paging.limit, paging.offset))


@router.post(
    "/contacts/{contact_id}/unbounce",
    summary="Lift a contact's bounce",
    description="Administrators only, logged in to the web UI (an API key cannot unbounce: the "
    "audit trail names a person). A note saying why is required. Global bounces and unknown "
    "user / invalid domain bounces cannot be lifted, nor a contact twice in 30 days.",
    responses={
        403: {"model": ErrorResponse, "description": "Not an administrator's session."},
        409: {"model": ErrorResponse, "description": "Nothing to lift, or lifted recently."},
    },
)
def unbounce(contact_id: int, body: UnbounceIn, caller: Caller, db: DB) -> UnbounceOut:
    contact = contacts.get_contact(db, caller.account_id, contact_id)  # 404 before 403
    if caller.via == "api_key":
        raise Forbidden(
            "an API key cannot unbounce: an administrator must do it while logged in, so that "
            "the audit trail names who lifted the bounce"
        )
    if not caller.is_admin_user or caller.user_id is None:
        raise Forbidden("only an administrator of this account can unbounce a contact")
    row = suppression.unbounce(db, caller.account_id, contact.id, caller.user_id, body.note)
    return UnbounceOut(
        contact_id=contact.id, suppression_id=row.id, lifted_at=row.lifted_at, note=row.lift_note
    )
