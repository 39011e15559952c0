"""Property-based fuzzing of every operation in /openapi.json: no input may produce a 5xx.

Schemathesis generates the cases (valid and invalid) from the schema; each is sent through
the ASGI app with an admin key on both stores. Whatever the fuzzing stored, the projections
must then apply it all: no runner error, no lag."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis.checks import not_a_server_error

from api.app import create_app

EXAMPLES_PER_OPERATION = 30
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@pytest.mark.timeout(1200)  # a fuzzed request may legitimately generate 100,000 codes
def test_no_input_makes_the_api_fail(runtime, keys):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    calls = []

    for operation in operations:
        @given(case=st.one_of(*[operation.as_strategy(mode) for mode in MODES]))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck),
                  phases=(Phase.explicit, Phase.generate))
        def fuzz(case):
            if case.operation.path == "/healthz":
                # A fuzzed import of 100,000 codes may leave the projections behind by more
                # than the health limit for a moment; health then rightly says 503.
                runtime.read_your_writes(120)
            response = case.call(headers=keys["admin"], timeout=120)
            calls.append(response.status_code)
            case.validate_response(response, checks=(not_a_server_error,))

        fuzz()
    assert len(calls) >= len(operations)
    assert all(status < 500 for status in calls)
    assert {200, 201, 404, 422} <= set(calls)  # valid and invalid requests both got in
    assert runtime.read_your_writes(300), "the projections did not catch up with the fuzzing"
    assert runtime.runner.lag() == 0
    health = runtime.runner.health
    assert health.errors == 0, (health.failing_position, health.error, health.message)
