"""docs/suppliers.md is what an integrator builds a supplier from: its examples, statuses and
settings agree with the OpenAPI document's schemas, the engine and the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import orjson

from api.schemas import OrderOut, SupplierCallbackIn, SupplierCallbackOut, TopupOut
from engine.sales.orders import FULFILLING, NEEDS_ATTENTION

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "suppliers.md").read_text()
CALLBACK_EXAMPLE = re.compile(r"Quanyi-Signature: v1=\S+\n\n(\{.*?\})\n```", re.DOTALL)
STATUS_ROW = re.compile(r"^\| `([a-z_]+)` \| (?!meaning)", re.MULTILINE)
TOPUP_SETTINGS = ("QUANYI_TOPUP_QUERY_SECONDS", "QUANYI_TOPUP_QUERY_MAX_SECONDS",
                  "QUANYI_TOPUP_DEADLINE_SECONDS", "QUANYI_SUPPLIER_BREAKER_FAILURES",
                  "QUANYI_SUPPLIER_BREAKER_COOLDOWN_SECONDS")


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end > 0 else None]


def test_every_field_of_the_callback_example_is_in_the_openapi_callback_schema():
    [example] = CALLBACK_EXAMPLE.findall(DOC)
    sent = set(orjson.loads(example))
    assert "sequence" in sent
    assert sent <= set(SupplierCallbackIn.model_json_schema()["properties"])


def test_the_callback_answer_the_doc_describes_is_the_one_the_schema_gives():
    fields = set(SupplierCallbackOut.model_json_schema()["properties"])
    assert fields == {"reference", "outcome", "result", "topup_status"}
    for field in fields:
        assert f'"{field}"' in DOC


def test_the_order_statuses_the_doc_lists_are_those_the_api_answers():
    listed = STATUS_ROW.findall(_section("What happens to a paid top-up"))
    answered = set(get_args(OrderOut.model_fields["status"].annotation))
    assert {FULFILLING, NEEDS_ATTENTION} <= set(listed) <= answered


def test_the_doc_names_the_resolve_endpoint_the_skipped_offers_and_every_top_up_setting():
    assert "POST /v1/orders/{order_id}/topup/resolve" in DOC
    assert "skipped" in TopupOut.model_fields and "`topup.skipped`" in DOC
    readme = (ROOT / "README.md").read_text()
    for name in TOPUP_SETTINGS:
        assert f"`{name}`" in DOC and f"| `{name}` |" in readme, name
