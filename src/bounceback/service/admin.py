"""``bounceback admin``: create users and API keys, re-parse stored bounces."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service.db.models import Account, RawBounce, RawStatus, Role
from bounceback.service.db.session import transaction
from bounceback.service.domain import accounts, intake
from bounceback.service.domain.errors import DomainError
from bounceback.service.runner import prepare
from bounceback.service.settings import load


def run(args: argparse.Namespace) -> int:
    settings, factory = prepare(load())
    try:
        with transaction(factory) as session:
            if args.action == "create-user":
                return _create_user(session, args)
            if args.action == "create-api-key":
                return _create_api_key(session, args)
        if args.action == "unmatched":
            return _unmatched(factory, args.limit)
        if args.action == "show-raw":
            return _show_raw(factory, args.raw_id)
        if args.action == "reparse":
            summary = intake.reparse_all(factory, settings)
            print(
                f"re-read {summary.messages} stored messages: {summary.changed} events "
                f"changed, {summary.matched} messages newly matched"
            )
            return 0
    except DomainError as exc:
        print(f"bounceback: {exc.message}", file=sys.stderr)
        return 1
    return 2


def _account(session: Session, name: str, *, create: bool) -> Account | None:
    found = session.scalar(select(Account).where(Account.name == name.strip()))
    if found is None and create:
        found = accounts.create_account(session, name)
    return found


def _create_user(session: Session, args: argparse.Namespace) -> int:
    password = (
        args.password
        or os.environ.get("BOUNCEBACK_ADMIN_PASSWORD")
        or getpass.getpass(f"password for {args.email}: ")
    )
    account = _account(session, args.account, create=True)
    assert account is not None
    role = Role.ADMIN if args.admin else Role.MEMBER
    user = accounts.create_user(
        session, account.id, args.email, password, role=role, name=args.name
    )
    print(f"created {role.value} {user.email} in account {account.name!r} (id {account.id})")
    return 0


def _create_api_key(session: Session, args: argparse.Namespace) -> int:
    account = _account(session, args.account, create=False)
    if account is None:
        print(f"bounceback: no account named {args.account!r}", file=sys.stderr)
        return 1
    _, key = accounts.create_api_key(session, account.id, args.name)
    print(key)
    print(f"(API key for {account.name!r}: shown once, keep it safe)", file=sys.stderr)
    return 0


def _unmatched(factory: sessionmaker[Session], limit: int) -> int:
    """Messages kept for inspection: they changed nothing (no delivery matched, or a forged
    token). They belong to no account yet, so only an operator sees them."""
    with factory() as session:
        rows = session.scalars(
            select(RawBounce)
            .where(RawBounce.status.in_((RawStatus.UNMATCHED, RawStatus.FORGED)))
            .order_by(RawBounce.id.desc())
            .limit(limit)
        ).all()
        for row in rows:
            print(
                f"{row.id:>8}  {row.received_at:%Y-%m-%d %H:%M}  {row.status.value:9}  "
                f"{row.source:6}  from <{row.envelope_from}> to <{row.envelope_to}>"
            )
    return 0


def _show_raw(factory: sessionmaker[Session], raw_id: int) -> int:
    with factory() as session:
        row = session.get(RawBounce, raw_id)
        if row is None:
            print(f"bounceback: no stored message {raw_id}", file=sys.stderr)
            return 1
        sys.stdout.buffer.write(row.raw)
    return 0
