"""The ledger's journal for an accounting system (finance): CSV, one row per leg, or a
Beancount file that ``bean-check`` accepts (projections/journal.py), of the caller's book: a
tenant's, or the consolidated one for a platform key without a `Quanyi-Tenant` header."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.auth import require
from api.csv_cells import csv_text
from api.problems import ApiProblem
from api.routes.reconciliation import DAY, calendar_day
from engine.keys import Principal
from projections.journal import JOURNAL_COLUMNS, beancount, journal_rows
from projections.ledger_reads import LedgerReads
from projections.projection import iso

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
CSV_EXAMPLE = (",".join(JOURNAL_COLUMNS) + "\r\n"
               "9b1e0c7a-5d3f-5a21-8e4b-2c6d7f8a9b0c,0,412,sale,assets:clearing:wechat,1990,"
               "CNY,capture,,9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69,,,,wx-4200001234,wechat,"
               "2026-11-23T10:23:01.000002Z,\r\n")
BEANCOUNT_EXAMPLE = (
    "2026-11-23 open Assets:Clearing:Wechat\n2026-11-23 open Income:Sales\n"
    "2026-11-23 open Liabilities:Unearned\n\n"
    '2026-11-23 * "sale" "sale: order 9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69, payment '
    'wx-4200001234"\n  txn_id: "9b1e0c7a-5d3f-5a21-8e4b-2c6d7f8a9b0c"\n'
    '  order_id: "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69"\n'
    "  Assets:Clearing:Wechat  19.90 CNY\n  Liabilities:Unearned  -19.90 CNY\n"
    "  Liabilities:Unearned  19.90 CNY\n  Income:Sales  -19.90 CNY\n")
ANSWERS = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
    "text/plain": {"schema": {"type": "string"}, "example": BEANCOUNT_EXAMPLE}}}}


@router.get("/journal", response_class=Response, responses=ANSWERS)
def journal(request: Request,
            from_text: str | None = Query(None, alias="from", pattern=DAY,
                                          examples=["2026-11-01"]),
            to_text: str | None = Query(None, alias="to", pattern=DAY,
                                        examples=["2026-11-30"]),
            format: Literal["csv", "beancount"] = "csv",
            who: Principal = Depends(require("finance"))) -> Response:
    """Every leg of the book posted from `from` to `to` (UTC days, both included, either
    open) as CSV or as a Beancount file."""
    first = calendar_day(from_text, "from") if from_text else None
    last = calendar_day(to_text, "to") if to_text else None
    if first and last and last < first:
        raise ApiProblem(422, "validation_error", "to must not be before from")
    runtime = request.app.state.runtime
    runtime.read_your_writes()
    entries = LedgerReads(runtime.read_db).between(_start(first), _after(last),
                                                   book=who.tenant)
    if format == "beancount":
        return Response(beancount(entries, first.isoformat() if first else None),
                        media_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="journal.beancount"'})
    return Response(csv_text(JOURNAL_COLUMNS, journal_rows(entries)), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="journal.csv"'})


def _start(day: date | None) -> str | None:
    return iso(datetime.combine(day, time(), tzinfo=timezone.utc)) if day else None


def _after(day: date | None) -> str | None:
    if day is None or day == date.max:
        return None
    return _start(day + timedelta(days=1))
