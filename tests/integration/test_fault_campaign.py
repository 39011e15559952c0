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


# A command that committed on a server killed before it kept its answer is run again by the
# retry of its key, which may then be refused by its own effect (a cancel answered "order is
# cancelled", a refund `already_refunded`): `refusal_acted`. Keeping the answer with the
# command's events is issue 13 part 3, on another branch; until it is merged that one kind
# is left to the xfail test below, and every other kind must be absent.
AWAITING_ANSWERS_KEPT_WITH_EVENTS = {"refusal_acted"}


def test_campaign_finds_no_violation_but_a_lost_answer_run_again(campaign: CampaignReport):
    found = {kind: examples for kind, examples in campaign.violations.items()
             if examples and kind not in AWAITING_ANSWERS_KEPT_WITH_EVENTS}
    assert found == {}, campaign.text()


@pytest.mark.xfail(strict=False, reason="issue 13 part 3: a retry after its server died "
                                        "between the commit and keeping the answer runs "
                                        "the command again")
def test_campaign_finds_no_violation(campaign: CampaignReport):
    assert campaign.violation_count == 0, campaign.text()
