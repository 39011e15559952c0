"""Low stock of a tenant's SKU is heard by that tenant's endpoints (and the platform's),
never by another tenant's."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from engine.webhooks.endpoints import WebhookEndpoint
from engine.webhooks.messages import stock_message
from runtime.webhook_courier import _heard_by


def endpoint(owner: str, scope: str | None) -> WebhookEndpoint:
    return WebhookEndpoint(id=uuid4(), url="https://hooks.example.com/x",
                           event_types=["stock.low"], sealed="s", owner=owner, scope=scope,
                           actor="key:x")


def low(sku: str):
    return stock_message({"position": 1, "at": datetime.now(UTC).isoformat(), "sku": sku,
                          "threshold": 5, "available": 4})


@pytest.mark.parametrize(("owner", "scope", "sku", "heard"), [
    ("tenant:ta", "tenant:ta", "ta:VIP", True),
    ("tenant:tb", "tenant:tb", "ta:VIP", False),
    ("tenant:tb", "tenant:tb", "VIP", False),
    ("key:abc", "key:abc", "ta:VIP", True),   # a platform key's endpoint: every tenant's
    ("key:abc", None, "VIP", True),
])
def test_low_stock_is_heard_within_the_skus_tenant(owner, scope, sku, heard):
    assert _heard_by(endpoint(owner, scope), low(sku)) is heard
