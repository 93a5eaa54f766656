"""GET /api/me: whom the credentials belong to (and a browser session's CSRF token); the
account's bounce policy (GET and PUT /api/account/policy)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from bounceback.service.db.models import Account, User
from bounceback.service.domain import policy as policies
from bounceback.service.domain.errors import Forbidden, NotFound
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


@router.get("/account/policy", summary="The account's bounce policy (defaults filled in)")
def get_policy(caller: Caller, db: DB) -> dict[str, Any]:
    account = db.get(Account, caller.account_id)
    if account is None:
        raise NotFound("no such account")
    return policies.as_dict(policies.policy_for(account.policy))


@router.put("/account/policy", summary="Change the account's bounce policy")
def put_policy(
    caller: Caller, db: DB, changes: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Which categories suppress, when repeated soft bounces turn hard, how long temporary
    failures are retried. Keys left out keep their value. API keys and administrators only."""
    if caller.via == "session" and not caller.is_admin_user:
        raise Forbidden("only an administrator can change the bounce policy")
    account = db.get(Account, caller.account_id)
    if account is None:
        raise NotFound("no such account")
    account.policy = {**account.policy, **policies.validated(changes)}
    return policies.as_dict(policies.policy_for(account.policy))
