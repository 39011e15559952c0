"""A seeded, bounded fault campaign against real `quanyi serve` processes, run from outside
as a Jepsen-style test would:

    setup (products, codes, distributors, keys)
      │
    N client threads ──HTTP──▶ server processes (two on one PostgreSQL, or one on SQLite)
      │  a random mix of orders, payments (some with the wrong amount, some sent again),
      │  cancels, reveals, partial, full and racing refunds, redemptions, rollbacks, payouts;
      │  every POST with an Idempotency-Key, retried with it (sometimes to the other process)
      │  on a transport error, a cut-short request (5–40 ms client timeout) or a 5xx;
      │  some sent twice at once
      │
    the fault thread: kill -9 of a server (restarted), a PostgreSQL restart (a private
      │  cluster the campaign starts on its own port)
      │
    checks: the client's history against the event feed, the read models and the CLI

`run_campaign(CampaignConfig(...))` returns a `CampaignReport` whose `violations` must be
empty; `bench/fault_campaign.py` runs it long, `tests/integration/test_fault_campaign.py`
short.
"""

from tests.campaign.run import CampaignConfig, CampaignReport, run_campaign

__all__ = ["CampaignConfig", "CampaignReport", "run_campaign"]
