"""One-to-one email from the user's own mailbox, "send again later", and sequences.

Who sends: a logged-in user sends from their own mailbox; an API key names an account, so its
requests name the user whose mailbox sends (``user_id``, a user of the same account).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import EnrollmentState, User
from bounceback.service.domain import contacts, direct, sequences
from bounceback.service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from bounceback.service.web.deps import DB, AppSettings, Caller, Paging, Principal, page
from bounceback.service.web.schemas import ErrorResponse, Page

router = APIRouter()

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Not possible now; the message says why."}
}
_SENDER = Field(
    None,
    description="With an API key: the user whose mailbox sends (required). A logged-in user "
    "sends from their own mailbox.",
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DirectIn(BaseModel):
    subject: str = Field(max_length=900)
    body: str = Field(max_length=direct.MAX_BODY, description="Plain text.")
    user_id: int | None = _SENDER


class DirectOut(_Out):
    id: int
    contact_id: int
    mailbox_id: int | None
    enrollment_id: int | None
    to_address: str
    subject: str
    body: str
    message_id: str = Field(description="Our own Message-ID, as the message carried it.")
    in_reply_to: str
    status: str = Field(description="sending, sent, bounced, failed or retried")
    bounce_category: str
    bounce_response: str
    retry_at: datetime | None = Field(description='"Send again later": when.')
    sent_at: datetime


class RetryIn(BaseModel):
    at: datetime = Field(description="When to send it again (with a time zone; UTC if none).")


class StepIn(BaseModel):
    subject: str = Field(
        "", max_length=900, description='Empty after step 1: "Re: " and step 1\'s subject.'
    )
    body: str = Field(max_length=direct.MAX_BODY)
    delay_seconds: int = Field(
        0, ge=0, description="After the previous step was sent (step 1: after enrolment)."
    )


class SequenceIn(BaseModel):
    name: str = Field(max_length=200)
    steps: list[StepIn] = Field(min_length=1, max_length=sequences.MAX_STEPS)


class StepOut(_Out):
    position: int
    delay_seconds: int
    subject: str
    body: str


class SequenceOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    steps: list[StepOut]
    enrollments: dict[str, int] = Field(description="How many enrollments are in each state.")


class EnrollIn(BaseModel):
    contact_id: int
    user_id: int | None = _SENDER


class EnrollmentOut(_Out):
    id: int
    sequence_id: int
    contact_id: int
    user_id: int
    state: EnrollmentState
    next_position: int
    next_step_at: datetime | None
    thread_message_id: str
    created_at: datetime
    ended_at: datetime | None
    ended_reason: str


class UnenrollIn(BaseModel):
    reason: str = Field("unenrolled by a user", max_length=2000)


def sender(db: Session, caller: Principal, user_id: int | None) -> int:
    """The user whose mailbox sends, for this caller."""
    if caller.via == "session" and caller.user_id is not None:
        if user_id not in (None, caller.user_id):
            raise Forbidden("you can send only from your own mailbox")
        return caller.user_id
    if user_id is None:
        raise Invalid("with an API key, name the user whose mailbox sends: user_id")
    user = db.get(User, user_id)
    if user is None or user.account_id != caller.account_id or not user.is_active:
        raise NotFound("no such user")
    return user.id


def _sequence_out(db: Session, account_id: int, sequence_id: int) -> SequenceOut:
    sequence = sequences.get_sequence(db, account_id, sequence_id)
    return SequenceOut(
        id=sequence.id,
        name=sequence.name,
        created_at=sequence.created_at,
        steps=[StepOut.model_validate(s) for s in sequences.steps_of(db, sequence.id)],
        enrollments=sequences.state_counts(db, account_id, sequence.id),
    )


# --- one-to-one email -------------------------------------------------------------------------


@router.post(
    "/contacts/{contact_id}/emails",
    status_code=201,
    tags=["one-to-one email"],
    summary="Send an email to a contact from your mailbox",
    description="Sent now through the sender's own SMTP server, with our own Message-ID, and "
    "logged on the contact's timeline. `status` is `sent`, or `bounced` when the server refused "
    "the recipient. 409 when the sender has no mailbox, or when their server could not be used "
    "(the message is kept as `failed`, and can be sent again later).",
    responses=_CONFLICT,
)
def send_email(
    contact_id: int,
    body: DirectIn,
    *,
    caller: Caller,
    db: DB,
    settings: AppSettings,
    request: Request,
) -> DirectOut:
    contacts.get_contact(db, caller.account_id, contact_id)  # another account's: 404 first
    user_id = sender(db, caller, body.user_id)
    # The send commits its own steps (the message is stored before the server is asked): the
    # request's session must hold no write (an API key's use is recorded) while it does.
    db.commit()
    factory: sessionmaker[Session] = request.app.state.factory
    row = direct.send_now(
        factory,
        settings,
        caller.account_id,
        user_id,
        contact_id,
        subject=body.subject,
        body=body.body,
    )
    if row.status == direct.FAILED:
        raise Conflict(
            f"not sent: {row.bounce_response}. It is kept as email {row.id}, which can be sent "
            f"again later (POST /api/direct/{row.id}/retry)"
        )
    return DirectOut.model_validate(row)


@router.get(
    "/contacts/{contact_id}/emails",
    tags=["one-to-one email"],
    summary="A contact's one-to-one emails and sequence steps, newest first",
)
def contact_emails(contact_id: int, caller: Caller, db: DB, paging: Paging) -> Page[DirectOut]:
    rows, total = direct.for_contact(db, caller.account_id, contact_id, paging.limit, paging.offset)
    items: list[Any] = [DirectOut.model_validate(r) for r in rows]
    return Page[DirectOut](**page(items, total, paging.limit, paging.offset))


@router.get("/direct/{direct_id}", tags=["one-to-one email"], summary="A one-to-one email")
def get_email(direct_id: int, caller: Caller, db: DB) -> DirectOut:
    return DirectOut.model_validate(direct.get_direct(db, caller.account_id, direct_id))


@router.post(
    "/direct/{direct_id}/retry",
    tags=["one-to-one email"],
    summary="Send a bounced email again later",
    description="Schedules a new send of the same message (a new Message-ID) at `at`, from the "
    "same mailbox. Only a bounced or failed email; scheduling again moves the time.",
    responses=_CONFLICT,
)
def retry_email(direct_id: int, body: RetryIn, caller: Caller, db: DB) -> DirectOut:
    row = direct.retry_later(db, caller.account_id, direct_id, body.at)
    return DirectOut.model_validate(row)


# --- sequences --------------------------------------------------------------------------------


@router.post("/sequences", status_code=201, tags=["sequences"], summary="Create a sequence")
def create_sequence(body: SequenceIn, caller: Caller, db: DB) -> SequenceOut:
    steps = [sequences.StepInput(s.subject, s.body, s.delay_seconds) for s in body.steps]
    sequence = sequences.create_sequence(db, caller.account_id, body.name, steps)
    return _sequence_out(db, caller.account_id, sequence.id)


@router.get("/sequences", tags=["sequences"], summary="Sequences, newest first")
def list_sequences(caller: Caller, db: DB, paging: Paging) -> Page[SequenceOut]:
    rows, total = sequences.list_sequences(db, caller.account_id, paging.limit, paging.offset)
    items: list[Any] = [_sequence_out(db, caller.account_id, s.id) for s in rows]
    return Page[SequenceOut](**page(items, total, paging.limit, paging.offset))


@router.get("/sequences/{sequence_id}", tags=["sequences"], summary="A sequence and its steps")
def get_sequence(sequence_id: int, caller: Caller, db: DB) -> SequenceOut:
    return _sequence_out(db, caller.account_id, sequence_id)


@router.post(
    "/sequences/{sequence_id}/enrollments",
    status_code=201,
    tags=["sequences"],
    summary="Enroll a contact",
    description="Its steps leave from the sender's mailbox. 409 when the contact bounced in this "
    "account or globally (the message names the reason: account_bounce or global_bounce), is "
    "enrolled in this sequence already, or the sender has no mailbox.",
    responses=_CONFLICT,
)
def enroll(sequence_id: int, body: EnrollIn, caller: Caller, db: DB) -> EnrollmentOut:
    sequences.get_sequence(db, caller.account_id, sequence_id)  # another account's: 404 first
    contacts.get_contact(db, caller.account_id, body.contact_id)
    user_id = sender(db, caller, body.user_id)
    row = sequences.enroll(db, caller.account_id, sequence_id, body.contact_id, user_id)
    return EnrollmentOut.model_validate(row)


@router.get(
    "/sequences/{sequence_id}/enrollments",
    tags=["sequences"],
    summary="A sequence's enrollments, newest first",
)
def sequence_enrollments(
    sequence_id: int, caller: Caller, db: DB, paging: Paging
) -> Page[EnrollmentOut]:
    rows, total = sequences.list_enrollments(
        db, caller.account_id, sequence_id=sequence_id, limit=paging.limit, offset=paging.offset
    )
    items: list[Any] = [EnrollmentOut.model_validate(r) for r in rows]
    return Page[EnrollmentOut](**page(items, total, paging.limit, paging.offset))


@router.get(
    "/contacts/{contact_id}/enrollments",
    tags=["sequences"],
    summary="A contact's enrollments, newest first",
)
def contact_enrollments(
    contact_id: int, caller: Caller, db: DB, paging: Paging
) -> Page[EnrollmentOut]:
    rows, total = sequences.list_enrollments(
        db, caller.account_id, contact_id=contact_id, limit=paging.limit, offset=paging.offset
    )
    items: list[Any] = [EnrollmentOut.model_validate(r) for r in rows]
    return Page[EnrollmentOut](**page(items, total, paging.limit, paging.offset))


@router.post(
    "/enrollments/{enrollment_id}/unenroll",
    tags=["sequences"],
    summary="Unenroll a contact",
    description="No further step is sent. An enrollment that has ended already is unchanged.",
)
def unenroll(
    enrollment_id: int, caller: Caller, db: DB, body: UnenrollIn | None = None
) -> EnrollmentOut:
    why = body.reason if body is not None else "unenrolled by a user"
    row = sequences.unenroll(db, caller.account_id, enrollment_id, EnrollmentState.STOPPED, why)
    return EnrollmentOut.model_validate(row)
