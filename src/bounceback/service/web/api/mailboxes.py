"""The logged-in user's own mailbox: connect (checked first), read its health, disconnect.

A mailbox belongs to a user, not to an account: an API key (which names an account) is refused
with 403. Passwords are write-only: answers say whether one is stored, never what it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from bounceback.service.db.models import Mailbox, MailboxSecurity
from bounceback.service.domain import mailboxes
from bounceback.service.domain.errors import Forbidden, NotFound
from bounceback.service.web.deps import DB, AppSettings, Caller, Principal
from bounceback.service.web.schemas import ErrorResponse

router = APIRouter(tags=["mailbox"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "Called with an API key."}
}


class EndpointIn(BaseModel):
    host: str = Field(max_length=255, examples=["imap.example.com"])
    port: int = Field(ge=1, le=65535, examples=[993])
    security: MailboxSecurity = Field(
        description="tls (implicit TLS: IMAPS 993, SMTPS 465), starttls, or none (loopback)"
    )
    login: str = Field(max_length=320)
    password: str = Field(
        "",
        max_length=1000,
        description="Empty: keep the stored password (same host, port and login only); for "
        "SMTP with none stored, send without logging in.",
    )


class MailboxIn(BaseModel):
    address: str = Field(
        "", max_length=320, description="The From of your email; empty: your login address."
    )
    imap: EndpointIn
    smtp: EndpointIn
    bounce_folder: str = Field(
        "", max_length=200, description="Move detected bounces there; empty: flag them."
    )


class EndpointOut(BaseModel):
    host: str
    port: int
    security: MailboxSecurity
    login: str
    password_set: bool


class MailboxOut(BaseModel):
    id: int
    address: str
    imap: EndpointOut
    smtp: EndpointOut
    bounce_folder: str
    last_poll_at: datetime | None = Field(description="When the INBOX was last read.")
    last_error: str = Field(description="What went wrong the last time; empty when it worked.")
    created_at: datetime


def mailbox_out(mailbox: Mailbox) -> MailboxOut:
    return MailboxOut(
        id=mailbox.id,
        address=mailbox.address,
        imap=EndpointOut(
            host=mailbox.imap_host,
            port=mailbox.imap_port,
            security=mailbox.imap_security,
            login=mailbox.imap_login,
            password_set=bool(mailbox.imap_password),
        ),
        smtp=EndpointOut(
            host=mailbox.smtp_host,
            port=mailbox.smtp_port,
            security=mailbox.smtp_security,
            login=mailbox.smtp_login,
            password_set=bool(mailbox.smtp_password),
        ),
        bounce_folder=mailbox.bounce_folder,
        last_poll_at=mailbox.last_poll_at,
        last_error=mailbox.last_error,
        created_at=mailbox.created_at,
    )


def _user_id(caller: Principal) -> int:
    if caller.via != "session" or caller.user_id is None:
        raise Forbidden(
            "a mailbox belongs to a user: log in to the web UI to connect yours (an API key "
            "names an account, not a user)"
        )
    return caller.user_id


def _endpoint(given: EndpointIn) -> mailboxes.Endpoint:
    return mailboxes.Endpoint(given.host, given.port, given.security, given.login, given.password)


@router.get("/me/mailbox", summary="Your connected mailbox and its health", responses=_REFUSED)
def get_mailbox(caller: Caller, db: DB) -> MailboxOut:
    mailbox = mailboxes.get_mailbox(db, caller.account_id, _user_id(caller))
    if mailbox is None:
        raise NotFound("no mailbox is connected")
    return mailbox_out(mailbox)


@router.post(
    "/me/mailbox",
    status_code=201,
    summary="Connect your mailbox (or change it)",
    description="Checks both sides before saving: IMAP login and SELECT INBOX, SMTP EHLO (and "
    "STARTTLS) and login when a password is given. A failure is a 422 whose message names the "
    "side (IMAP or SMTP), the step and what the server said. Changing a connected mailbox "
    "answers 200.",
    responses=_REFUSED,
)
def connect_mailbox(
    body: MailboxIn, caller: Caller, db: DB, settings: AppSettings, response: Response
) -> MailboxOut:
    user_id = _user_id(caller)
    existed = mailboxes.get_mailbox(db, caller.account_id, user_id) is not None
    form = mailboxes.MailboxForm(
        imap=_endpoint(body.imap),
        smtp=_endpoint(body.smtp),
        address=body.address,
        bounce_folder=body.bounce_folder,
    )
    mailbox = mailboxes.connect(db, caller.account_id, user_id, form, settings)
    if existed:
        response.status_code = 200
    return mailbox_out(mailbox)


@router.delete(
    "/me/mailbox",
    status_code=204,
    summary="Disconnect your mailbox",
    description="Forgets the servers and passwords; the emails sent from it stay in the history. "
    "Sequence steps due from it stop their enrollment.",
    responses=_REFUSED,
)
def disconnect_mailbox(caller: Caller, db: DB) -> Response:
    mailboxes.disconnect(db, caller.account_id, _user_id(caller))
    return Response(status_code=204)
