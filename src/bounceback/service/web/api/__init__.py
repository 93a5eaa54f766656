"""The JSON API, mounted under ``/api`` by ``app.create_app``; its OpenAPI document is
``/api/openapi.json``.

Every route takes the caller (``deps.api_account``) and passes the caller's account id to the
domain functions, which answer NotFound for another account's objects: a 404, exactly like a
missing object, so no route reveals what other accounts hold (``tests/service/test_security.py``
walks every route to hold this). Errors are ``{"error": {"status": ..., "message": ...}}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bounceback.service.web.schemas import ErrorResponse

from . import account, alerts, bounces, contacts, mailboxes, sends, sequences

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key, or a revoked or unknown one."},
    404: {"model": ErrorResponse, "description": "No such object in this account."},
    422: {"model": ErrorResponse, "description": "The request is not valid; the message says why."},
}

router = APIRouter(responses=_ERRORS)
for _module in (account, contacts, sends, bounces, alerts, mailboxes, sequences):
    router.include_router(_module.router)

TAGS: list[dict[str, Any]] = [
    {"name": "account", "description": "Who the credentials belong to."},
    {"name": "contacts", "description": "Contacts, their CSV import, timeline and unbounce."},
    {"name": "emails", "description": "Marketing emails."},
    {"name": "sends", "description": "Sends of an email to contacts: progress and recipients."},
    {
        "name": "bounces",
        "description": "Raw bounce intake, bounce events with their explanation, raw download.",
    },
    {"name": "suppressions", "description": "Addresses this account will not send to."},
    {
        "name": "alerts",
        "description": "Sender-side problems, with the DNS check of a DMARC alert's domain.",
    },
    {"name": "mailbox", "description": "Your own mailbox (IMAP and SMTP), for one-to-one email."},
    {
        "name": "one-to-one email",
        "description": "Email to a contact from a user's own mailbox; send again later.",
    },
    {"name": "sequences", "description": "Steps sent from a user's mailbox, in one thread."},
]
