"""A payment provider's statement sent as CSV (`payment_ref,amount,type,at`), read into typed
lines; any bad cell is a 422 naming its row (0 = the first line after the header)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from api.problems import ApiProblem
from engine.catalog.products import MAX_MONEY
from engine.kernel.errors import ValidationFailed
from engine.kernel.fields import check_digits, check_instant, check_text
from projections.provider_statements import CAPTURE, REFUND, StatementLine

COLUMNS = ("payment_ref", "amount", "type", "at")
MAX_REF = 128


def statement_lines(raw: bytes) -> list[StatementLine]:
    """Every line of the statement, or a 422 for the first bad one."""
    try:
        reader = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), strict=True)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise _bad(f"the statement's header must be `{','.join(COLUMNS)}`")
        lines = [_line(index, row) for index, row in enumerate(reader) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _bad(f"unreadable CSV: {exc}") from None
    if not lines:
        raise _bad("the statement has no lines")
    return lines


def _line(index: int, row: list[str]) -> StatementLine:
    if len(row) != len(COLUMNS):
        raise _bad(f"row {index}: expected {len(COLUMNS)} cells, found {len(row)}", index)
    ref, amount, kind, at = row
    try:
        check_text(ref, "payment_ref")
        if not 1 <= len(ref) <= MAX_REF:
            raise ValidationFailed(f"payment_ref must be 1-{MAX_REF} characters")
        money = check_digits(amount, "amount", MAX_MONEY)
        if kind not in (CAPTURE, REFUND):
            raise ValidationFailed(f"type must be {CAPTURE} or {REFUND}")
        moment = check_instant(_instant(at), "at")
    except ValidationFailed as exc:
        raise _bad(f"row {index}: {exc.detail}", index) from None
    return StatementLine(ref, money, kind, moment)


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed("at must be an ISO 8601 instant with its offset, such as "
                               "2026-11-23T10:00:00Z") from None


def _bad(detail: str, index: int | None = None) -> ApiProblem:
    extra = {} if index is None else {"index": index}
    return ApiProblem(422, "validation_error", detail, **extra)
