"""GET /api/me: whom the credentials belong to (and a browser session's CSRF token)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bounceback.service.db.models import Account, User
from bounceback.service.domain.errors import NotFound
from bounceback.service.web import csrf
from bounceback.service.web.deps import DB, Caller
from bounceback.service.web.schemas import MeOut

router = APIRouter(tags=["account"])


@router.get("/me", summary="The account of these credentials")
def me(request: Request, caller: Caller, db: DB) -> MeOut:
    account = db.get(Account, caller.account_id)
    if account is None:
        raise NotFound("no such account")
    user = db.get(User, caller.user_id) if caller.user_id is not None else None
    return MeOut(
        account_id=account.id,
        account_name=account.name,
        via=caller.via,
        user_email=user.email if user else None,
        role=caller.role.value if caller.role else None,
        csrf_token=csrf.token(request) if caller.via == "session" else None,
    )
