from datetime import datetime, timedelta, timezone

import pytest

from engine.eventstore.transcoder import OrjsonTranscoder
from engine.topics import VALUE_TYPES


def test_aware_datetimes_round_trip_as_datetimes():
    transcoder = OrjsonTranscoder(VALUE_TYPES)
    moment = datetime(2026, 11, 11, 0, 0, 1, 500, tzinfo=timezone.utc)
    state = {"timestamp": moment, "nested": {"at": [moment]}, "amount": 1990, "id": "x"}
    decoded = transcoder.decode(transcoder.encode(state))
    assert decoded == state
    assert decoded["timestamp"].tzinfo is not None


def test_naive_datetime_is_refused():
    with pytest.raises(TypeError):
        OrjsonTranscoder(VALUE_TYPES).encode({"at": datetime(2026, 1, 1)})


def test_other_offsets_keep_their_instant():
    transcoder = OrjsonTranscoder(VALUE_TYPES)
    moment = datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    decoded = transcoder.decode(transcoder.encode({"at": moment}))["at"]
    assert decoded == moment


def test_money_round_trips_through_the_transcoder():
    from engine.eventstore.transcoder import OrjsonTranscoder
    from engine.topics import VALUE_TYPES
    from engine.kernel.money import Money

    transcoder = OrjsonTranscoder(VALUE_TYPES)
    state = {"amount": Money(1990, "CNY"), "legs": [{"debit": Money(-5, "USD")}]}
    assert transcoder.decode(transcoder.encode(state)) == state


def test_topup_offers_round_trip_as_values_with_their_money():
    from engine.kernel.money import Money
    from engine.topups.offers import TopupOffer

    transcoder = OrjsonTranscoder(VALUE_TYPES)
    offers = [TopupOffer("sup-1", "CM-100", Money(9800, "CNY"), 10),
              TopupOffer("sup-2", "cmcc_100", Money(9850, "CNY"), 20)]
    decoded = transcoder.decode(transcoder.encode({"offers": offers}))["offers"]
    assert decoded == offers and isinstance(decoded[0].cost, Money)


@pytest.mark.parametrize("priority", [-1, True, 1.5, 1_000_001])
def test_an_offer_priority_is_a_bounded_whole_number(priority):
    from engine.kernel.errors import ValidationFailed
    from engine.kernel.money import Money
    from engine.topups.offers import TopupOffer

    with pytest.raises(ValidationFailed):
        TopupOffer("sup-1", "CM-100", Money(9800, "CNY"), priority)
