"""Code strings are read in their NFKC form; case matters only where the product says so;
codes mixing scripts are refused."""

from __future__ import annotations

import dataclasses
import uuid

import orjson
import pytest

from engine.codes.generation import CodePattern
from engine.codes.imports import CodeRow
from engine.kernel.errors import NotFound
from engine.kernel.ids import product_id
from tests.conftest import caught_up
from tests.integration.helpers import define_product, import_codes


def fresh(tag: str) -> str:
    return f"{tag}{uuid.uuid4().hex[:8].upper()}"


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_full_width_and_lower_case_variants_are_duplicates_when_case_is_ignored(runtime):
    sku = define_product(runtime, case_sensitive=False)
    code = fresh("SECRET")
    assert import_codes(runtime, sku, [CodeRow(code)]).imported == 1
    variants = [full_width(code), code.lower(), code.title(), full_width(code.lower())]
    again = import_codes(runtime, sku, [CodeRow(v) for v in variants])
    assert again.imported == 0
    assert again.rejected == [{"index": i, "reason": "duplicate"} for i in range(4)]


def test_a_case_insensitive_code_is_found_whatever_case_is_typed(runtime):
    sku = define_product(runtime, case_sensitive=False)
    code = fresh("MIXED")
    import_codes(runtime, sku, [CodeRow(code)])
    found = {runtime.engine.codes.look_up(v).id
             for v in (code, code.lower(), full_width(code.lower()))}
    assert len(found) == 1


def test_lower_case_is_another_code_when_case_matters(runtime):
    sku = define_product(runtime, case_sensitive=True)
    code = fresh("EXACT")
    import_codes(runtime, sku, [CodeRow(code)])
    with pytest.raises(NotFound):
        runtime.engine.codes.look_up(code.lower())
    assert import_codes(runtime, sku, [CodeRow(code.lower())]).imported == 1
    assert runtime.engine.codes.look_up(code.lower()).id != runtime.engine.codes.look_up(code).id


def test_full_width_import_is_found_by_its_ascii_form(runtime):
    sku = define_product(runtime, case_sensitive=True)
    code = fresh("WIDE-")
    import_codes(runtime, sku, [CodeRow(full_width(code))])
    assert runtime.engine.codes.look_up(code).sku == sku


@pytest.mark.parametrize("code", ["SECR\u0415T-1", "\u0391BC-123", "ab\u0441d"])
def test_a_code_mixing_scripts_is_invalid(runtime, code):
    sku = define_product(runtime)
    result = import_codes(runtime, sku, [CodeRow(code), CodeRow(fresh("PLAIN-1_"))])
    assert result.imported == 1
    assert result.rejected == [{"index": 0, "reason": "invalid"}]


def test_case_insensitive_import_of_a_case_variant_of_a_known_code_is_duplicate(runtime):
    strict, loose = define_product(runtime), define_product(runtime, case_sensitive=False)
    code = fresh("ABC")
    import_codes(runtime, strict, [CodeRow(code)])
    assert import_codes(runtime, loose, [CodeRow(code.lower())]).rejected == [
        {"index": 0, "reason": "duplicate"}]


def test_case_sensitive_import_answered_by_a_case_insensitive_code_is_duplicate(runtime):
    strict, loose = define_product(runtime), define_product(runtime, case_sensitive=False)
    code = fresh("LOOSE")
    import_codes(runtime, loose, [CodeRow(code)])
    assert import_codes(runtime, strict, [CodeRow(code.lower())]).rejected == [
        {"index": 0, "reason": "duplicate"}]


def test_generated_codes_ignore_case_even_in_a_case_sensitive_product(runtime):
    sku = define_product(runtime, delivery="code", case_sensitive=True)
    result = runtime.engine.imports.generate_batch(sku=sku, count=1, pattern=CodePattern.build(),
                                                   expires_at=None, actor="test")
    caught_up(runtime)
    assert result.imported == 1
    [code_id] = runtime.codes.available_code_ids(sku, 10, 0, set())
    code = runtime.engine.codes.reveal(runtime.engine.codes.get(code_id))["code"]
    assert runtime.engine.codes.look_up(code.lower()).id == code_id


def test_code_products_ignore_case_and_card_products_respect_it_by_default(runtime):
    assert runtime.engine.catalog.get(define_product(runtime)).case_sensitive is True
    code_sku = define_product(runtime, delivery="code")
    assert runtime.engine.catalog.get(code_sku).case_sensitive is False


def test_a_product_defined_before_case_sensitivity_reads_as_case_sensitive(runtime):
    sku = define_product(runtime, delivery="code")
    store = runtime.store
    [stored] = store.recorder.select_events(product_id(sku))
    state = orjson.loads(stored.state)
    del state["case_sensitive"]
    old = dataclasses.replace(stored, state=orjson.dumps(state))
    product = store.mapper.to_domain_event(old).mutate(None)
    assert product.case_sensitive is True and product.sku == sku


def test_case_insensitive_import_of_a_case_sensitive_code_as_typed_is_duplicate(runtime):
    strict, loose = define_product(runtime), define_product(runtime, case_sensitive=False)
    code = fresh("lower").lower()
    import_codes(runtime, strict, [CodeRow(code)])
    result = import_codes(runtime, loose, [CodeRow(code), CodeRow(full_width(code))])
    assert result.imported == 0
    assert [r["reason"] for r in result.rejected] == ["duplicate", "duplicate"]
    assert runtime.engine.codes.look_up(code).sku == strict


def test_case_variants_of_a_case_sensitive_code_are_all_distinct(runtime):
    sku = define_product(runtime, case_sensitive=True)
    code = fresh("Variant")
    first = import_codes(runtime, sku, [CodeRow(code), CodeRow(code.lower())])
    later = import_codes(runtime, sku, [CodeRow(code.upper()), CodeRow(code.swapcase())])
    assert first.imported == later.imported == 2
    ids = {runtime.engine.codes.look_up(v).id
           for v in (code, code.lower(), code.upper(), code.swapcase())}
    assert len(ids) == 4
