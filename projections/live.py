"""The live set of projections: what the runner inside ``quanyi serve`` applies, and what
``quanyi replay`` rebuilds and verifies, so both use one list and one copy of the code."""

from __future__ import annotations

from projections.codes import CodeProjection
from projections.ledger import LedgerProjection
from projections.orders import OrderProjection
from projections.projection import Projection
from projections.stock import StockProjection
from projections.topups import TopupProjection
from projections.webhooks import WebhookEndpointProjection


def all_projections() -> list[Projection]:
    """Every live projection, in the order the runner applies them (stock first: it reads
    the codes as they stood before each chunk)."""
    return [StockProjection(), CodeProjection(), OrderProjection(), LedgerProjection(),
            TopupProjection(), WebhookEndpointProjection()]
