"""CSV answers a spreadsheet opens safely: text that would start a formula is neutralised,
and every CSV export writes its rows through here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (an imported code, a memo or an id
    may start with `=`, `+`, `-` or `@`): such text gets a leading quote, in the export only.
    Whole numbers are written as they are: `-990` is a number to a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A header line and the rows, every cell through ``cell``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([cell(value) for value in row] for row in rows)
    return out.getvalue()
