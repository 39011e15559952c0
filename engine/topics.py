"""What the event log holds: every module that defines an aggregate, imported once, so that
every stored event's topic (``quanyi:code.imported``, ...) resolves in any process that reads
the log, and the value objects its events carry. A module with a new aggregate is added here
(tests/unit/test_topics_registry.py checks that none is missing); ``open_store`` opens the
event store with the values handed in."""

from __future__ import annotations

from typing import Any

from engine import keys
from engine.catalog import products
from engine.codes import codes, redemptions
from engine.eventstore import receipts
from engine.eventstore.store import EventStore, open_event_store
from engine.kernel.money import Money
from engine.ledger import distribution, payouts, transactions
from engine.ledger.transactions import Leg
from engine.sales import orders
from engine.sales.lines import OrderLine
from engine.settings import Settings
from engine.topups import fulfilment, suppliers
from engine.topups.offers import TopupOffer
from engine.webhooks import endpoints

MODULES = (products, codes, distribution, fulfilment, keys, transactions, orders, payouts,
           receipts, redemptions, suppliers, endpoints)

# Value objects that events carry, by the name their envelope gives (engine/eventstore/
# transcoder.py). A name, once stored, is forever.
VALUE_TYPES: dict[str, Any] = {"money": Money, "leg": Leg, "order_line": OrderLine,
                               "topup_offer": TopupOffer}


def open_store(settings: Settings) -> EventStore:
    """The event store the settings name, able to decode every stored event."""
    return open_event_store(settings, VALUE_TYPES)
