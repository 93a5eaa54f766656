"""Contacts: create, import from CSV (errors per row), search, and the contact's timeline."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bounceback.service.db.models import Contact, TimelineEntry
from bounceback.service.domain.errors import Invalid, NotFound

# Deliberately simple: one @, a dot in the domain, no spaces. Real validation is the bounce.
_ADDRESS = re.compile(
    r"^[^@\s<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
    r"\.[A-Za-z]{2,63}$"
)
MAX_IMPORT_ROWS = 100_000


def normalize_email(value: str) -> str:
    """Stripped and lower-cased; Invalid when it is not an address."""
    address = (value or "").strip().lower()
    if not _ADDRESS.match(address):
        raise Invalid(f"{value!r} is not an email address")
    return address


def create_contact(
    session: Session,
    account_id: int,
    email: str,
    name: str = "",
    properties: dict[str, Any] | None = None,
) -> Contact:
    """Create a contact, or update the name and properties of the one with this address."""
    address = normalize_email(email)
    contact = session.scalar(
        select(Contact).where(Contact.account_id == account_id, Contact.email == address)
    )
    if contact is None:
        contact = Contact(
            account_id=account_id,
            email=address,
            name=name.strip()[:200],
            properties=dict(properties or {}),
        )
        session.add(contact)
    else:
        if name.strip():
            contact.name = name.strip()[:200]
        if properties:
            contact.properties = {**contact.properties, **properties}
    session.flush()
    return contact


def get_contact(session: Session, account_id: int, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.account_id != account_id:
        raise NotFound("no such contact")
    return contact


def contact_by_email(session: Session, account_id: int, email: str) -> Contact | None:
    return session.scalar(
        select(Contact).where(
            Contact.account_id == account_id, Contact.email == email.strip().lower()
        )
    )


def search_contacts(
    session: Session, account_id: int, query: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[Contact], int]:
    """Contacts whose address or name contains ``query``, newest first, and the total."""
    where = [Contact.account_id == account_id]
    if query.strip():
        like = f"%{query.strip().lower()}%"
        where.append(or_(Contact.email.like(like), func.lower(Contact.name).like(like)))
    total = session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
    items = session.scalars(
        select(Contact).where(*where).order_by(Contact.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(items), total


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


def import_csv(session: Session, account_id: int, data: bytes) -> ImportResult:
    """Import contacts from CSV with a header row: ``email`` (required), ``name``, and any other
    column as a property. A bad row is reported with its line number; the others are imported."""
    result = ImportResult()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "email" not in columns:
        raise Invalid("the CSV needs a header row with an 'email' column")
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_IMPORT_ROWS:
            result.errors.append((number, f"more than {MAX_IMPORT_ROWS} rows: the rest skipped"))
            break
        values = {
            (k or "").strip().lower(): (v or "").strip()
            for k, v in row.items()
            if isinstance(v, str)
        }
        try:
            address = normalize_email(values.pop("email", ""))
        except Invalid as exc:
            result.errors.append((number, exc.message))
            continue
        name = values.pop("name", "")
        existed = contact_by_email(session, account_id, address) is not None
        create_contact(session, account_id, address, name, {k: v for k, v in values.items() if k})
        if existed:
            result.updated += 1
        else:
            result.created += 1
    return result


def add_timeline(
    session: Session,
    account_id: int,
    contact_id: int,
    kind: str,
    summary: str,
    *,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        account_id=account_id,
        contact_id=contact_id,
        kind=kind,
        summary=summary,
        data=dict(data or {}),
    )
    session.add(entry)
    session.flush()
    return entry


def timeline(
    session: Session, account_id: int, contact_id: int, limit: int = 100, offset: int = 0
) -> list[TimelineEntry]:
    get_contact(session, account_id, contact_id)
    return list(
        session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.account_id == account_id, TimelineEntry.contact_id == contact_id)
            .order_by(TimelineEntry.created_at.desc(), TimelineEntry.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    )
