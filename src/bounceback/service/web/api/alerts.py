"""GET /api/alerts: the account's alerts about sender-side problems, newest first, with the DNS
check of a DMARC alert's domain (what is missing, the records to publish) once the worker has
run it. Read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select

from bounceback.service.db.models import Alert
from bounceback.service.web.deps import DB, Caller, Paging, page
from bounceback.service.web.schemas import Page

router = APIRouter(tags=["alerts"])


class FindingOut(BaseModel):
    text: str = Field(description="What is missing or wrong, in plain language.")
    record_name: str = Field("", description="Where to publish the fix (a TXT record).")
    record_value: str = Field("", description="The TXT record's value to publish.")


class DnsCheckOut(BaseModel):
    """What DNS showed about the domain (``domain/dnscheck.py``)."""

    domain: str
    authorized: bool = Field(description="DMARC passes: SPF or DKIM passes aligned.")
    complete: bool = Field(description="Every record could be read.")
    summary: str
    checked_at: datetime
    return_path_domain: str
    findings: list[FindingOut]
    dmarc: dict[str, Any]
    spf: dict[str, Any]
    dkim: dict[str, Any]


class AlertOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    count: int = Field(description="How many bounces raised this alert.")
    domain: str | None = Field(None, description="The sending domain (DMARC alerts).")
    created_at: datetime
    resolved_at: datetime | None
    dns_check: DnsCheckOut | None = Field(
        None, description="The DNS check of the domain, once the worker has run it."
    )


def _out(alert: Alert) -> AlertOut:
    data = alert.data or {}
    check = None
    if isinstance(data.get("dns_check"), dict):
        try:
            check = DnsCheckOut.model_validate(data["dns_check"])
        except ValidationError:
            check = None  # stored by another version: the body still has the findings
    return AlertOut(
        id=alert.id,
        kind=alert.kind,
        title=alert.title,
        body=alert.body,
        count=int(data.get("count", 1)),
        domain=data.get("domain"),
        created_at=alert.created_at,
        resolved_at=alert.resolved_at,
        dns_check=check,
    )


@router.get("/alerts", summary="The account's alerts, newest first")
def list_alerts(
    caller: Caller,
    db: DB,
    paging: Paging,
    status: Annotated[
        Literal["open", "resolved", "all"], Query(description="Which alerts to list.")
    ] = "open",
) -> Page[AlertOut]:
    query = select(Alert).where(Alert.account_id == caller.account_id)
    if status == "open":
        query = query.where(Alert.resolved_at.is_(None))
    elif status == "resolved":
        query = query.where(Alert.resolved_at.is_not(None))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(paging.limit)
        .offset(paging.offset)
    ).all()
    return Page[AlertOut](**page([_out(row) for row in rows], total, paging.limit, paging.offset))
