"""The server-rendered web UI: login, dashboard, contacts, sends, suppressions, bounces, help and
the sandbox outbox.

Every page but /login needs a logged-in user and shows only that user's account: objects are
looked up with functions that take the account id, and another account's object is a 404 page,
exactly like a missing one. Every form POST carries a CSRF token (``csrf.py``). Pages work without
JavaScript. The app (``app.py``) provides ``app.state.settings``, ``app.state.factory`` and
Starlette's SessionMiddleware.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session, sessionmaker

from bounceback.core.taxonomy import Category
from bounceback.service.db.models import (
    Account,
    DeliveryState,
    OutboxMessage,
    Role,
    SuppressionReason,
    User,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, contacts, guardrails, resend, sending, suppression
from bounceback.service.domain.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from bounceback.service.settings import Settings
from bounceback.service.web import csrf, display, reads
from bounceback.service.web.throttle import LoginThrottle

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(_HERE / "templates"))
TEMPLATES.env.filters["when"] = display.when
TEMPLATES.env.filters["percent"] = display.percent
TEMPLATES.env.filters["sentence"] = display.sentence
TEMPLATES.env.globals.update(
    category_label=display.category_label,
    bounce_type=display.bounce_type,
    state_label=display.state_label,
    not_sent_label=display.not_sent_label,
    suppression_label=display.suppression_label,
)

PER_PAGE = 50
RAW_SHOWN = 256 * 1024  # bytes of a raw message shown inline; the download has all of it
_USER_KEY = "user_id"
_FLASH_KEY = "flash"
_NAV = (
    ("/", "Dashboard", "dashboard"),
    ("/sends", "Sends", "sends"),
    ("/contacts", "Contacts", "contacts"),
    ("/suppressions", "Suppressions", "suppressions"),
    ("/sequences", "Sequences", "sequences"),  # views_inbox.py
    ("/mailbox", "Mailbox", "mailbox"),
    ("/help/categories", "Bounce categories", "help"),
)
_HEADERS = {
    # No script, no frame, no form to elsewhere: an injected tag could do little.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Recipients tab filter: value -> the states it shows (the empty value: everyone handed over).
_STATUS_FILTERS: dict[str, tuple[str, list[DeliveryState]]] = {
    "": (
        "All",
        [s for s in DeliveryState if s is not DeliveryState.NOT_SENT],
    ),
    "delivered": ("Delivered", [DeliveryState.DELIVERED]),
    "sent": ("Sent (no news yet)", [DeliveryState.SENT]),
    "pending": ("Pending (deferred)", [DeliveryState.PENDING]),
    "bounced": ("Bounced", [DeliveryState.BOUNCED_HARD, DeliveryState.BOUNCED_SOFT]),
    "bounced_hard": ("Hard bounces", [DeliveryState.BOUNCED_HARD]),
    "bounced_soft": ("Soft bounces", [DeliveryState.BOUNCED_SOFT]),
    "queued": ("Queued", [DeliveryState.QUEUED]),
}


class LoginRequired(Exception):
    """No (active) user in this session: the page redirects to /login."""


@dataclass(frozen=True)
class Viewer:
    """The logged-in user, as pages need it."""

    user_id: int
    account_id: int
    email: str
    name: str
    role: Role
    account_name: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


# --- plumbing ---------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.factory
    return factory


@contextmanager
def _db(request: Request) -> Iterator[Session]:
    with transaction(_factory(request)) as session:
        yield session


def _flash(request: Request, message: str) -> None:
    """A one-time message shown on the next page rendered."""
    request.session[_FLASH_KEY] = message


def _viewer(request: Request, session: Session) -> Viewer:
    user_id = request.session.get(_USER_KEY)
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.is_active:
        request.session.pop(_USER_KEY, None)  # or /login would send a stale session back here
        raise LoginRequired
    account = session.get(Account, user.account_id)
    viewer = Viewer(
        user_id=user.id,
        account_id=user.account_id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        account_name=account.name if account else "",
    )
    request.state.viewer = viewer  # so that an error page can still show the navigation
    return viewer


def _render(
    request: Request,
    name: str,
    *,
    status_code: int = 200,
    active: str = "",
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    token = csrf.token(request)
    context.update(
        viewer=getattr(request.state, "viewer", None),
        settings=_settings(request),
        nav=_NAV,
        active=active,
        csrf_field=Markup(f'<input type="hidden" name="{csrf.FIELD}" value="{token}">'),
        flash=request.session.pop(_FLASH_KEY, None),
    )
    return TEMPLATES.TemplateResponse(
        request, name, context, status_code=status_code, headers={**_HEADERS, **(headers or {})}
    )


def _error(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return _render(request, "error.html", status_code=status, title=title, message=message)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def html_page(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turn what a view raises into pages: no login -> /login, a bad CSRF token -> 403, a domain
    refusal -> its status (NotFound -> 404) with the domain's message."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        try:
            return view(*args, **kwargs)
        except LoginRequired:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return _redirect("/login?" + urlencode({"next": target}))
        except csrf.CsrfFailed as exc:
            return _error(request, 403, "Form refused", str(exc))
        except NotFound as exc:
            return _error(request, 404, "Not found", exc.message)
        except DomainError as exc:
            return _error(request, exc.status, "Not possible", exc.message)

    return wrapper


def _url(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (empty values dropped)."""
    params = dict(request.query_params)
    params.update({k: str(v) for k, v in changes.items()})
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return request.url.path + (f"?{query}" if query else "")


def _safe_next(target: str) -> str:
    """Only a path on this site (no //host, no scheme): the login form is no open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# --- login ------------------------------------------------------------------------------------


@router.get("/login")
@html_page
def login_form(request: Request, next_url: str = Query("/", alias="next")) -> Response:
    if isinstance(request.session.get(_USER_KEY), int):
        return _redirect(_safe_next(next_url))
    return _render(request, "login.html", next=_safe_next(next_url), email="", error="")


@router.post("/login")
@html_page
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next_url: str = Form("/", alias="next"),
    csrf_token: str = Form(""),
) -> Response:
    csrf.verify(request, csrf_token)
    by_address, by_client = _throttles(request)
    address = f"address:{email.strip().lower()}"
    client = f"client:{request.client.host if request.client else ''}"
    wait = max(by_address.retry_after(address), by_client.retry_after(client))
    if wait:
        minutes = -(-wait // 60)
        return _render(
            request,
            "login.html",
            status_code=429,
            headers={"Retry-After": str(wait)},
            next=_safe_next(next_url),
            email=email,
            error=f"Too many failed logins: try again in {minutes} minute(s).",
        )
    with _db(request) as session:
        user = accounts.authenticate(session, email, password)
        user_id = user.id if user is not None else None
    if user_id is None:
        by_address.failed(address)
        by_client.failed(client)
        return _render(
            request,
            "login.html",
            next=_safe_next(next_url),
            email=email,
            error="Wrong email address or password.",
        )
    by_address.succeeded(address)
    csrf.renew(request)  # a new session id: nothing learnt before login stays valid
    request.session[_USER_KEY] = user_id
    return _redirect(_safe_next(next_url))


_THROTTLE_LOCK = threading.Lock()


def _throttles(request: Request) -> tuple[LoginThrottle, LoginThrottle]:
    """This app's login throttles: per address (guessing one password) and per client
    (trying one password on many addresses), made on first use."""
    state = request.app.state
    with _THROTTLE_LOCK:
        throttles: tuple[LoginThrottle, LoginThrottle] | None = getattr(
            state, "login_throttles", None
        )
        if throttles is None:
            throttles = (LoginThrottle(limit=10), LoginThrottle(limit=50))
            state.login_throttles = throttles
    return throttles


@router.post("/logout")
@html_page
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    csrf.verify(request, csrf_token)
    csrf.renew(request)
    return _redirect("/login")


# --- dashboard --------------------------------------------------------------------------------


@router.get("/")
@html_page
def dashboard(request: Request) -> Response:
    with _db(request) as session:
        viewer = _viewer(request, session)
        totals = reads.account_progress(session, viewer.account_id)
        recent, _ = sending.list_sends(session, viewer.account_id, limit=5)
        rows = [(s, sending.progress(session, viewer.account_id, s.id)) for s in recent]
        alerts = reads.open_alerts(session, viewer.account_id)
        return _render(
            request, "dashboard.html", active="dashboard", totals=totals, sends=rows, alerts=alerts
        )


# --- contacts ---------------------------------------------------------------------------------


@router.get("/contacts")
@html_page
def contact_list(request: Request, q: str = "", page: str = "1") -> Response:
    number = display.page_number(page)
    with _db(request) as session:
        viewer = _viewer(request, session)
        items, total = contacts.search_contacts(
            session, viewer.account_id, q, limit=PER_PAGE, offset=(number - 1) * PER_PAGE
        )
        return _render(
            request,
            "contacts.html",
            active="contacts",
            contacts=items,
            q=q,
            pager=display.Pager(number, PER_PAGE, total),
            page_url=lambda n: _url(request, page=n),
        )


def _contact_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    contact_id: int,
    *,
    status: int = 200,
    error: str = "",
    note: str = "",
) -> HTMLResponse:
    contact = contacts.get_contact(session, viewer.account_id, contact_id)
    active_rows = suppression.active_suppressions(session, viewer.account_id, contact.email)
    liftable = any(
        row.reason is SuppressionReason.HARD_BOUNCE and row.account_id == viewer.account_id
        for row in active_rows
    )
    return _render(
        request,
        "contact.html",
        status_code=status,
        active="contacts",
        contact=contact,
        not_sent=suppression.not_sent_reason(session, viewer.account_id, contact.email),
        suppressions=active_rows,
        liftable=liftable,
        timeline=contacts.timeline(session, viewer.account_id, contact.id),
        events=reads.contact_events(session, viewer.account_id, contact.id),
        error=error,
        note=note,
    )


@router.get("/contacts/{contact_id:int}")
@html_page
def contact_detail(request: Request, contact_id: int) -> Response:
    with _db(request) as session:
        viewer = _viewer(request, session)
        return _contact_page(request, session, viewer, contact_id)


@router.post("/contacts/{contact_id:int}/unbounce")
@html_page
def contact_unbounce(
    request: Request, contact_id: int, note: str = Form(""), csrf_token: str = Form("")
) -> Response:
    csrf.verify(request, csrf_token)
    refused: DomainError | None = None
    try:
        with _db(request) as session:  # its own transaction: a refusal changes nothing
            viewer = _viewer(request, session)
            suppression.unbounce(session, viewer.account_id, contact_id, viewer.user_id, note)
    except (Forbidden, Invalid, Conflict) as exc:
        refused = exc
    if refused is None:
        _flash(request, "The contact was unbounced; the note is in the audit trail.")
        return _redirect(f"/contacts/{contact_id}")
    with _db(request) as session:
        viewer = _viewer(request, session)
        return _contact_page(
            request,
            session,
            viewer,
            contact_id,
            status=refused.status,
            error=refused.message,
            note=note,
        )


# --- sends ------------------------------------------------------------------------------------


@router.get("/sends")
@html_page
def send_list(request: Request, page: str = "1") -> Response:
    number = display.page_number(page)
    with _db(request) as session:
        viewer = _viewer(request, session)
        items, total = sending.list_sends(
            session, viewer.account_id, limit=PER_PAGE, offset=(number - 1) * PER_PAGE
        )
        rows = [(s, sending.progress(session, viewer.account_id, s.id)) for s in items]
        return _render(
            request,
            "sends.html",
            active="sends",
            sends=rows,
            pager=display.Pager(number, PER_PAGE, total),
            page_url=lambda n: _url(request, page=n),
        )


@router.get("/sends/{send_id:int}")
@html_page
def send_detail(
    request: Request, send_id: int, tab: str = "recipients", status: str = "", page: str = "1"
) -> Response:
    number = display.page_number(page)
    tab = "not_sent" if tab == "not_sent" else "recipients"
    status = status if status in _STATUS_FILTERS else ""
    states = [DeliveryState.NOT_SENT] if tab == "not_sent" else _STATUS_FILTERS[status][1]
    with _db(request) as session:
        viewer = _viewer(request, session)
        send = sending.get_send(session, viewer.account_id, send_id)
        rows, total = sending.recipients(
            session,
            viewer.account_id,
            send_id,
            states=states,
            limit=PER_PAGE,
            offset=(number - 1) * PER_PAGE,
        )
        return _render(
            request,
            "send.html",
            active="sends",
            send=send,
            progress=sending.progress(session, viewer.account_id, send_id),
            tab=tab,
            status_filter=status,
            filters=[(value, label) for value, (label, _) in _STATUS_FILTERS.items()],
            rows=rows,
            events=reads.latest_events(session, viewer.account_id, [d.id for d in rows]),
            pager=display.Pager(number, PER_PAGE, total),
            page_url=lambda n: _url(request, page=n),
            **_send_links(session, viewer, send.id),
        )


def _send_links(session: Session, viewer: Viewer, send_id: int) -> dict[str, Any]:
    """What the send page shows around the recipients: the send it resends, its resends, how
    many a resend to soft-bounced would reach, and what the viewer may do with it."""
    send = sending.get_send(session, viewer.account_id, send_id)
    original = (
        sending.get_send(session, viewer.account_id, send.resend_of_id)
        if send.resend_of_id
        else None
    )
    return {
        "original": original,
        "resends": resend.resends_of(session, viewer.account_id, send_id),
        "resend_eligible": resend.eligible_count(session, viewer.account_id, send_id),
        "can_control": viewer.is_admin,
    }


@router.post("/sends/{send_id:int}/resend")
@html_page
def send_resend(
    request: Request,
    send_id: int,
    *,
    subject: str = Form(""),
    html: str = Form(""),
    text: str = Form(""),
    scheduled_at: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    """Resend to soft-bounced: the form is prefilled with the original, so what it posts is the
    clone's content; an empty time sends now."""
    csrf.verify(request, csrf_token)
    when = _form_time(scheduled_at)
    with _db(request) as session:
        viewer = _viewer(request, session)
        created = resend.resend_soft_bounced(
            session,
            viewer.account_id,
            send_id,
            subject=subject,
            html=html,
            text=text,
            scheduled_at=when,
            created_by_id=viewer.user_id,
        )
        count = sending.progress(session, viewer.account_id, created.id).queued
        new_id = created.id
    later = f" It goes out at {display.when(when)}." if when else ""
    _flash(request, f"Resending to {count} soft-bounced recipient(s).{later}")
    return _redirect(f"/sends/{new_id}")


def _form_time(value: str) -> datetime | None:
    """A datetime-local field's value, read as UTC (the form says so); empty: now."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"not a date and time: {value.strip()[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/sends/{send_id:int}/pause")
@html_page
def send_pause(request: Request, send_id: int, csrf_token: str = Form("")) -> Response:
    return _control(request, send_id, csrf_token, "pause")


@router.post("/sends/{send_id:int}/resume")
@html_page
def send_resume(request: Request, send_id: int, csrf_token: str = Form("")) -> Response:
    return _control(request, send_id, csrf_token, "resume")


@router.post("/sends/{send_id:int}/cancel")
@html_page
def send_cancel(request: Request, send_id: int, csrf_token: str = Form("")) -> Response:
    return _control(request, send_id, csrf_token, "cancel")


_CONTROLS: dict[str, tuple[Callable[[Session, int, int], Any], str]] = {
    "pause": (guardrails.pause_send, "The send is paused."),
    "resume": (guardrails.resume_send, "The send is resumed: its remaining recipients are sent."),
    "cancel": (
        guardrails.cancel_send,
        "The send is cancelled: its remaining recipients are in the Not sent tab.",
    ),
}


def _control(request: Request, send_id: int, token: str, action: str) -> Response:
    """Pause, resume or cancel a send: administrators only."""
    csrf.verify(request, token)
    control, done = _CONTROLS[action]
    with _db(request) as session:
        viewer = _viewer(request, session)
        if not viewer.is_admin:
            raise Forbidden(f"only an administrator can {action} a send")
        control(session, viewer.account_id, send_id)
    _flash(request, done)
    return _redirect(f"/sends/{send_id}")


# --- suppressions and bounces -----------------------------------------------------------------


@router.get("/suppressions")
@html_page
def suppression_list(request: Request, q: str = "", page: str = "1") -> Response:
    number = display.page_number(page)
    with _db(request) as session:
        viewer = _viewer(request, session)
        rows, total = suppression.list_suppressions(
            session, viewer.account_id, q, limit=PER_PAGE, offset=(number - 1) * PER_PAGE
        )
        return _render(
            request,
            "suppressions.html",
            active="suppressions",
            rows=rows,
            q=q,
            contact_ids=reads.contact_ids(session, viewer.account_id, [r.email for r in rows]),
            pager=display.Pager(number, PER_PAGE, total),
            page_url=lambda n: _url(request, page=n),
        )


@router.get("/bounces/{event_id:int}")
@html_page
def bounce_detail(request: Request, event_id: int) -> Response:
    with _db(request) as session:
        viewer = _viewer(request, session)
        event, raw = reads.bounce_event(session, viewer.account_id, event_id)
        text, cut = display.decode_raw(raw.raw, RAW_SHOWN)
        return _render(
            request,
            "bounce.html",
            event=event,
            raw=raw,
            raw_text=text,
            raw_cut=cut,
            explanation=display.explain(raw.raw, event.email),
            contact_ids=reads.contact_ids(session, viewer.account_id, [event.email]),
        )


# --- help and the sandbox outbox --------------------------------------------------------------


@router.get("/help/categories")
@html_page
def help_categories(request: Request) -> Response:
    with _db(request) as session:
        _viewer(request, session)
    categories = [
        (c, c.label, display.CATEGORY_MEANING[c], c.advice, display.default_hardness(c))
        for c in Category
    ]
    return _render(
        request,
        "help_categories.html",
        active="help",
        categories=categories,
        sending_ips=_settings(request).sending_ips,
    )


@dataclass(frozen=True)
class _OutboxRow:
    message: OutboxMessage
    subject: str
    text: str


def _outbox_row(message: OutboxMessage) -> _OutboxRow:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(message.raw)
    text, _ = display.decode_raw(message.raw, RAW_SHOWN)
    return _OutboxRow(message=message, subject=str(headers.get("Subject", "")), text=text)


@router.get("/outbox")
@html_page
def outbox(request: Request, page: str = "1") -> Response:
    number = display.page_number(page)
    with _db(request) as session:
        viewer = _viewer(request, session)
        if not _settings(request).is_sandbox:
            raise NotFound("the outbox exists only in the sandbox, when no relay is configured")
        rows, total = reads.outbox(session, viewer.account_id, limit=20, offset=(number - 1) * 20)
        return _render(
            request,
            "outbox.html",
            active="outbox",
            rows=[_outbox_row(m) for m in rows],
            pager=display.Pager(number, 20, total),
            page_url=lambda n: _url(request, page=n),
        )
