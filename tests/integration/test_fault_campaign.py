"""The randomized fault campaign, short (tests/campaign): two `quanyi serve` processes on a
private PostgreSQL cluster with a kill -9 and a database restart, and one on SQLite killed
twice; cut-short requests retried with their keys, duplicate sends; then every invariant.
The long run is `bench/fault_campaign.py --ops 10000` (docs/BENCHMARKS.md)."""

from __future__ import annotations

import pytest

from tests.campaign import CampaignConfig, CampaignReport, run_campaign

SEED = 14
SHORT = {  # each run well under three minutes on a busy two-core machine
    "postgres": CampaignConfig(seed=SEED, ops=240, store="postgres", clients=8,
                               max_seconds=120, kills=1, postgres_restarts=1),
    "sqlite": CampaignConfig(seed=SEED, ops=160, store="sqlite", clients=6,
                             max_seconds=120, kills=2),
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a busy machine starts servers slowly


@pytest.fixture(scope="module", params=sorted(SHORT))
def campaign(request: pytest.FixtureRequest) -> CampaignReport:
    return run_campaign(SHORT[request.param])


def test_campaign_sends_its_commands_and_injects_its_faults(campaign: CampaignReport):
    config = SHORT[campaign.store]
    assert sum(campaign.commands.values()) >= config.ops // 2, campaign.text()
    assert sum(campaign.faults.values()) == campaign.planned_faults > 0, campaign.text()
    assert not campaign.fault_errors, campaign.text()
    assert campaign.cut_short > 0 and campaign.retries > 0, campaign.text()
    acknowledged = sum(n for answer, n in campaign.answers.items() if answer[0] == "2")
    assert acknowledged >= config.ops // 3, campaign.text()


def test_campaign_finds_no_violation(campaign: CampaignReport):
    """Every kind, `refusal_acted` too: a command that committed on a server killed before
    it kept its answer is found by the retry of its key (its receipt commits with its
    events), and never run again to be refused by its own effect."""
    found = {kind: examples for kind, examples in campaign.violations.items() if examples}
    assert found == {} and campaign.violation_count == 0, campaign.text()
