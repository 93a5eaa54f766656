"""The HTTP application: the JSON API under /api, the web UI, the unsubscribe links, static files.

``create_app(settings, factory)`` builds a new application each time (no import-time globals):
tests build one per database, ``serve`` one per process. The app owns the request plumbing that
every route shares: the session cookie, the request size limit, and the translation of domain
errors into HTTP answers (``{"error": {"status": 404, "message": "..."}}`` under /api).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import bounceback
from bounceback.service.domain.errors import DomainError
from bounceback.service.settings import Settings
from bounceback.service.web import api, unsubscribe, views, views_inbox

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "web" / "static"
SESSION_COOKIE = "bounceback_session"
SESSION_MAX_AGE = 7 * 24 * 3600
API_PREFIX = "/api"
RAW_INTAKE_PATH = f"{API_PREFIX}/bounces/raw"

DESCRIPTION = """\
The bounceback service's JSON API: contacts, marketing emails and their sends, bounce intake and
events, suppressions.

**Authentication**: `Authorization: Bearer <API key>` (keys are made per account in the web UI or
with `bounceback admin`). A browser logged in to the web UI may call the API for its own account;
it must then send its CSRF token (`GET /api/me`) as `X-CSRF-Token` on POST requests.

**Errors** are JSON: `{"error": {"status": 404, "message": "no such contact"}}`. Another
account's objects answer 404, exactly like missing ones.

**Lists** are paginated with `limit` (1 to 200, default 50) and `offset`, and answer
`{"items": [...], "total": n, "limit": l, "offset": o}`.
"""


def create_app(settings: Settings, factory: sessionmaker[Session]) -> FastAPI:
    """A new application serving ``settings`` with sessions from ``factory``."""
    if not settings.secret_key:
        raise ValueError("create_app needs settings.secret_key (see settings.with_secret)")
    app = FastAPI(
        title="bounceback",
        version=bounceback.__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_tags=api.TAGS,
    )
    app.state.settings = settings
    app.state.factory = factory
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(unsubscribe.router)
    app.include_router(views.router)
    app.include_router(views_inbox.router)  # mailbox, one-to-one email, sequences
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    _install_error_handlers(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    # Outermost, so an oversized body is refused before anything reads it.
    app.add_middleware(BodyLimit, limit_for=lambda path: body_limit(settings, path))
    return app


def body_limit(settings: Settings, path: str) -> int:
    """The largest request body accepted at ``path``: a raw bounce may be as large as the SMTP
    receiver accepts; anything else (CSV files, forms, JSON) up to ``max_upload_bytes``."""
    if path == RAW_INTAKE_PATH:
        return max(settings.max_message_bytes, settings.max_upload_bytes)
    return settings.max_upload_bytes


# --- errors ----------------------------------------------------------------------------------


def is_api(request: Request) -> bool:
    path = request.url.path
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def error_json(
    status: int,
    message: str,
    *,
    details: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if is_api(request):
        return error_json(exc.status, exc.message)
    return PlainTextResponse(exc.message, status_code=exc.status)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"location": _location(err.get("loc", ())), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    message = "; ".join(f"{d['location']}: {d['message']}" for d in details) or "invalid request"
    if is_api(request):
        return error_json(422, message, details=details)
    return PlainTextResponse(message, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if is_api(request):
        return error_json(exc.status_code, str(exc.detail), headers=exc.headers)
    return await http_exception_handler(request, exc)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if is_api(request):
        return error_json(500, "internal error: the server logged it")
    return PlainTextResponse("Internal error: the server logged it.", status_code=500)


# --- request size ----------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies larger than the path's limit with 413, by the Content-Length
    header when there is one and by counting the bytes as they stream in (a chunked upload has
    no length, and a header may lie). The body is read here, before the app: memory is bounded
    by the limit, and no handler ever sees half a body."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the buffered body over once, then waits on the real one (for the
    disconnect a streaming response listens for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    message = f"the request body is larger than {limit} bytes"
    response: Response
    if scope["path"] == API_PREFIX or scope["path"].startswith(API_PREFIX + "/"):
        response = error_json(413, message, headers={"Connection": "close"})
    else:
        response = PlainTextResponse(message, status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)
