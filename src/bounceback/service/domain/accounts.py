"""Accounts, users (admin or member, password login) and API keys."""

from __future__ import annotations

import hmac
from datetime import UTC, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bounceback.service.db.models import Account, ApiKey, Role, User, utcnow
from bounceback.service.domain import security
from bounceback.service.domain.contacts import normalize_email
from bounceback.service.domain.errors import Conflict, Invalid, NotFound

MIN_PASSWORD = 10
_TOUCH_EVERY = timedelta(minutes=1)


def create_account(session: Session, name: str) -> Account:
    name = name.strip()
    if not name:
        raise Invalid("an account needs a name")
    account = Account(name=name[:200], policy={})
    session.add(account)
    session.flush()
    return account


def create_user(
    session: Session,
    account_id: int,
    email: str,
    password: str,
    *,
    role: Role = Role.MEMBER,
    name: str = "",
) -> User:
    address = normalize_email(email)
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password needs at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(f"a user {address} exists already")
    if session.get(Account, account_id) is None:
        raise NotFound("no such account")
    user = User(
        account_id=account_id,
        email=address,
        name=name.strip()[:200],
        password_hash=security.hash_password(password),
        role=role,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same answer for both failures)."""
    try:
        address = normalize_email(email)
    except Invalid:
        return None
    user = session.scalar(select(User).where(User.email == address))
    if user is None or not user.is_active:
        security.check_password(password, _DUMMY_HASH)  # same work either way: no timing oracle
        return None
    return user if security.check_password(password, user.password_hash) else None


_DUMMY_HASH = security.hash_password("not a password of anyone")


def create_api_key(session: Session, account_id: int, name: str) -> tuple[ApiKey, str]:
    """A new key: the row and the key itself, which is shown once and never stored."""
    key, prefix, digest = security.new_api_key()
    api_key = ApiKey(
        account_id=account_id, name=name.strip()[:200] or "API key", prefix=prefix, key_hash=digest
    )
    session.add(api_key)
    session.flush()
    return api_key, key


def account_for_api_key(session: Session, key: str) -> int | None:
    """The account a (not revoked) key belongs to, or None."""
    prefix = security.api_key_prefix(key)
    if not prefix:
        return None
    api_key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if api_key is None or api_key.revoked_at is not None:
        return None
    if not hmac.compare_digest(api_key.key_hash, security.hash_api_key(key)):
        return None
    now = utcnow()
    last = api_key.last_used_at
    if last is None or (last if last.tzinfo else last.replace(tzinfo=UTC)) < now - _TOUCH_EVERY:
        api_key.last_used_at = now  # at most once a minute: reads stay reads
    return api_key.account_id


def revoke_api_key(session: Session, account_id: int, key_id: int) -> None:
    api_key = session.get(ApiKey, key_id)
    if api_key is None or api_key.account_id != account_id:
        raise NotFound("no such API key")
    api_key.revoked_at = utcnow()
