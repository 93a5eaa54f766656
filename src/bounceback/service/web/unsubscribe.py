"""The unsubscribe link of marketing emails: ``/u/<token>``.

GET shows a confirmation page with one button and changes nothing (mail scanners follow links).
POST unsubscribes: it is both that button and RFC 8058 one-click (a mail client posts
``List-Unsubscribe=One-Click``), so it needs no login and no CSRF token: the signed token naming
the delivery is the credential. A bad token is a 404, like any unknown page. The links are made
by ``outbound.message.unsubscribe_url``.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from bounceback.service.domain import unsubscribe, verp
from bounceback.service.domain.errors import NotFound
from bounceback.service.web.deps import DB, AppSettings

PURPOSE = "unsubscribe"
router = APIRouter(include_in_schema=False)

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token must not leak to other sites
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "line-height:1.5}button{font-size:1rem;padding:.5rem 1.25rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _not_found() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)


def _masked(address: str) -> str:
    """j…@example.com: enough to recognise one's own address, little for whoever finds a link."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


@router.get("/u/{token}")
def confirm(token: str, db: DB, settings: AppSettings) -> HTMLResponse:
    delivery_id = verp.verify_token(settings.secret_key, token, purpose=PURPOSE)
    if delivery_id is None:
        return _not_found()
    try:
        target = unsubscribe.target(db, delivery_id)
    except NotFound:
        return _not_found()
    who = escape(target.account_name or "this sender")
    if target.unsubscribed:
        return _page(
            "Unsubscribed",
            f"<p>{escape(_masked(target.address))} gets no more marketing email from {who}.</p>",
        )
    form = (
        f'<form method="post" action="/u/{escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button type=submit>Unsubscribe</button></form>"
    )
    text = f"<p>Stop marketing email from {who} to {escape(_masked(target.address))}?</p>{form}"
    return _page("Unsubscribe", text)


@router.post("/u/{token}")
def one_click(token: str, db: DB, settings: AppSettings) -> HTMLResponse:
    """RFC 8058: the body is ``List-Unsubscribe=One-Click``; any POST with a valid token
    unsubscribes (the token is what proves the right to)."""
    delivery_id = verp.verify_token(settings.secret_key, token, purpose=PURPOSE)
    if delivery_id is None:
        return _not_found()
    try:
        target = unsubscribe.unsubscribe(db, delivery_id)
    except NotFound:
        return _not_found()
    who = escape(target.account_name or "this sender")
    return _page(
        "Unsubscribed",
        f"<p>Done: {escape(_masked(target.address))} gets no more marketing email from {who}.</p>",
    )
