from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from engine.codes.generation import CodePattern
from engine.codes.imports import CodeRow
from engine.kernel.errors import (
    InvalidState,
    NotFound,
    PriceBelowCost,
    ValidationFailed,
)
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def test_batch_imports_every_valid_code(runtime):
    sku = define_product(runtime)
    result = import_codes(runtime, sku, codes_for(250))
    assert result.imported == 250 and result.rejected == []
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["available"] == 250


def test_duplicate_within_a_batch_is_rejected_by_index(runtime):
    sku = define_product(runtime)
    rows = [CodeRow("A-1"), CodeRow("A-2"), CodeRow("A-1"), CodeRow(" A-2 ")]
    result = import_codes(runtime, sku, rows)
    assert result.imported == 2
    assert result.rejected == [{"index": 2, "reason": "duplicate"},
                               {"index": 3, "reason": "duplicate"}]


def test_code_known_in_another_sku_is_rejected_as_duplicate(runtime):
    first, second = define_product(runtime), define_product(runtime)
    import_codes(runtime, first, [CodeRow("SHARED-1"), CodeRow("ONLY-1")])
    result = import_codes(runtime, second, [CodeRow("NEW-9"), CodeRow("SHARED-1")])
    assert result.imported == 1
    assert result.rejected == [{"index": 1, "reason": "duplicate"}]


def test_malformed_rows_are_reported_and_the_rest_import(runtime):
    sku = define_product(runtime)
    rows = [CodeRow("GOOD-1"), CodeRow(""), CodeRow("has space"), CodeRow(None),
            CodeRow("X" * 129), CodeRow("GOOD-2", "P" * 65), CodeRow("GOOD-3", "1234")]
    result = import_codes(runtime, sku, rows)
    assert result.imported == 2
    assert [r["index"] for r in result.rejected] == [1, 2, 3, 4, 5]
    assert {r["reason"] for r in result.rejected} == {"invalid"}


def test_retried_batch_with_the_same_key_imports_once(runtime):
    sku = define_product(runtime)
    rows = codes_for(30)
    first = import_codes(runtime, sku, rows, batch_key="k-1")
    again = import_codes(runtime, sku, rows, batch_key="k-1")
    assert again.batch_id == first.batch_id and again.imported == 30 and again.rejected == []
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["total"] == 30


def test_unit_cost_above_price_is_refused_unless_allowed(runtime):
    strict = define_product(runtime, price=1000)
    with pytest.raises(PriceBelowCost):
        import_codes(runtime, strict, codes_for(1), unit_cost=1001)
    lenient = define_product(runtime, price=1000, allow_below_cost=True)
    assert import_codes(runtime, lenient, codes_for(1), unit_cost=1001).imported == 1


def test_topup_product_takes_no_codes(runtime):
    sku = define_product(runtime, delivery="topup")
    with pytest.raises(InvalidState):
        import_codes(runtime, sku, codes_for(1))


def test_import_to_unknown_sku_is_not_found(runtime):
    with pytest.raises(NotFound):
        import_codes(runtime, "NO-SUCH-SKU", codes_for(1))


def test_already_past_expiry_is_refused(runtime):
    sku = define_product(runtime)
    with pytest.raises(ValidationFailed):
        import_codes(runtime, sku, codes_for(1),
                     expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))


def test_generated_codes_are_distinct_and_follow_the_pattern(runtime):
    sku = define_product(runtime, delivery="code")
    pattern = CodePattern.build(pattern="####-####-####-####", charset="0123456789", prefix="QY")
    result = runtime.engine.imports.generate_batch(sku=sku, count=500, pattern=pattern,
                                                   expires_at=None, actor="test")
    assert result.imported == 500
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["available"] == 500


@dataclass(frozen=True)
class ScriptedPattern(CodePattern):
    """A pattern large enough to pass the rule whose draws follow a script, so that a draw
    can be made to hit a code the platform already holds."""

    script: Iterator[str] = field(default_factory=lambda: iter(()))

    def draw(self) -> str:
        return next(self.script)


def test_generated_codes_avoid_codes_already_on_the_platform(runtime):
    sku = define_product(runtime, delivery="code")
    known = [f"KNOWN{n:07d}" for n in range(5)]
    fresh = [f"FRESH{n:07d}" for n in range(5)]
    import_codes(runtime, sku, [CodeRow(c) for c in known])
    pattern = ScriptedPattern(pattern="#" * 12, script=iter(known + fresh))
    result = runtime.engine.imports.generate_batch(sku=sku, count=5, pattern=pattern,
                                                   expires_at=None, actor="test")
    assert result.imported == 5
    again = import_codes(runtime, sku, [CodeRow(c) for c in known + fresh])
    assert again.imported == 0 and len(again.rejected) == 10
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["total"] == 10
