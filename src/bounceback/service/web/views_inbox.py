"""Web UI pages for a user's own mailbox: connect it and see its health, write to a contact from
it (and send a bounced email again later), and sequences with their enrollments.

The same rules as ``views.py``: a logged-in user, only their account's objects (another
account's is a 404 page), a CSRF token on every form, no JavaScript needed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from bounceback.service.db.models import EnrollmentState, MailboxSecurity, utcnow
from bounceback.service.domain import contacts, direct, mailboxes, sequences
from bounceback.service.domain.errors import Conflict, DomainError, Invalid
from bounceback.service.web import csrf
from bounceback.service.web.views import (
    _db,
    _factory,
    _flash,
    _redirect,
    _render,
    _safe_next,
    _settings,
    _viewer,
    html_page,
)

router = APIRouter(include_in_schema=False)

STEP_ROWS = 5  # step rows of the new-sequence form (empty ones are left out)
RETRY_CHOICES = (("1", "in 1 hour"), ("4", "in 4 hours"), ("24", "tomorrow"), ("72", "in 3 days"))
DELAY_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
FormList = Annotated[list[str] | None, Form()]  # a field repeated once per step row


# --- the mailbox ------------------------------------------------------------------------------


def _mailbox_page(
    request: Request,
    session: Session,
    *,
    status: int = 200,
    error: str = "",
    form: dict[str, Any] | None = None,
) -> Response:
    viewer = _viewer(request, session)
    mailbox = mailboxes.get_mailbox(session, viewer.account_id, viewer.user_id)
    values = form or _form_values(mailbox, viewer.email)
    return _render(
        request,
        "inbox_mailbox.html",
        status_code=status,
        active="mailbox",
        mailbox=mailbox,
        values=values,
        error=error,
        securities=[s.value for s in MailboxSecurity],
    )


def _form_values(mailbox: Any, default_address: str) -> dict[str, Any]:
    if mailbox is None:
        return {
            "address": default_address,
            "imap_host": "",
            "imap_port": 993,
            "imap_security": "tls",
            "imap_login": default_address,
            "smtp_host": "",
            "smtp_port": 587,
            "smtp_security": "starttls",
            "smtp_login": default_address,
            "bounce_folder": "",
        }
    return {
        "address": mailbox.address,
        "imap_host": mailbox.imap_host,
        "imap_port": mailbox.imap_port,
        "imap_security": mailbox.imap_security,
        "imap_login": mailbox.imap_login,
        "smtp_host": mailbox.smtp_host,
        "smtp_port": mailbox.smtp_port,
        "smtp_security": mailbox.smtp_security,
        "smtp_login": mailbox.smtp_login,
        "bounce_folder": mailbox.bounce_folder,
    }


@router.get("/mailbox")
@html_page
def mailbox_page(request: Request) -> Response:
    with _db(request) as session:
        return _mailbox_page(request, session)


def _port(value: str, side: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"{side}: the port must be a number") from None


def _security(value: str, side: str) -> MailboxSecurity:
    try:
        return MailboxSecurity(value)
    except ValueError:
        raise Invalid(f"{side}: choose TLS, STARTTLS or none") from None


@router.post("/mailbox")
@html_page
def mailbox_connect(
    request: Request,
    *,
    address: str = Form(""),
    imap_host: str = Form(""),
    imap_port: str = Form(""),
    imap_security: str = Form("tls"),
    imap_login: str = Form(""),
    imap_password: str = Form(""),
    smtp_host: str = Form(""),
    smtp_port: str = Form(""),
    smtp_security: str = Form("starttls"),
    smtp_login: str = Form(""),
    smtp_password: str = Form(""),
    bounce_folder: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    csrf.verify(request, csrf_token)
    values = {
        "address": address,
        "imap_host": imap_host,
        "imap_port": imap_port,
        "imap_security": imap_security,
        "imap_login": imap_login,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "smtp_login": smtp_login,
        "bounce_folder": bounce_folder,
    }
    try:
        form = mailboxes.MailboxForm(
            imap=mailboxes.Endpoint(
                imap_host,
                _port(imap_port, "IMAP"),
                _security(imap_security, "IMAP"),
                imap_login,
                imap_password,
            ),
            smtp=mailboxes.Endpoint(
                smtp_host,
                _port(smtp_port, "SMTP"),
                _security(smtp_security, "SMTP"),
                smtp_login,
                smtp_password,
            ),
            address=address,
            bounce_folder=bounce_folder,
        )
        with _db(request) as session:  # its own transaction: a failed check stores nothing
            viewer = _viewer(request, session)
            mailboxes.connect(session, viewer.account_id, viewer.user_id, form, _settings(request))
    except Invalid as exc:
        with _db(request) as session:
            return _mailbox_page(request, session, status=422, error=exc.message, form=values)
    _flash(request, "Your mailbox is connected: both servers answered and accepted the login.")
    return _redirect("/mailbox")


@router.post("/mailbox/disconnect")
@html_page
def mailbox_disconnect(request: Request, csrf_token: str = Form("")) -> Response:
    csrf.verify(request, csrf_token)
    with _db(request) as session:
        viewer = _viewer(request, session)
        mailboxes.disconnect(session, viewer.account_id, viewer.user_id)
    _flash(request, "Your mailbox is disconnected and its passwords are forgotten.")
    return _redirect("/mailbox")


# --- writing to a contact ---------------------------------------------------------------------


def _contact_email_page(
    request: Request,
    session: Session,
    contact_id: int,
    *,
    status: int = 200,
    error: str = "",
    subject: str = "",
    body: str = "",
) -> Response:
    viewer = _viewer(request, session)
    contact = contacts.get_contact(session, viewer.account_id, contact_id)
    sent, _ = direct.for_contact(session, viewer.account_id, contact.id, limit=100)
    enrolled, _ = sequences.list_enrollments(
        session, viewer.account_id, contact_id=contact.id, limit=100
    )
    all_sequences, _ = sequences.list_sequences(session, viewer.account_id, limit=200)
    names = {s.id: s.name for s in all_sequences}
    return _render(
        request,
        "inbox_contact.html",
        status_code=status,
        active="contacts",
        contact=contact,
        mailbox=mailboxes.get_mailbox(session, viewer.account_id, viewer.user_id),
        messages=sent,
        enrollments=enrolled,
        sequences=all_sequences,
        sequence_names=names,
        retry_choices=RETRY_CHOICES,
        error=error,
        subject=subject,
        body=body,
    )


@router.get("/contacts/{contact_id:int}/email")
@html_page
def contact_email(request: Request, contact_id: int) -> Response:
    with _db(request) as session:
        return _contact_email_page(request, session, contact_id)


@router.post("/contacts/{contact_id:int}/email")
@html_page
def contact_email_send(
    request: Request,
    contact_id: int,
    subject: str = Form(""),
    body: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    csrf.verify(request, csrf_token)
    with _db(request) as session:  # read only: the send commits its own steps
        viewer = _viewer(request, session)
        contacts.get_contact(session, viewer.account_id, contact_id)
    refused: DomainError | None = None
    try:
        row = direct.send_now(
            _factory(request),
            _settings(request),
            viewer.account_id,
            viewer.user_id,
            contact_id,
            subject=subject,
            body=body,
        )
    except (Invalid, Conflict) as exc:
        refused = exc
    if refused is not None:
        with _db(request) as session:
            return _contact_email_page(
                request,
                session,
                contact_id,
                status=refused.status,
                error=refused.message,
                subject=subject,
                body=body,
            )
    outcomes = {
        direct.SENT: "Sent from your mailbox.",
        direct.BOUNCED: f"Your server refused the recipient: {row.bounce_response}",
        direct.FAILED: f"Not sent: {row.bounce_response}",
    }
    _flash(request, outcomes.get(row.status, row.status))
    return _redirect(f"/contacts/{contact_id}/email")


@router.post("/direct/{direct_id:int}/retry")
@html_page
def direct_retry(
    request: Request, direct_id: int, hours: str = Form("24"), csrf_token: str = Form("")
) -> Response:
    csrf.verify(request, csrf_token)
    if hours not in dict(RETRY_CHOICES):
        raise Invalid("choose when to send it again")
    with _db(request) as session:
        viewer = _viewer(request, session)
        row = direct.retry_later(
            session, viewer.account_id, direct_id, utcnow() + timedelta(hours=int(hours))
        )
        contact_id = row.contact_id
    _flash(request, f"It will be sent again {dict(RETRY_CHOICES)[hours]}.")
    return _redirect(f"/contacts/{contact_id}/email")


@router.post("/contacts/{contact_id:int}/enroll")
@html_page
def contact_enroll(
    request: Request, contact_id: int, sequence_id: str = Form(""), csrf_token: str = Form("")
) -> Response:
    csrf.verify(request, csrf_token)
    refused: DomainError | None = None
    try:
        with _db(request) as session:
            viewer = _viewer(request, session)
            contacts.get_contact(session, viewer.account_id, contact_id)
            if not sequence_id.isdigit():
                raise Invalid("choose a sequence")
            sequences.enroll(
                session, viewer.account_id, int(sequence_id), contact_id, viewer.user_id
            )
    except (Invalid, Conflict) as exc:
        refused = exc
    if refused is not None:
        with _db(request) as session:
            return _contact_email_page(
                request, session, contact_id, status=refused.status, error=refused.message
            )
    _flash(request, "Enrolled: the first step leaves from your mailbox at its time.")
    return _redirect(f"/contacts/{contact_id}/email")


@router.post("/enrollments/{enrollment_id:int}/unenroll")
@html_page
def enrollment_unenroll(
    request: Request,
    enrollment_id: int,
    next_url: str = Form("/sequences", alias="next"),
    csrf_token: str = Form(""),
) -> Response:
    csrf.verify(request, csrf_token)
    with _db(request) as session:
        viewer = _viewer(request, session)
        sequences.unenroll(
            session,
            viewer.account_id,
            enrollment_id,
            EnrollmentState.STOPPED,
            f"unenrolled by {viewer.email}",
        )
    _flash(request, "Unenrolled: no further step will be sent.")
    return _redirect(_safe_next(next_url))


# --- sequences --------------------------------------------------------------------------------


def _sequences_page(
    request: Request,
    session: Session,
    *,
    status: int = 200,
    error: str = "",
    form: dict[str, Any] | None = None,
) -> Response:
    viewer = _viewer(request, session)
    rows, _ = sequences.list_sequences(session, viewer.account_id, limit=200)
    return _render(
        request,
        "inbox_sequences.html",
        status_code=status,
        active="sequences",
        rows=[(s, sequences.state_counts(session, viewer.account_id, s.id)) for s in rows],
        step_rows=range(1, STEP_ROWS + 1),
        units=list(DELAY_UNITS),
        form=form or {},
        error=error,
    )


@router.get("/sequences")
@html_page
def sequence_list(request: Request) -> Response:
    with _db(request) as session:
        return _sequences_page(request, session)


def _steps_from(
    subjects: list[str], bodies: list[str], delays: list[str], units: list[str]
) -> list[sequences.StepInput]:
    """The filled rows of the form, in order (rows with neither subject nor body are left out)."""
    steps: list[sequences.StepInput] = []
    for number in range(min(len(subjects), len(bodies), STEP_ROWS)):
        subject, body = subjects[number], bodies[number]
        if not subject.strip() and not body.strip():
            continue
        amount = (delays[number] if number < len(delays) else "").strip() or "0"
        unit = DELAY_UNITS.get(units[number] if number < len(units) else "days", 86400)
        try:
            delay = round(float(amount) * unit)
        except (ValueError, OverflowError):
            raise Invalid(f"step {len(steps) + 1}: the delay must be a number") from None
        steps.append(sequences.StepInput(subject, body, delay))
    return steps


@router.post("/sequences")
@html_page
def sequence_create(
    request: Request,
    *,
    name: str = Form(""),
    subject: FormList = None,
    body: FormList = None,
    delay: FormList = None,
    unit: FormList = None,
    csrf_token: str = Form(""),
) -> Response:
    csrf.verify(request, csrf_token)
    subject, body, delay, unit = subject or [], body or [], delay or [], unit or []
    refused: DomainError | None = None
    created_id = 0
    try:
        with _db(request) as session:
            viewer = _viewer(request, session)
            steps = _steps_from(subject, body, delay, unit)
            created_id = sequences.create_sequence(session, viewer.account_id, name, steps).id
    except Invalid as exc:
        refused = exc
    if refused is not None:
        form = {"name": name, "subject": subject, "body": body, "delay": delay, "unit": unit}
        with _db(request) as session:
            return _sequences_page(request, session, status=422, error=refused.message, form=form)
    _flash(request, "The sequence is created: enroll contacts from their page.")
    return _redirect(f"/sequences/{created_id}")


@router.get("/sequences/{sequence_id:int}")
@html_page
def sequence_detail(request: Request, sequence_id: int) -> Response:
    with _db(request) as session:
        viewer = _viewer(request, session)
        sequence = sequences.get_sequence(session, viewer.account_id, sequence_id)
        rows, total = sequences.list_enrollments(
            session, viewer.account_id, sequence_id=sequence.id, limit=500
        )
        emails = {
            c.id: c.email
            for c in (contacts.get_contact(session, viewer.account_id, r.contact_id) for r in rows)
        }
        return _render(
            request,
            "inbox_sequence.html",
            active="sequences",
            sequence=sequence,
            steps=sequences.steps_of(session, sequence.id),
            enrollments=rows,
            total=total,
            emails=emails,
            counts=sequences.state_counts(session, viewer.account_id, sequence.id),
        )
