"""CSRF protection for the web UI's forms.

The session cookie (Starlette's SessionMiddleware: signed, SameSite=Lax) carries a random session
id; every form carries ``HMAC(secret, session id)`` in a hidden field, and every POST is refused
unless the two agree. A page of another site can make the browser send the cookie but cannot read
the token, so it cannot forge a form post. The id is replaced at login and logout, so a token
learnt before login (session fixation) is worth nothing after it.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request

from bounceback.service.domain import security

FIELD = "csrf_token"  # the hidden input's name
_SESSION_KEY = "sid"


class CsrfFailed(Exception):
    """A form post whose token is missing or wrong: answered with 403 and changes nothing."""


def _secret(request: Request) -> str:
    secret: str = request.app.state.settings.secret_key
    if not secret:
        raise RuntimeError("the web UI needs settings.secret_key (see settings.with_secret)")
    return secret


def session_id(request: Request) -> str:
    """This browser session's id, created on first use."""
    sid = request.session.get(_SESSION_KEY)
    if not isinstance(sid, str) or not sid:
        sid = secrets.token_urlsafe(24)
        request.session[_SESSION_KEY] = sid
    return sid


def token(request: Request) -> str:
    """The token to put in this session's forms."""
    return security.csrf_token(_secret(request), session_id(request))


def verify(request: Request, submitted: str) -> None:
    """Raise CsrfFailed unless ``submitted`` is this session's token."""
    sid = request.session.get(_SESSION_KEY)
    if not isinstance(sid, str) or not sid:
        raise CsrfFailed("this form has expired: reload the page and try again")
    if not security.check_csrf(_secret(request), sid, submitted or ""):
        raise CsrfFailed("this form has expired or did not come from this site")


def renew(request: Request) -> None:
    """Start a new session (at login and logout): drop everything, then a fresh id."""
    request.session.clear()
    request.session[_SESSION_KEY] = secrets.token_urlsafe(24)
