"""Every module that defines an aggregate, imported once, so that every stored event's topic
(``quanyi:code.imported``, ...) resolves in any process that reads the log, whatever else it
imported. A module with a new aggregate is added here (tests/unit/test_event_topics.py
checks that none is missing)."""

from __future__ import annotations

from engine import (catalog, codes, distribution, fulfilment, keys, ledger, orders, payouts,
                    receipts, redemptions, suppliers, webhooks)

MODULES = (catalog, codes, distribution, fulfilment, keys, ledger, orders, payouts, receipts,
           redemptions, suppliers, webhooks)
