"""Reconciliation (finance): an order's books, the daily statement, a provider's statement,
each of the caller's book: a tenant's (its orders, its legs), or the consolidated one for a
platform key without a `Quanyi-Tenant` header.

The daily statement's CSV is one flat table: a ``section`` column (supplier, distributor,
provider, total), the party and currency, then every figure; a figure that does not belong
to a section is left empty."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.csv_cells import csv_text
from api.problems import ApiProblem
from api.schemas import (
    DailyStatementOut,
    OrderReconciliationOut,
    ProviderReconciliationOut,
)
from api.statement_csv import statement_lines
from engine.kernel.tenancy import shown
from engine.keys import Principal
from engine.ledger.transactions import clearing
from projections.ledger_reads import LedgerReads
from projections.projection import iso
from projections.provider_statements import match, period
from projections.reconciliation import (
    DISTRIBUTOR_FIGURES,
    PROVIDER_FIGURES,
    SUPPLIER_FIGURES,
    OrderFacts,
    daily_statement,
    reconcile_order,
)

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
FIGURES = SUPPLIER_FIGURES + DISTRIBUTOR_FIGURES + PROVIDER_FIGURES
MICROSECOND = timedelta(microseconds=1)
CSV_HEADER = ("section", "party", "currency") + FIGURES
SECTIONS = (("suppliers", "supplier", "supplier_id"),
            ("distributors", "distributor", "distributor_id"),
            ("providers", "provider", "provider"))
DAILY_CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": (
    ",".join(CSV_HEADER) + "\r\n"
    "supplier,sup-1,CNY,2,0,1,2970,0,,,,,\r\n"
    "distributor,d-1,CNY,,,,,,199,0,0,,\r\n"
    "provider,wechat,CNY,,,,,,,,,1990,0\r\n"
    "total,,CNY,2,0,1,2970,0,199,0,0,1990,0\r\n")}}}}
STATEMENT_BODY = {"requestBody": {"required": True, "content": {"text/csv": {
    "schema": {"type": "string"},
    "example": "payment_ref,amount,type,at\r\nwx-4200001234,1990,capture,"
               "2026-11-23T10:23:01Z\r\nwx-4200001234,995,refund,2026-11-24T09:00:00Z\r\n"}}}}


@router.get("/orders/{order_id}", response_model=OrderReconciliationOut)
def reconcile(order_id: UUID, request: Request,
              who: Principal = Depends(require("finance", "support"))) -> dict[str, Any]:
    """An order's payments, refunds, revenue, cost, commissions and margin from its ledger
    legs, and whether money, commission and codes agree."""
    runtime = request.app.state.runtime
    order = runtime.engine.orders.get(order_id, who.scope)
    runtime.read_your_writes()
    reads = LedgerReads(runtime.read_db)
    entries = reads.in_book(reads.of_order(str(order_id)), who.tenant)
    products = {item["sku"]: runtime.engine.catalog.get(item["sku"]) for item in order.items}
    distributor_id = (shown(order.distributor_id) if order.distributor_id and who.tenant
                      else order.distributor_id)  # as the book's accounts name it
    facts = OrderFacts(
        order_id=str(order_id), currency=order.currency, distributor_id=distributor_id,
        items=order.items, rates_bp={sku: p.commission_rates_bp for sku, p in products.items()},
        codes=reads.codes([e.code_id for e in entries if e.code_id]),
        units_kept=reads.units_kept(str(order_id)),
        components={sku: p.components for sku, p in products.items() if p.components})
    return reconcile_order(facts, entries)


@router.get("/daily", response_model=DailyStatementOut, responses=DAILY_CSV)
def daily(request: Request,
          day_text: str = Query(alias="date", pattern=DAY, examples=["2026-11-23"]),
          format: Literal["json", "csv"] = "json",
          who: Principal = Depends(require("finance"))) -> Any:
    """One UTC day of the book: per supplier (units, top-ups, cost owed, settled), per distributor (commission,
    clawback, paid out), per payment provider (captured, refunded), and totals."""
    day = calendar_day(day_text, "date")
    runtime = request.app.state.runtime
    runtime.read_your_writes()
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    end = None if day == date.max else iso(start + timedelta(days=1))
    statement = daily_statement(LedgerReads(runtime.read_db).between(iso(start), end,
                                                                     book=who.tenant))
    if format == "csv":
        return Response(csv_text(CSV_HEADER, _daily_rows(statement)), media_type="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="daily-{day.isoformat()}.csv"'})
    return {"date": day.isoformat(), **statement}


def _daily_rows(statement: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for section, name, party in SECTIONS:
        for row in statement[section]:
            rows.append((name, row[party], row["currency"],
                         *(row.get(figure, "") for figure in FIGURES)))
    rows += [("total", "", t["currency"], *(t[f] for f in FIGURES)) for t in statement["totals"]]
    return rows


@router.post("/providers/{provider}/statements", response_model=ProviderReconciliationOut,
             openapi_extra=STATEMENT_BODY)
async def provider_statement(provider: str, request: Request,
                             who: Principal = Depends(require("finance"))
                             ) -> dict[str, Any]:
    """Match a payment provider's statement (CSV `payment_ref,amount,type,at`) with the
    provider's clearing account in the book over the statement's first to last instant."""
    account = clearing(provider)
    lines = statement_lines(await request.body())
    first, last = period(lines)
    runtime = request.app.state.runtime

    def booked() -> Any:
        runtime.read_your_writes()
        return LedgerReads(runtime.read_db).between(iso(first), iso(last + MICROSECOND),
                                                    account, who.tenant)

    legs = await run_in_threadpool(booked)
    return {"provider": provider, "period_from": iso(first), "period_to": iso(last),
            **match(lines, legs)}


def calendar_day(text: str, field: str) -> date:
    """A `YYYY-MM-DD` date that exists, or a 422 naming the field."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiProblem(422, "validation_error",
                         f"{field} must be a calendar date YYYY-MM-DD") from None
