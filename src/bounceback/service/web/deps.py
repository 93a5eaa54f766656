"""FastAPI dependencies of the JSON API: a database session per request, who is calling (an API
key, or a logged-in browser session), and pagination.

Authentication: ``Authorization: Bearer <API key>`` names an account. A browser with a logged-in
session of the web UI may call the API for its own account too; because a browser sends its
cookie with any request, such a call must also carry the session's CSRF token in the
``X-CSRF-Token`` header when it changes something (POST, PUT, PATCH, DELETE). API keys need no
token: a page of another site cannot make a browser send an Authorization header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Role, User
from bounceback.service.domain import accounts
from bounceback.service.settings import Settings
from bounceback.service.web import csrf

USER_KEY = "user_id"  # the session key of the logged-in user's id (written by the login view)
CSRF_HEADER = "X-CSRF-Token"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def db_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the endpoint returns, rolled back when it
    raises. Used with ``scope="function"`` (see ``DB``) so the commit happens before the
    response is sent: a 202 for a stored bounce means it is stored."""
    factory: sessionmaker[Session] = request.app.state.factory
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DB = Annotated[Session, Depends(db_session, scope="function")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class Principal:
    """Who is calling the API: an account's API key, or a user logged in to the web UI."""

    account_id: int
    via: Literal["api_key", "session"]
    user_id: int | None = None  # None for an API key
    role: Role | None = None

    @property
    def is_admin_user(self) -> bool:
        return self.via == "session" and self.role is Role.ADMIN


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key of the account: `Authorization: Bearer bb_...`.",
)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def session_user(request: Request, session: Session) -> User | None:
    """The active user logged in with this browser session, or None."""
    user_id = request.session.get(USER_KEY)
    if not isinstance(user_id, int):
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


def api_account(
    request: Request,
    db: DB,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of an API route; 401 without valid credentials."""
    if credentials is not None:
        account_id = accounts.account_for_api_key(db, credentials.credentials)
        if account_id is None:
            raise _unauthorized("the API key is not valid: unknown or revoked")
        return Principal(account_id=account_id, via="api_key")
    if request.headers.get("authorization"):
        raise _unauthorized("use 'Authorization: Bearer <API key>'")
    user = session_user(request, db)
    if user is None:
        raise _unauthorized("an API key is required: 'Authorization: Bearer <API key>'")
    if request.method not in _SAFE_METHODS:
        try:
            csrf.verify(request, request.headers.get(CSRF_HEADER, ""))
        except csrf.CsrfFailed:
            raise HTTPException(
                403,
                f"a browser session must send its CSRF token in the {CSRF_HEADER} header "
                "(or use an API key)",
            ) from None
    return Principal(account_id=user.account_id, via="session", user_id=user.id, role=user.role)


Caller = Annotated[Principal, Depends(api_account)]


@dataclass(frozen=True)
class Pagination:
    limit: int
    offset: int


def pagination(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


Paging = Annotated[Pagination, Depends(pagination)]


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The shape of every paginated answer."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}
